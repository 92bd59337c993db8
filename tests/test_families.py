"""MobileNetV2/V3, EfficientNet and ConvNeXt against torchvision, and the nerves they are made of
against plain torch."""

from __future__ import annotations

import functools

import pytest
import torch
import torchvision
from networks import FAMILY_PARAMETERS, assert_same_outputs, count
from torch import nn
from torchvision.ops import SqueezeExcitation as TorchvisionSE
from torchvision.ops import StochasticDepth as TorchvisionStochasticDepth

import neurlink
import neurlink.nerves as nv
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.models import _registry
from neurlink.models.convnext import ConvNeXtBlock
from neurlink.models.efficientnet import MBConv
from neurlink.models.mobilenet import InvertedResidual, make_divisible

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

# Building and running these takes more than a few seconds each on a small CI machine.
SLOW = {"efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "convnext_small", "convnext_base", "convnext_large"}
SLOW |= {"efficientnet_v2_m", "efficientnet_v2_l"}  # 54M and 119M parameters
BUILDERS = [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in FAMILY_PARAMETERS]
# compared output for output with torchvision's, in the default run
COMPARED = ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0", "efficientnet_b3"]


def randomize(model: nn.Module, generator: torch.Generator) -> None:
    """Random norm parameters and running statistics, biases and layer scales (torchvision starts
    them at 1, 0 and 1e-6), so that a wrong mapping (a swapped norm, mean for var, a block's scale
    for another's) changes the outputs."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.2)
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                module.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=generator)))
            if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.02)
            if isinstance(getattr(module, "layer_scale", None), nn.Parameter):
                module.layer_scale.copy_(torch.rand(module.layer_scale.shape, generator=generator) * 0.5)
    model.eval()


def reference(name: str, generator: torch.Generator) -> tuple[nn.Module, nn.Module]:
    """torchvision's model with randomized statistics, and ours with its weights."""
    theirs = getattr(torchvision.models, name)(weights=None)
    randomize(theirs, generator)
    ours = load_torchvision(neurlink.create_model(name), theirs.state_dict()).eval()
    return ours, theirs


# --- every builder ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FAMILY_PARAMETERS))
def test_parameter_count(name: str) -> None:
    # on the meta device: no memory, so the largest models are checked in the fast run too
    with torch.device("meta"):
        net = neurlink.create_model(name)
        theirs = getattr(torchvision.models, name)(weights=None)
    assert count(net) == FAMILY_PARAMETERS[name] == count(theirs)
    assert getattr(neurlink, name) is getattr(neurlink.models, name) is _registry._BUILDERS[name]


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_trains(name: str) -> None:
    """Output shape, no NaN, and a gradient for every parameter in train mode, stochastic depth on."""
    torch.manual_seed(0)
    net = neurlink.create_model(name, num_classes=10).train()
    assert count(net) == FAMILY_PARAMETERS[name] - (1000 - 10) * (net[-1].conv.in_channels + 1)
    drops = [m for m in net.modules() if isinstance(m, nv.StochasticDepth)]
    assert all(m.training and m.drop.drop_prob > 0 for m in drops) and (drops or "mobilenet" in name)
    y = net(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 10, 1, 1)
    assert not y.isnan().any()
    y.square().mean().backward()
    missing = [key for key, p in net.named_parameters() if p.grad is None or not p.grad.isfinite().all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in FAMILY_PARAMETERS]
)
def test_weights_round_trip(name: str) -> None:
    """torchvision -> neurlink -> torchvision, strictly, every tensor unchanged."""
    generator = torch.Generator().manual_seed(1)
    ours, theirs = reference(name, generator)
    state = to_torchvision_state_dict(ours)
    assert list(state) == list(theirs.state_dict())
    fresh = getattr(torchvision.models, name)(weights=None)
    fresh.load_state_dict(state, strict=True)
    assert all(torch.equal(fresh.state_dict()[key], value) for key, value in theirs.state_dict().items())


@pytest.mark.parametrize("name", COMPARED)
def test_mobile_families_are_torchvision(name: str) -> None:
    # MobileNet and EfficientNet pad every conv as the grammar does, so odd sizes agree too
    generator = torch.Generator().manual_seed(0)
    ours, theirs = reference(name, generator)
    with torch.no_grad():
        for size in (224, 193):
            x = torch.randn(1, 3, size, size, generator=generator)
            assert_same_outputs(ours(x), theirs(x))  # the first call of a size checks every line
            assert_same_outputs(ours(x), theirs(x))  # then the flat forward


