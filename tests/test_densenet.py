"""torchvision's DenseNets written as lines: every model's count, keys and shapes against torchvision's
(on the meta device), outputs equal to torchvision's with its weights at even, odd and non-square sizes
(the transitions' pools round odd sizes down), the weights round trip, the published files' old keys,
gradients in training, torchvision's initialisation, and the blocks' mistakes naming the line."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torchvision
from networks import count, randomize_batchnorm
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink.errors import DimsError, NerveArgumentError, StateDictError, UnexpectedArgumentError
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.interop.torchvision._densenet import densenet_pairs
from neurlink.models.densenet import DenseBlock, DenseLayer, Transition

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

# torchvision's parameter counts (torchvision.models.<name>(weights=None)), which the registry contract reads too
PARAMETERS = {
    "densenet121": 7_978_856,
    "densenet161": 28_681_000,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
}
SIZES = ((64, 64), (33, 33), (45, 70))  # odd sizes: every transition's 2x2 pool rounds down


def pair(name: str, seed: int = 0, **keywords) -> tuple[nn.Module, nv.Network]:
    """torchvision's model with random norm statistics and affines, and ours with its weights."""
    theirs = getattr(torchvision.models, name)(weights=None, **keywords)
    randomize_batchnorm(theirs, torch.Generator().manual_seed(seed))
    return theirs, load_torchvision(neurlink.create_model(name, **keywords), theirs).eval()


@pytest.mark.parametrize("name", PARAMETERS)
def test_counts_keys_and_shapes_are_torchvisions_on_meta(name: str) -> None:
    with torch.device("meta"):
        ours = neurlink.create_model(name)
        theirs = getattr(torchvision.models, name)(weights=None)
    assert count(ours) == PARAMETERS[name] == count(theirs)
    assert getattr(neurlink, name) is getattr(neurlink.models, name)
    exported = to_torchvision_state_dict(ours)
    expected = theirs.state_dict()
    assert list(exported) == list(expected)  # torchvision's order
    assert all(exported[key].shape == tensor.shape for key, tensor in expected.items())
    assert str(theirs.load_state_dict(exported, strict=True)) == "<All keys matched successfully>"
    stages = [ours[f"stage{k}"] for k in range(1, 5)]
    assert all(isinstance(stage, DenseBlock) for stage in stages)
    assert [stage.target_dims[0].shape.ratios for stage in stages] == [(4,), (8,), (16,), (32,)]


@pytest.mark.parametrize("name", ["densenet121", pytest.param("densenet161", marks=pytest.mark.slow)])
def test_torchvision_weights_give_torchvision_outputs(name: str) -> None:
    theirs, ours = pair(name)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for size in SIZES:
            x = torch.randn(2, 3, *size, generator=generator)
            expected = theirs(x)
            first = ours(x)  # the first call of a size checks every line
            assert first.shape == expected.shape == (2, 1000)
            torch.testing.assert_close(first, expected, rtol=0, atol=0)  # the same operators in the same order
            torch.testing.assert_close(ours(x), expected, rtol=0, atol=0)  # then the flat forward


def test_weights_round_trip_strictly() -> None:
    theirs, ours = pair("densenet121", seed=2)
    exported = to_torchvision_state_dict(ours)
    assert list(exported) == list(theirs.state_dict())
    fresh = torchvision.models.densenet121(weights=None)
    assert str(fresh.load_state_dict(exported, strict=True)) == "<All keys matched successfully>"
    for key, value in theirs.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_the_published_files_old_keys_load() -> None:
    """torchvision's DenseNet files name a layer's modules 'norm.1', 'conv.2' (renamed by its loader); saved
    before PyTorch 0.4.1, their norms have no num_batches_tracked."""
    theirs = torchvision.models.densenet121(weights=None, num_classes=10)
    old = OrderedDict(
        (key.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."), value)
        for key, value in theirs.state_dict().items()
        if not key.endswith("num_batches_tracked")
    )
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    ours = load_torchvision(neurlink.densenet121(num_classes=10), old)
    assert torch.equal(ours["stage1"]["denselayer1"][1].weight, theirs.features.denseblock1.denselayer1.norm1.weight)


def test_training_gradients_are_torchvisions() -> None:
    theirs, ours = pair("densenet121", seed=3, num_classes=10)
    theirs.train(), ours.train()
    x = torch.randn(2, 3, 45, 70, generator=torch.Generator().manual_seed(4))
    ours(x).square().sum().backward()
    theirs(x).square().sum().backward()
    mapping = {p.reference: p.neurlink for p in densenet_pairs(ours)}
    parameters, buffers = dict(ours.named_parameters()), dict(ours.named_buffers())
    for key, parameter in theirs.named_parameters():
        grad = parameters[mapping[key]].grad
        assert grad is not None and grad.isfinite().all(), key
        scale = max(1e-6, parameter.grad.abs().max().item())
        torch.testing.assert_close(grad, parameter.grad, rtol=1e-4, atol=1e-4 * scale)
    for key, buffer in theirs.named_buffers():  # batch statistics of this call, in every norm
        torch.testing.assert_close(buffers[mapping[key]], buffer, rtol=1e-5, atol=1e-6)


def test_initialisation_is_torchvisions() -> None:
    torch.manual_seed(0)
    net = neurlink.densenet121(num_classes=10)
    conv = net["stage1"]["denselayer1"]["conv1"].conv.weight  # 64 -> 128, 1x1: std sqrt(2 / 64)
    assert abs(conv.std().item() - (2 / 64) ** 0.5) < 0.01
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 2 * 58 + 3 + 2  # two per layer (58 layers), one per transition, norm0, norm5
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any() for m in norms)
    classifier = net[-1].linear
    assert not classifier.bias.any() and classifier.weight.abs().max() <= 1 / 1024**0.5


