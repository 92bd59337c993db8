"""torchvision's vision transformers written as lines: parameter counts, outputs and gradients with
torchvision's weights, any input size, MACs with attention, and the weights both ways."""

from __future__ import annotations

import pytest
import torch
import torchvision
from networks import TRANSFORMER_PARAMETERS, count, line_by_line
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import neurlink
import neurlink.nerves as nv
from neurlink.errors import NerveArgumentError, StateDictError, UnexpectedArgumentError
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.interop.torchvision._vit import vit_pairs

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

VITS = [name for name in TRANSFORMER_PARAMETERS if name.startswith("vit")]


def randomize(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Every tensor of the reference random (its class token, biases and head start at zero, its norms at
    one), so that a wrong mapping changes the outputs."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            scale = 0.2 if "ln" in name and name.endswith("weight") else 0.02
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale + (1.0 if scale == 0.2 else 0.0))
    return model.eval()


def close(ours: torch.Tensor, theirs: torch.Tensor, tol: float = 1e-5) -> None:
    scale = max(1e-3, theirs.abs().max().item())
    torch.testing.assert_close(ours, theirs, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("name", VITS)
def test_parameter_counts_on_meta_are_torchvisions(name: str) -> None:
    with torch.device("meta"):
        ours, theirs = neurlink.create_model(name), getattr(torchvision.models, name)()
    assert count(ours) == TRANSFORMER_PARAMETERS[name] == count(theirs)
    assert list(ours.state_dict()) and isinstance(ours[-1], nv.Linear)  # the classifier is the last line


@pytest.fixture(scope="module")
def vit_b_32() -> tuple[nn.Module, nn.Module]:
    """torchvision's vit_b_32 with every tensor random, and ours with its weights (built once: 88M parameters)."""
    theirs = randomize(torchvision.models.vit_b_32(num_classes=10), torch.Generator().manual_seed(0))
    return load_torchvision(neurlink.vit_b_32(num_classes=10), theirs).eval(), theirs


def test_vit_b_32_is_torchvision_outputs_and_gradients(vit_b_32) -> None:
    ours, theirs = vit_b_32
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = theirs(x)
        close(ours(x), expected)  # the first call checks every line
        close(ours(x), expected)  # the flat forward
    x.requires_grad_(True)
    ours(x).square().sum().backward()
    grad, x.grad = x.grad, None
    theirs(x).square().sum().backward()
    close(grad, x.grad, 1e-4)
    mapping = {pair.reference: pair.neurlink for pair in vit_pairs(ours)}
    parameters = dict(ours.named_parameters())
    for key, parameter in theirs.named_parameters():
        close(parameters[mapping[key]].grad, parameter.grad, 1e-4)
    ours.zero_grad(set_to_none=True)
    theirs.zero_grad(set_to_none=True)


@pytest.mark.parametrize("size", [224, pytest.param(384, marks=pytest.mark.slow)])
def test_vit_b_16_is_torchvision_at_its_image_size(size: int) -> None:
    theirs = randomize(torchvision.models.vit_b_16(image_size=size, num_classes=10), torch.Generator().manual_seed(2))
    ours = load_torchvision(neurlink.vit_b_16(image_size=size, num_classes=10), theirs).eval()
    assert ours[4].embedding.weight.shape == (1, 1 + (size // 16) ** 2, 768)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        close(ours(x), theirs(x))


def test_weights_round_trip_strictly_and_refuse_a_wrong_family(vit_b_32) -> None:
    ours, theirs = vit_b_32
    state = to_torchvision_state_dict(ours)
    assert list(state) == list(theirs.state_dict())  # torchvision's keys, in its order
    for key, value in theirs.state_dict().items():
        assert torch.equal(state[key], value), key
    state = dict(state)
    del state["encoder.layers.encoder_layer_3.self_attention.in_proj_weight"]
    with pytest.raises(StateDictError, match="in_proj_weight"):
        load_torchvision(ours, state)
    with torch.device("meta"):
        vit_b_16 = torchvision.models.vit_b_16(num_classes=10)
    with pytest.raises(StateDictError):
        load_torchvision(ours, vit_b_16.state_dict())


def test_any_input_size_resamples_the_positions_and_keeps_them_at_the_built_size() -> None:
    torch.manual_seed(0)
    net = neurlink.vit_b_32(num_classes=10).eval()
    embedding = net[4].embedding
    assert embedding.weight.shape == (1, 50, 768)
    with torch.no_grad():
        for size in ((224, 224), (160, 288), (100, 100), (33, 65)):
            assert net(torch.randn(1, 3, *size)).shape == (1, 10)
        tokens = torch.randn(1, 50, 768)
        assert torch.equal(embedding(tokens, (7, 7)), tokens + embedding.weight)  # unchanged at 224
        # at 160x288 (5 x 9 patches, padding none) the grid is resampled as timm resamples it
        timm_layers = pytest.importorskip("timm.layers")
        expected = timm_layers.resample_abs_pos_embed(embedding.weight, [5, 9], [7, 7], num_prefix_tokens=1)
        torch.testing.assert_close(embedding(torch.zeros(1, 46, 768), (5, 9)), expected)


def test_summary_counts_attention_as_torch_does_and_as_published() -> None:
    """torchvision publishes 4.409 GFLOPS for vit_b_32: the linear layers' 4.363 G and attention's two
    products, 12 x 2 x 50^2 x 768 = 0.046 G (torch's flop counter misses the latter on CPU)."""
    with torch.device("meta"):
        net = neurlink.vit_b_32()
    macs = neurlink.summary(net, (1, 3, 224, 224)).total_macs
    assert abs(macs / 4.409e9 - 1) < 1e-3 and macs - 4_363_000_000 > 12 * 2 * 50**2 * 768 * 0.9
    theirs = torchvision.models.vit_b_32().train()  # not the fused inference path: attention as products
    from neurlink.tools._trace import _ATTENTION_ON_CPU

    with FlopCounterMode(display=False, custom_mapping=_ATTENTION_ON_CPU) as counter:
        theirs(torch.randn(1, 3, 224, 224))
    assert abs(macs / (counter.get_total_flops() / 2) - 1) < 0.02


@pytest.mark.slow
def test_summary_of_vit_b_16_counts_torchvisions_published_17_564_g() -> None:
    """16.85 G of linear layers and 12 x 2 x 197^2 x 768 = 0.715 G of attention's products."""
    with torch.device("meta"):
        net = neurlink.vit_b_16()
    assert abs(neurlink.summary(net, (1, 3, 224, 224)).total_macs / 17.564e9 - 1) < 1e-3


def test_flat_forward_equals_the_lines_in_training_and_eval() -> None:
    torch.manual_seed(0)
    net = nv.build(  # vit_b_32's lines, narrower and shallower
        [
            ((3, 1), nv.Input()),
            ((64, 32), nv.Conv2d(32)),
            ((64, nv.tokens(32)), nv.ToTokens()),
            ((64, nv.tokens(32, extra=1)), nv.ClassToken()),
            ((64, nv.tokens(32, extra=1)), nv.PositionEmbedding(224)),
            ((64, nv.tokens(32, extra=1)), nn.Dropout(0.1)),
            [((64, nv.tokens(32, extra=1)), nv.TransformerBlock(4, 128, dropout=0.1, attention_dropout=0.1))] * 2,
            ((64, nv.tokens(32, extra=1)), nv.LayerNorm(1e-6)),
            ((64, "()"), nv.ToVector(0)),
            ((5, "()"), nv.Linear()),
        ]
    )
    x = torch.randn(2, 3, 64, 96)
    net.eval()
    with torch.no_grad():
        net(x)
        torch.testing.assert_close(net(x), line_by_line(net, x), rtol=0, atol=0)
    net.train()
    torch.manual_seed(3)
    a = net(x)
    torch.manual_seed(3)
    torch.testing.assert_close(a, line_by_line(net, x), rtol=0, atol=0)


def test_builder_keywords_are_checked_at_the_builder() -> None:
    with pytest.raises(UnexpectedArgumentError, match="patch_size"):
        neurlink.vit_b_16(patch_size=8)
    with pytest.raises(NerveArgumentError, match="not a multiple of the patch size 16"):
        neurlink.vit_b_16(image_size=200)
    with pytest.raises(NerveArgumentError, match="dropout"):
        neurlink.vit_b_16(dropout=1.5)


def test_published_weights_for_another_image_size_say_which_to_build_before_downloading() -> None:
    with pytest.raises(
        neurlink.NeurlinkError, match=r"is for image_size=384, but the network is built for 224"
    ) as caught:
        neurlink.vit_b_16(weights="IMAGENET1K_SWAG_E2E_V1")
    assert "vit_b_16(weights='IMAGENET1K_SWAG_E2E_V1', image_size=384)" in str(caught.value)