def test_convnext_is_torchvision() -> None:
    generator = torch.Generator().manual_seed(0)
    ours, theirs = reference("convnext_tiny", generator)
    with torch.no_grad():
        # multiples of 32, and sizes torchvision's unpadded 4x4 and 2x2 convs floor (the lines' padding="valid")
        for size in ((224, 224), (96, 160), (193, 193), (225, 70)):
            x = torch.randn(1, 3, *size, generator=generator)
            assert_same_outputs(ours(x), theirs(x))
            assert_same_outputs(ours(x), theirs(x))
        x = torch.randn(1, 3, 225, 70, generator=generator)
        features = ours(x, outputs=["stem", "stage1", "stage2", "stage3", "stage4", -1])
        expected = [(96, 56, 17), (96, 56, 17), (192, 28, 8), (384, 14, 4), (768, 7, 2), (1000, 1, 1)]
        assert [tuple(f.shape[1:]) for f in features] == expected  # floor(size / ratio)


def test_feature_pyramids() -> None:
    x = torch.randn(1, 3, 65, 65)
    with torch.no_grad():
        v2 = neurlink.mobilenet_v2(num_classes=10).eval()(x, outputs=["stem", "stage2", "stage3", "stage5", "features"])
        b0 = neurlink.efficientnet_b0(num_classes=10).eval()(x, outputs=["stage2", "stage3", "stage5", "stage7"])
    assert [tuple(f.shape[1:]) for f in v2] == [(32, 33, 33), (24, 17, 17), (32, 9, 9), (96, 5, 5), (1280, 3, 3)]
    assert [tuple(f.shape[1:]) for f in b0] == [(24, 17, 17), (40, 9, 9), (112, 5, 5), (320, 3, 3)]


def test_torchvision_rates_and_rounding() -> None:
    with torch.device("meta"):
        b0 = neurlink.efficientnet_b0()
        tiny = neurlink.convnext_tiny()
        theirs_b0 = torchvision.models.efficientnet_b0()
        theirs_tiny = torchvision.models.convnext_tiny()
    ours = [m.drop.drop_prob for m in b0.modules() if isinstance(m, nv.StochasticDepth)]
    theirs = [m.p for m in theirs_b0.modules() if isinstance(m, TorchvisionStochasticDepth)]
    assert ours == [p for p, block in zip(theirs, _blocks(theirs_b0)) if block.use_res_connect]
    ours = [m.drop.drop_prob for m in tiny.modules() if isinstance(m, nv.StochasticDepth)]
    assert ours == [m.p for m in theirs_tiny.modules() if isinstance(m, TorchvisionStochasticDepth)][1:]  # 0: no line
    with torch.device("meta"):  # the largest rate torchvision takes: the last ConvNeXt block always drops
        whole = neurlink.convnext_tiny(stochastic_depth_prob=1.0)
        theirs_whole = torchvision.models.convnext_tiny(stochastic_depth_prob=1.0)
    ours = [m.drop.drop_prob for m in whole.modules() if isinstance(m, nv.StochasticDepth)]
    assert ours == [m.p for m in theirs_whole.modules() if isinstance(m, TorchvisionStochasticDepth)][1:]
    assert ours[-1] == 1.0
    dropouts = {
        name: [m.p for m in neurlink.create_model(name, num_classes=2).modules() if isinstance(m, nn.Dropout)]
        for name in ("mobilenet_v2", "mobilenet_v3_small", "efficientnet_b4")
    }
    assert dropouts == {"mobilenet_v2": [0.2], "mobilenet_v3_small": [0.2], "efficientnet_b4": [0.4]}
    assert [make_divisible(v) for v in (3.0, 32 * 1.1, 88 * 0.75, 1280 * 1.4)] == [8, 32, 64, 1792]


def _blocks(model: nn.Module):
    return [m for m in model.modules() if type(m).__name__ == "MBConv"]


