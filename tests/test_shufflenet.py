"""torchvision's ShuffleNetV2 written as lines: every model's parameters, keys and shapes (on the meta
device), outputs and every stage equal to torchvision's with its weights at even, odd and non-square
sizes, outputs and gradients in training, the weights round trip, and the mistakes the unit refuses."""

from __future__ import annotations

import pytest
import torch
import torchvision
from networks import SHUFFLENET_PARAMETERS, assert_same_outputs, count, randomize_batchnorm
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink.errors import DimsError, StateDictError, UnexpectedArgumentError
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.interop.torchvision._shufflenet import shufflenet_pairs
from neurlink.models import _registry
from neurlink.models.shufflenet import ShuffleInvertedResidual

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

SIZES = ((64, 64), (33, 33), (45, 71))
STAGES = ("stage2", "stage3", "stage4", "conv5")


def pair(name: str, seed: int = 0) -> tuple[nn.Module, nv.Network]:
    """torchvision's model with random norm statistics and affines, and ours with its weights."""
    theirs = getattr(torchvision.models, name)(weights=None)
    randomize_batchnorm(theirs, torch.Generator().manual_seed(seed))
    return theirs, load_torchvision(neurlink.create_model(name), theirs).eval()


def torchvision_stages(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of torchvision's stage2, stage3, stage4 and conv5, in its own forward."""
    seen: list[torch.Tensor] = []
    hooks = [getattr(model, name).register_forward_hook(lambda m, i, o: seen.append(o)) for name in STAGES]
    try:
        logits = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return [*seen, logits]


# --- every builder, on the meta device ---------------------------------------------------------


@pytest.mark.parametrize("name", SHUFFLENET_PARAMETERS)
def test_parameters_keys_and_shapes_are_torchvisions(name: str) -> None:
    with torch.device("meta"):
        ours = neurlink.create_model(name)
        theirs = getattr(torchvision.models, name)(weights=None)
    assert count(ours) == SHUFFLENET_PARAMETERS[name] == count(theirs)
    assert getattr(neurlink, name) is getattr(neurlink.models, name) is _registry._BUILDERS[name]
    exported = to_torchvision_state_dict(ours)
    assert [(key, tensor.shape) for key, tensor in exported.items()] == [
        (key, tensor.shape) for key, tensor in theirs.state_dict().items()
    ]
    units = [module for module in ours.children() if isinstance(module, ShuffleInvertedResidual)]
    assert len(units) == sum(len(getattr(theirs, stage)) for stage in STAGES[:3]) == 16


# --- outputs, gradients and weights against torchvision ---------------------------------------


def test_shufflenet_v2_x1_0_is_torchvision_at_every_size() -> None:
    theirs, ours = pair("shufflenet_v2_x1_0")
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for size in SIZES:
            x = torch.randn(1, 3, *size, generator=generator)
            expected = torchvision_stages(theirs, x)
            assert_same_outputs(ours(x), expected[-1])  # the first call of a size checks every line
            assert_same_outputs(ours(x), expected[-1])  # then the flat forward
            for mine, reference in zip(ours(x, outputs=list(STAGES)), expected, strict=False):
                assert torch.equal(mine, reference), size  # every stage bitwise: the same operations


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"])
def test_the_other_widths_are_torchvision(name: str) -> None:
    theirs, ours = pair(name, seed=5)
    x = torch.randn(1, 3, 37, 50, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert_same_outputs(ours(x), theirs(x))


def test_training_outputs_and_gradients_are_torchvisions() -> None:
    """In training mode (batch statistics): the same logits, input gradients and weight gradients."""
    theirs, ours = pair("shufflenet_v2_x0_5", seed=2)
    theirs.train()
    ours.train()
    x = torch.randn(2, 3, 45, 38, generator=torch.Generator().manual_seed(3))
    mine, reference = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours_logits, theirs_logits = ours(mine), theirs(reference)
    assert_same_outputs(ours_logits, theirs_logits)
    ours_logits.flatten(1).square().mean().backward()
    theirs_logits.square().mean().backward()
    torch.testing.assert_close(mine.grad, reference.grad, rtol=1e-4, atol=1e-7)
    missing = [key for key, p in ours.named_parameters() if p.grad is None or not p.grad.isfinite().all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"
    theirs_grads = dict(theirs.named_parameters())
    for mapped in shufflenet_pairs(ours):
        if mapped.reference in theirs_grads:
            grad = ours.get_parameter(mapped.neurlink).grad
            reference_grad = theirs_grads[mapped.reference].grad
            torch.testing.assert_close(grad.reshape(reference_grad.shape), reference_grad, rtol=1e-4, atol=1e-6)


def test_weights_round_trip_strictly() -> None:
    theirs, ours = pair("shufflenet_v2_x1_0", seed=4)
    state = to_torchvision_state_dict(ours)
    assert list(state) == list(theirs.state_dict())
    fresh = torchvision.models.shufflenet_v2_x1_0(weights=None)
    fresh.load_state_dict(state, strict=True)
    assert all(torch.equal(fresh.state_dict()[key], value) for key, value in theirs.state_dict().items())


# --- the lines ---------------------------------------------------------------------------------


def test_stages_are_tagged_and_make_a_pyramid() -> None:
    net = neurlink.shufflenet_v2_x0_5(num_classes=10).eval()
    with torch.no_grad():
        features = net(torch.randn(1, 3, 65, 50), outputs=["stem", *STAGES])
    assert [tuple(f.shape[1:]) for f in features] == [(24, 33, 25), (48, 9, 7), (96, 5, 4), (192, 3, 2), (1024, 3, 2)]
    unit = net["stage2"]
    assert unit.line_tags() == {"branch2.0": 2, "branch2.3": 3, "branch2.5": 4}
    assert isinstance(unit[1], nv.ChannelSplit) and isinstance(unit[6], nv.ChannelShuffle)
    first = net[3]  # the stage's first unit: two branches, the depthwise convs strided
    assert first["branch1.0"].conv.stride == first["branch2.3"].conv.stride == (2, 2)
    assert first["branch1.0"].conv.groups == 24 and first["branch2.3"].conv.groups == 24


def test_builder_keywords() -> None:
    with torch.device("meta"):
        silu = neurlink.shufflenet_v2_x0_5(num_classes=5, act=nn.SiLU)
    assert not any(isinstance(m, nn.ReLU) for m in silu.modules())
    assert silu[-1].conv.out_channels == 5
    with pytest.raises(UnexpectedArgumentError, match="'width'"):
        neurlink.shufflenet_v2_x1_0(width=2)


UNIT_MISTAKES = [
    (((117, 8), ShuffleInvertedResidual()), r"117 channels, an odd number"),
    (((48, 4), ShuffleInvertedResidual()), r"splits the input's 24 channels(.|\n)*must declare 24 channels, not 48"),
]


@pytest.mark.parametrize(("line", "message"), UNIT_MISTAKES)
def test_the_unit_refuses_what_torchvision_cannot_be(line: tuple, message: str) -> None:
    with pytest.raises(DimsError, match=r"(?s)line 2: .*" + message):
        nv.build([((3, 1), nv.Input()), ((24, 4), nv.Conv2d_BN_ReLU(3)), line])


def test_a_network_torchvision_has_no_keys_for_is_refused() -> None:
    with torch.device("meta"):
        net = nv.build(
            [
                ((3, 1), nv.Input()),
                ((24, 2), nv.Conv2d_BN_ReLU(3)),
                ((48, 4), ShuffleInvertedResidual()),
                ((48, 4), nv.LayerNorm2d()),  # no such module in torchvision's ShuffleNetV2
                ((48, "(1, 1)"), nv.AvgPool2d()),
            ]
        )
    with pytest.raises(StateDictError, match=r"line 3 \(LayerNorm2d\) has weights"):
        to_torchvision_state_dict(net)