def test_stage_tags_give_a_feature_pyramid() -> None:
    net = neurlink.densenet121(num_classes=10).eval()
    with torch.no_grad():
        features = net(torch.randn(1, 3, 45, 70), outputs=["stem", "stage1", "stage2", "stage3", "stage4"])
    assert [tuple(f.shape[1:]) for f in features] == [
        (64, 23, 35),
        (256, 12, 18),
        (512, 6, 9),  # floor(12 / 2), floor(18 / 2)
        (1024, 3, 4),
        (1024, 1, 2),
    ]


def test_builder_keywords() -> None:
    with torch.device("meta"):
        net = neurlink.densenet121(bn_size=2, drop_rate=0.1, memory_efficient=True)
        reference = torchvision.models.densenet121(weights=None, bn_size=2, drop_rate=0.1, memory_efficient=True)
    assert count(net) == count(reference)
    assert isinstance(net["stage1"]["denselayer1"][-1], nn.Dropout)
    with pytest.raises(UnexpectedArgumentError, match=r"densenet121\(\) got unexpected keyword argument\(s\) 'growth"):
        neurlink.densenet121(growth=12)


# --- the blocks' mistakes --------------------------------------------------------------------


def _lines(*lines):
    return [((3, 1), nv.Input()), ((16, 2), nv.Conv2d_BN_ReLU(3)), *lines]


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        (((40, 2), DenseBlock(3, 8)), None, None),
        (((41, 2), DenseBlock(3, 8)), NerveArgumentError, r"16 \+ 3 \* 8 = 40 channels, but the line declares 41"),
        (((40, 4), DenseBlock(3, 8)), DimsError, r"DenseBlock keeps the shape of its input line 1"),
        (((40, 2), DenseBlock(0, 8)), NerveArgumentError, r"num_layers=0 is not a positive int"),
        (((40, 2), DenseBlock(3, 8, drop_rate=2)), NerveArgumentError, r"drop_rate=2 is not a probability"),
        (((8, 2), DenseLayer(bn_size=0)), NerveArgumentError, r"bn_size=0 is not a positive int"),
        (((8, 2), DenseLayer(memory_efficient=1)), NerveArgumentError, r"memory_efficient=1 is not a bool"),
        (((8, 4), Transition()), None, None),
    ],
)
def test_block_mistakes_name_the_line(line, error, message) -> None:
    if error is None:
        assert nv.build(_lines(line))(torch.zeros(1, 3, 9, 9)).shape[1] == line[0][0]
        return
    with pytest.raises(error, match=r"line 2: \(\(") as raised:
        nv.build(_lines(line))
    assert raised.match(message)


def test_a_network_that_is_no_densenet_is_refused_naming_the_line() -> None:
    net = nv.build(
        _lines(
            ((40, 2), DenseBlock(3, 8)),
            ((40, 2), nv.Conv2d_BN_ReLU(3)),  # a conv between blocks
            ((20, 4), Transition()),
        )
    )
    with pytest.raises(StateDictError, match=r"line 3 \(Conv2d_BN_ReLU\) has weights, but torchvision's DenseNet"):
        to_torchvision_state_dict(net)