def test_builder_keywords() -> None:
    with torch.device("meta"):
        v2 = neurlink.mobilenet_v2(num_classes=5, width_mult=0.5)
        b0 = neurlink.efficientnet_b0(stochastic_depth_prob=0.0, dropout=0.5)
        tiny = neurlink.convnext_tiny(stochastic_depth_prob=0.0, layer_scale=None)
        theirs = torchvision.models.mobilenet_v2(num_classes=5, width_mult=0.5)
    assert count(v2) == count(theirs)
    assert not any(isinstance(m, nv.StochasticDepth) for m in [*b0.modules(), *tiny.modules()])
    assert not any(isinstance(m, nv.LayerScale) for m in tiny.modules())
    assert [m.p for m in b0.modules() if isinstance(m, nn.Dropout)] == [0.5]


def test_initialisation_like_torchvision() -> None:
    torch.manual_seed(0)
    v3 = neurlink.mobilenet_v3_small()
    b0 = neurlink.efficientnet_b0()
    tiny = neurlink.convnext_tiny()
    head = v3[-1].conv.weight
    assert abs(head.std().item() - 0.01) < 1e-3 and not v3[-1].conv.bias.any()
    bound = 1 / 1000**0.5
    assert b0[-1].conv.weight.abs().max() <= bound and b0[-1].conv.weight.abs().max() > 0.9 * bound
    stem = b0["stem"].conv.weight  # He normal, fan_out: std sqrt(2 / (32 * 9))
    assert abs(stem.std().item() - (2 / (32 * 9)) ** 0.5) < 0.02
    block = tiny["stage1"]
    assert abs(block.get_submodule("3.linear").weight.std().item() - 0.02) < 2e-3
    assert torch.equal(block.get_submodule("5.scale").weight, torch.full((96, 1, 1), 1e-6))


def test_a_resnet_is_built_on_meta_then_initialised_once_like_torchvision() -> None:
    """Every tensor written (none left as allocated): torchvision's statistics on every kind of tensor."""
    torch.manual_seed(0)
    net = neurlink.resnet50()
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 53
    for norm in norms:
        assert torch.equal(norm.weight, torch.ones_like(norm.weight)) and not norm.bias.any()
        assert not norm.running_mean.any() and torch.equal(norm.running_var, torch.ones_like(norm.running_var))
        assert norm.num_batches_tracked.item() == 0
    stem = net["stem"].conv.weight  # He normal, fan_out: std sqrt(2 / (64 * 49))
    assert abs(stem.std().item() - (2 / (64 * 49)) ** 0.5) < 1e-3
    head = net[-1].conv  # nn.Linear's default: uniform in +-1/sqrt(2048), bias too
    bound = 1 / 2048**0.5
    for tensor in (head.weight, head.bias):
        assert tensor.abs().max() <= bound and tensor.abs().max() > 0.9 * bound
    assert all(p.device.type == "cpu" for p in net.parameters())
    x = torch.randn(1, 3, 64, 64)
    assert torch.isfinite(net.eval()(x)).all()


def test_a_resnet_is_built_on_the_device_and_dtype_the_caller_builds_with() -> None:
    with torch.device("meta"):
        assert all(p.is_meta for p in neurlink.resnet18().parameters())
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        net = neurlink.resnet18(num_classes=3)
    finally:
        torch.set_default_dtype(previous)
    assert {p.dtype for p in net.parameters()} == {torch.float64}
    assert net.eval()(torch.randn(1, 3, 32, 32, dtype=torch.float64)).shape == (1, 3, 1, 1)


def test_a_norm_that_cannot_reset_itself_is_built_the_ordinary_way() -> None:
    """A module without reset_parameters() cannot be allocated empty and initialised: nothing is left
    as allocated, as its values are those its constructor gave."""

    class Scale(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.full((channels, 1, 1), 0.5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.weight

    net = neurlink.resnet18(num_classes=4, norm=Scale)
    scales = [m for m in net.modules() if isinstance(m, Scale)]
    assert len(scales) == 20 and all(torch.equal(m.weight, torch.full_like(m.weight, 0.5)) for m in scales)
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 4, 1, 1)


def test_a_norm_subclass_keeps_what_its_init_sets_beyond_reset_parameters() -> None:
    """reset_parameters() is torch's: a subclass's own parameter, or a gamma it starts at 0, would be lost."""

    class ScaledNorm(nn.BatchNorm2d):
        def __init__(self, channels: int) -> None:
            super().__init__(channels)
            self.alpha = nn.Parameter(torch.full((channels,), 0.5))
            nn.init.zeros_(self.weight)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * self.alpha[:, None, None]

    net = neurlink.resnet18(num_classes=3, norm=ScaledNorm).eval()
    norms = [m for m in net.modules() if isinstance(m, ScaledNorm)]
    assert len(norms) == 20
    for norm in norms:
        assert torch.equal(norm.alpha, torch.full_like(norm.alpha, 0.5))
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))  # torchvision's init sets norms to 1 after
    assert torch.isfinite(net(torch.randn(1, 3, 64, 64))).all()


# --- the nerves against plain torch -----------------------------------------------------------


def _net(lines, dims=(8, 1)):
    return nv.build([(dims, nv.Input()), *lines])


def _twice(net, x):
    """The first call (line by line, checked) and the flat forward after it must agree."""
    first = net(x)
    second = net(x)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    return second


def test_squeeze_excitation_is_torchvisions() -> None:
    torch.manual_seed(0)
    net = _net([((8, 1), nv.SqueezeExcitation(3, scale_act=nn.Hardsigmoid))])
    theirs = TorchvisionSE(8, 3, scale_activation=nn.Hardsigmoid)
    theirs.load_state_dict({k: v for k, v in net.state_dict().items()} and _strip(net.state_dict(), "1."))
    x = torch.randn(2, 8, 5, 7)
    torch.testing.assert_close(_twice(net, x), theirs(x), rtol=0, atol=0)
    assert isinstance(net[1].act, nn.ReLU) and isinstance(net[1].scale_act, nn.Hardsigmoid)
    plain = _net([((8, 1), nv.SqueezeExcitation(2, act=None, scale_act=None))])
    fc1, fc2 = plain[1].fc1, plain[1].fc2
    torch.testing.assert_close(_twice(plain, x), x * fc2(fc1(x.mean((2, 3), keepdim=True))))


def _strip(state: dict, prefix: str) -> dict:
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


def test_layer_norm_2d_is_layer_norm_over_channels() -> None:
    torch.manual_seed(0)
    net = _net([((8, 1), nv.LayerNorm2d(eps=1e-6))])
    with torch.no_grad():
        net[1].norm.weight.uniform_(0.5, 1.5)
        net[1].norm.bias.normal_()
    x = torch.randn(2, 8, 5, 7)
    norm = net[1].norm
    expected = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,), norm.weight, norm.bias, 1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(_twice(net, x), expected, rtol=0, atol=0)
    theirs = torchvision.models.convnext.LayerNorm2d(8, eps=1e-6)
    theirs.load_state_dict(norm.state_dict())
    torch.testing.assert_close(net(x), theirs(x), rtol=0, atol=0)
    assert _net([((8, 1), nv.LayerNorm2d(elementwise_affine=False))])[1].norm.weight is None


def test_pointwise_linear_is_a_linear_at_each_position() -> None:
    torch.manual_seed(0)
    net = _net([((16, 1), nv.PointwiseLinear(act=nn.GELU)), ((8, 1), nv.PointwiseLinear(bias=False))])
    x = torch.randn(2, 8, 5, 7)
    first, second = net[1].linear, net[2].linear
    expected = second(nn.functional.gelu(first(x.permute(0, 2, 3, 1)))).permute(0, 3, 1, 2)
    torch.testing.assert_close(_twice(net, x), expected, rtol=0, atol=0)
    conv = nn.Conv2d(8, 16, 1)  # the same as a 1x1 conv, up to the order of the sums
    with torch.no_grad():
        conv.weight.copy_(first.weight[:, :, None, None])
        conv.bias.copy_(first.bias)
    torch.testing.assert_close(net(x, outputs=[1])[0], nn.functional.gelu(conv(x)), rtol=1e-5, atol=1e-6)
    assert second.bias is None


def test_layer_scale_and_stochastic_depth() -> None:
    torch.manual_seed(0)
    net = _net([((8, 1), nv.Conv2d(3)), ((8, 1), nv.LayerScale(0.5)), ((8, 1), nv.StochasticDepth(0.5))])
    assert net[2].scale.weight.shape == (8, 1, 1)
    x = torch.randn(16, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(_twice(net.eval(), x), 0.5 * net[1](x), rtol=0, atol=0)
        net.train()
        theirs = TorchvisionStochasticDepth(0.5, "row")
        branch = 0.5 * net[1](x)
        for _ in range(2):  # the first call and the flat forward draw the samples as torchvision does
            torch.manual_seed(3)
            ours = net(x)
            torch.manual_seed(3)
            torch.testing.assert_close(ours, theirs(branch), rtol=0, atol=0)
        dropped = (ours.flatten(1) == 0).all(1)
        assert 0 < dropped.sum() < 16  # whole samples, some of them
        torch.testing.assert_close(ours[~dropped], 2 * branch[~dropped])
    # p=1 drops the branch in every sample, as torchvision's StochasticDepth(1.0, "row") does
    always = _net([((8, 1), nv.Conv2d(3)), ((8, 1), nv.StochasticDepth(1.0))]).train()
    with torch.no_grad():
        torch.testing.assert_close(always(x), TorchvisionStochasticDepth(1.0, "row")(always[1](x)), rtol=0, atol=0)
        assert not always(x).any()
        assert torch.equal(always.eval()(x), always[1](x))
    vectors = nv.build([((8, "()"), nv.Input()), ((8, "()"), nv.LayerScale()), ((8, "()"), nv.StochasticDepth(0.1))])
    assert vectors[1].scale.weight.shape == (8,)


def test_blocks_in_user_lines() -> None:
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 2), nv.Conv2d_BN_ReLU(3)),
            ((16, 2), InvertedResidual(1, act=nn.SiLU)),  # no expansion: depthwise, project, sum
            ((24, 4), MBConv(4, kernel_size=5, se_ratio=None)),
            ((24, 4), ConvNeXtBlock(kernel_size=3, expansion=2, layer_scale=None)),
        ]
    )
    assert net(torch.randn(2, 3, 30, 30)).shape == (2, 24, 8, 8)
    kinds = {name: type(module).__name__ for name, module in net.named_modules() if name.count(".") == 1}
    assert [kinds[f"2.{k}"] for k in (1, 2, 3)] == ["Conv2d_BN_ReLU", "Conv2d_BN_ReLU", "Add"]
    assert net.get_submodule("2.1.conv").groups == 16
    assert [kinds[f"3.{k}"] for k in (1, 2, 3)] == ["Conv2d_BN_ReLU"] * 3  # strided: no sum
    assert net.get_submodule("3.2.conv").stride == (2, 2) and net.get_submodule("3.2.conv").kernel_size == (5, 5)
    assert [kinds[f"4.{k}"] for k in range(1, 6)] == [
        "Conv2d",
        "LayerNorm2d",
        "PointwiseLinear",
        "PointwiseLinear",
        "Add",
    ]


def test_nerves_in_the_flat_forward() -> None:
    """The nerves are inlined: the flat forward calls torch's modules and functions only."""
    net = neurlink.mobilenet_v3_small(num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        net(x), net(x)
    targets = {
        type(net._flat.graph_module.get_submodule(n.target)).__name__
        for n in net._flat.graph_module.graph.nodes
        if n.op == "call_module"
    }
    allowed = {
        "Conv2d",
        "Conv2dOnPoints",
        "BatchNorm2d",
        "ReLU",
        "Hardswish",
        "Hardsigmoid",
        "AdaptiveAvgPool2d",
        "Dropout",
    }
    assert targets <= allowed


# --- mistakes -------------------------------------------------------------------------------

C8 = ((8, 2), nv.Conv2d(3))


@pytest.mark.parametrize(
    ("lines", "error", "message"),
    [
        (
            [C8, ((8, 2), nv.SqueezeExcitation(0))],
            neurlink.NerveArgumentError,
            "squeeze_channels=0 is not a positive int",
        ),
        (
            [C8, ((16, 2), nv.SqueezeExcitation(2))],
            neurlink.DimsError,
            r"SqueezeExcitation keeps the dims of its input line 1",
        ),
        (
            [C8, ((8, 2), nv.SqueezeExcitation[[0, 1]](2))],
            neurlink.DefinitionError,
            r"takes 1 input\(s\), but the selector gives 2",
        ),
        (
            [C8, ((8, 2), nv.SqueezeExcitation(2, act="relu"))],
            neurlink.NerveArgumentError,
            "act='relu' is not callable",
        ),
        (
            [((8, 2), nv.Conv1d(3)), ((8, 2), nv.SqueezeExcitation(2))],
            neurlink.DimsError,
            "SqueezeExcitation is 2d, but its input line 1 is 1d",
        ),
        ([C8, ((8, 2), nv.LayerNorm2d(eps=0))], neurlink.NerveArgumentError, "eps=0 is not a positive number"),
        ([C8, ((8, 4), nv.LayerNorm2d())], neurlink.DimsError, "LayerNorm2d keeps the dims"),
        ([C8, ((8, 2), nv.LayerNorm2d(bias=1))], neurlink.NerveArgumentError, "bias=1 is not a bool"),
        (
            [C8, ((8, 4), nv.PointwiseLinear())],
            neurlink.DimsError,
            "PointwiseLinear keeps the shape of its input line 1",
        ),
        ([C8, ((8, 2), nv.PointwiseLinear(act=3))], neurlink.NerveArgumentError, "act=3 is not callable"),
        ([C8, ((8, 2), nv.LayerScale("small"))], neurlink.NerveArgumentError, "init_value='small' is not a number"),
        ([C8, ((4, 2), nv.LayerScale())], neurlink.DimsError, "LayerScale keeps the dims"),
        ([C8, ((8, 2), nv.StochasticDepth(1.5))], neurlink.NerveArgumentError, r"p=1.5 is not a probability"),
        ([C8, ((8, 2), nv.StochasticDepth[[0, 1]](0.1))], neurlink.DefinitionError, r"takes 1 input\(s\)"),
        ([C8, ((8, 2), InvertedResidual(0))], neurlink.NerveArgumentError, "expand_ratio=0 is not a positive number"),
        ([C8, ((8, 2), InvertedResidual(squeeze_channels=-1))], neurlink.NerveArgumentError, "squeeze_channels=-1"),
        ([C8, ((8, 2), InvertedResidual(stochastic_depth=2))], neurlink.NerveArgumentError, "stochastic_depth|p=2"),
        ([C8, ((8, 2), MBConv(se_ratio=2))], neurlink.NerveArgumentError, r"se_ratio=2 is not in \(0, 1\]"),
        ([C8, ((16, 4), ConvNeXtBlock())], neurlink.DimsError, "ConvNeXtBlock keeps its dims, but reads"),
        ([C8, ((8, 2), ConvNeXtBlock(expansion=0))], neurlink.NerveArgumentError, "expansion=0 is not a positive int"),
        (
            [C8, ((8, 2), ConvNeXtBlock(layer_scale="x"))],
            neurlink.NerveArgumentError,
            "layer_scale='x' is not a number",
        ),
    ],
)
def test_nerve_mistakes(lines, error, message) -> None:
    with pytest.raises(error, match=message) as raised:
        nv.build([((3, 1), nv.Input()), *lines])
    assert "allowed:" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "keywords", "message"),
    [
        ("mobilenet_v2", {"width_mult": 0}, "width_mult=0 is not a positive number"),
        ("mobilenet_v3_large", {"dropout": 1.5}, "dropout=1.5 is not a probability"),
        ("efficientnet_b0", {"stochastic_depth_prob": 1.5}, "stochastic_depth_prob=1.5 is not a probability"),
        ("convnext_tiny", {"stochastic_depth_prob": -0.1}, "stochastic_depth_prob=-0.1"),
        ("efficientnet_b1", {"se_ratio": 0}, r"se_ratio=0 is not in \(0, 1\]"),
    ],
)
def test_builder_mistakes(name: str, keywords: dict, message: str) -> None:
    with pytest.raises(neurlink.NeurlinkError, match=message), torch.device("meta"):
        neurlink.create_model(name, **keywords)


def test_weights_of_another_family_name_both_keys() -> None:
    net = neurlink.mobilenet_v3_small(num_classes=10)
    with pytest.raises(neurlink.StateDictError) as error:
        load_torchvision(net, torchvision.models.mobilenet_v3_small(weights=None).state_dict())
    assert "torchvision key 'classifier.3.weight' has shape [1000, 1024], but neurlink key" in str(error.value)
    state = torchvision.models.efficientnet_b0(weights=None).state_dict()
    del state["features.1.0.block.1.fc1.bias"]
    with pytest.raises(
        neurlink.StateDictError,
        match=r"torchvision key 'features.1.0.block.1.fc1.bias' is missing; neurlink key '2.2.fc1.bias' needs it",
    ):
        load_torchvision(neurlink.efficientnet_b0(), state)
    with pytest.raises(
        neurlink.StateDictError,
        match=r"torchvision key 'features.1.0.layer_scale' is not used: no neurlink key maps to it",
    ):
        load_torchvision(neurlink.convnext_tiny(layer_scale=None), torchvision.models.convnext_tiny().state_dict())


# --- what a review of the families found ------------------------------------------------------


def test_mobilenet_v3_hidden_classifier_layer_is_initialised_like_a_linear() -> None:
    torch.manual_seed(0)
    net = neurlink.mobilenet_v3_large()
    hidden = net.get_submodule(str(len(net.lines) - 3)).conv  # torchvision's classifier.0, normal(0, 0.01)
    assert hidden.weight.shape[:2] == (1280, 960)
    assert 0.009 < hidden.weight.std().item() < 0.011
    assert hidden.bias.abs().max().item() == 0


def test_a_headless_mobilenet_v3_backbone_maps_to_torchvision_v3_keys() -> None:
    from neurlink.models.mobilenet import InvertedResidual

    bn = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 2), nv.Conv2d_BN_ReLU(3, norm=bn, act=nn.Hardswish)),
            ((16, 4), InvertedResidual(hidden_channels=16, squeeze_channels=8, act=nn.ReLU, norm=bn)),
            ((24, 8), InvertedResidual(hidden_channels=72, act=nn.ReLU, norm=bn)),
        ]
    )
    reference = torchvision.models.mobilenet_v3_small().features[:3]
    keys = list(to_torchvision_state_dict(net))
    assert keys == ["features." + key for key in reference.state_dict()]


@pytest.mark.parametrize("block", ["InvertedResidual", "MBConv", "ConvNeXtBlock", "BasicBlock"])
def test_blocks_are_2d(block: str) -> None:
    cls = getattr(neurlink.models, block)
    with pytest.raises(neurlink.DimsError, match=f"{block} is 2d, but its input line 1 is 1d"):
        nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv1d(3)), ((8, 2), cls())])


@pytest.mark.parametrize(
    ("builder", "keywords", "message"),
    [
        (
            "mobilenet_v2",
            {"width_multiplier": 0.5},
            r"mobilenet_v2\(\) got unexpected keyword argument\(s\) 'width_multiplier'",
        ),
        (
            "efficientnet_b0",
            {"width_mult": 1.2},
            r"efficientnet_b0\(\) got unexpected keyword argument\(s\) 'width_mult'",
        ),
        (
            "convnext_tiny",
            {"drop_path_rate": 0.1},
            r"convnext_tiny\(\) got unexpected keyword argument\(s\) 'drop_path_rate'",
        ),
        ("mobilenet_v3_small", {"pretrained": True}, r"'pretrained' \(published weights: weights='DEFAULT'\)"),
    ],
)
def test_builders_name_keywords_they_do_not_take(builder: str, keywords: dict, message: str) -> None:
    with pytest.raises(neurlink.NerveArgumentError, match=message), torch.device("meta"):
        getattr(neurlink, builder)(**keywords)


def test_a_strided_1x1_conv_reads_a_permuted_input_contiguous() -> None:
    """torch 2.14's oneDNN corrupts the heap in the weight gradient of a 1x1 strided conv on a
    channels-last input (docs/known-issues.md); PointwiseLinear returns one for a contiguous input."""
    net = nv.build(
        [
            ((4, 1), nv.Input()),
            ((4, 1), nv.PointwiseLinear()),
            ((16, 2), nv.Conv2d(1)),  # a projection: 1x1, stride 2
            ((16, 2), nv.Conv2d(3)),
        ]
    )
    seen = []
    for line in (2, 3):
        net[line].conv.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
    x = torch.randn(2, 4, 16, 16)
    for _ in range(3):  # the first call (line by line) and the flat forward
        net(x).sum().backward()
    assert seen == [True, True] * 3
    channels_last = net[2].conv(torch.randn(2, 4, 16, 16).to(memory_format=torch.channels_last))
    assert channels_last.shape == (2, 16, 8, 8)
