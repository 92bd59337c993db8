"""torchvision's AlexNet, VGG and SqueezeNet written as lines: every model's parameters, keys and shapes (on
the meta device), outputs and features bitwise equal to torchvision's with its weights at the sizes where
floor and ceil rounding part (odd and non-square ones, down to torchvision's smallest), outputs, gradients
and batch statistics in training, the weights round trip, torchvision's initialisation, the Fire module
against torchvision's, and the mistakes refused."""

from __future__ import annotations

import pytest
import torch
import torchvision
from networks import PLAIN_PARAMETERS, count, randomize_batchnorm
from torch import nn
from torchvision.models import squeezenet as tv_squeezenet

import neurlink
import neurlink.nerves as nv
from neurlink.errors import DimsError, NerveArgumentError, StateDictError, UnexpectedArgumentError
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.interop.torchvision._plain import plain_pairs
from neurlink.models import _registry
from neurlink.models.squeezenet import Fire

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

# Sizes where PyTorch's floor (and SqueezeNet's ceil) rounding differ from ceil(size / ratio), down to the
# smallest each takes: AlexNet's 11x11 stride-4 stem floors 77 to 18 (ceil(77 / 4) is 20), VGG's pools floor
# 33 and 45 at every stage (50 -> 25 -> 12 -> 6 -> 3 -> 1), SqueezeNet's unpadded stem and ceil-mode pools.
ALEXNET_SIZES = ((63, 63), (64, 77), (224, 224))
VGG_SIZES = ((32, 32), (33, 45), (50, 50))
SQUEEZENET_SIZES = {"squeezenet1_1": ((17, 17), (33, 33), (64, 51), (224, 224)), "squeezenet1_0": ((21, 21), (35, 50))}
COMPARED = ["alexnet", "vgg11_bn", "squeezenet1_1"]  # outputs compared in the default run; the others: -m slow


def sizes(name: str) -> tuple[tuple[int, int], ...]:
    if name.startswith("vgg"):
        return VGG_SIZES
    return ALEXNET_SIZES if name == "alexnet" else SQUEEZENET_SIZES[name]


def pair(name: str, seed: int = 0, **keywords) -> tuple[nn.Module, nv.Network]:
    """torchvision's model (with random norm statistics and affines where it has norms), and ours with its weights."""
    theirs = getattr(torchvision.models, name)(weights=None, **keywords)
    if any(isinstance(module, nn.BatchNorm2d) for module in theirs.modules()):
        randomize_batchnorm(theirs, torch.Generator().manual_seed(seed))
    return theirs.eval(), load_torchvision(neurlink.create_model(name, **keywords), theirs).eval()


def logits(net: nv.Network, x: torch.Tensor, **keywords) -> torch.Tensor:
    """The network's classes as torchvision returns them, (N, classes): SqueezeNet's 1x1 map flattened."""
    out = net(x, **keywords)
    return out.flatten(1)


# --- every builder, on the meta device ---------------------------------------------------------


@pytest.mark.parametrize("name", PLAIN_PARAMETERS)
def test_parameters_keys_and_shapes_are_torchvisions(name: str) -> None:
    with torch.device("meta"):
        ours = neurlink.create_model(name)
        theirs = getattr(torchvision.models, name)(weights=None)
    assert count(ours) == PLAIN_PARAMETERS[name] == count(theirs)
    assert getattr(neurlink, name) is getattr(neurlink.models, name) is _registry._BUILDERS[name]
    exported = to_torchvision_state_dict(ours)
    assert [(key, tensor.shape) for key, tensor in exported.items()] == [
        (key, tensor.shape) for key, tensor in theirs.state_dict().items()
    ]
    assert str(theirs.load_state_dict(exported, strict=True)) == "<All keys matched successfully>"
    with pytest.raises(StateDictError, match="the state_dict fits, but this Network is on the meta device"):
        load_torchvision(ours, theirs.state_dict())  # every key and shape checked, then refused: nothing to copy into


@pytest.mark.parametrize("name", ["alexnet", "vgg16_bn", "squeezenet1_0"])
def test_output_shapes(name: str) -> None:
    with torch.device("meta"):
        net = neurlink.create_model(name, num_classes=10)
        out = net(torch.zeros(2, 3, 224, 224))
    # AlexNet and VGG end in torchvision's Linear classifier, a vector line; SqueezeNet's classifier is a conv
    assert tuple(out.shape) == ((2, 10, 1, 1) if name.startswith("squeezenet") else (2, 10))


# --- outputs, gradients and weights against torchvision ----------------------------------------


@pytest.mark.parametrize(
    "name", [n if n in COMPARED else pytest.param(n, marks=pytest.mark.slow) for n in PLAIN_PARAMETERS]
)
def test_torchvision_weights_give_torchvision_outputs_and_round_trip(name: str) -> None:
    theirs, ours = pair(name)
    features = "stage3" if name.startswith("squeezenet") else "features"  # the end of torchvision's features
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for size in sizes(name):
            x = torch.randn(2, 3, *size, generator=generator)
            expected = theirs(x)
            for _ in range(2):  # the first call of a size checks every line, then the flat forward
                assert torch.equal(logits(ours, x), expected), size  # the same operations: bitwise
            assert torch.equal(ours(x, outputs=[features])[0], theirs.features(x)), size
    exported, state = to_torchvision_state_dict(ours), theirs.state_dict()
    assert list(exported) == list(state)
    assert all(torch.equal(exported[key], value) for key, value in state.items())
    assert str(theirs.load_state_dict(exported, strict=True)) == "<All keys matched successfully>"


@pytest.mark.parametrize(
    ("name", "size"),
    [("alexnet", (67, 70)), pytest.param("vgg11_bn", (33, 45), marks=pytest.mark.slow), ("squeezenet1_1", (45, 38))],
)
def test_training_outputs_gradients_and_statistics_are_torchvisions(name: str, size: tuple[int, int]) -> None:
    """In training mode (batch statistics; no dropout, whose masks are random): the same logits, input and
    weight gradients, and the running statistics of every norm after the step. VGG-BN's is slow (its
    gradients are 133M values): its norms are Conv2d_BN_ReLU lines, which the other families train."""
    theirs, ours = pair(name, seed=3, dropout=0.0)
    theirs.train(), ours.train()
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(4))
    mine, reference = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours_logits, theirs_logits = logits(ours, mine), theirs(reference)
    torch.testing.assert_close(ours_logits, theirs_logits, rtol=0, atol=0)
    ours_logits.square().mean().backward()
    theirs_logits.square().mean().backward()
    torch.testing.assert_close(mine.grad, reference.grad, rtol=1e-5, atol=1e-9)
    parameters, buffers = dict(ours.named_parameters()), dict(ours.named_buffers())
    mapping = {p.reference: p.neurlink for p in plain_pairs(ours)}
    for key, parameter in theirs.named_parameters():
        grad = parameters[mapping[key]].grad
        assert grad is not None and grad.isfinite().all(), key
        scale = max(1e-9, parameter.grad.abs().max().item())
        torch.testing.assert_close(grad, parameter.grad, rtol=1e-5, atol=1e-6 * scale)
    for key, buffer in theirs.named_buffers():
        torch.testing.assert_close(buffers[mapping[key]], buffer, rtol=0, atol=0)


def test_every_parameter_gets_a_gradient_with_dropout() -> None:
    net = neurlink.squeezenet1_1(num_classes=10).train()
    net(torch.randn(2, 3, 33, 41)).square().mean().backward()
    missing = [key for key, p in net.named_parameters() if p.grad is None or not p.grad.isfinite().all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"


def test_initialisation_is_torchvisions() -> None:
    """The distributions torchvision draws: SqueezeNet He-uniform convs and a normal(0, 0.01) final conv;
    VGG He-normal (fan_out) convs and normal(0, 0.01) Linear layers; AlexNet PyTorch's defaults; biases zero
    where torchvision sets them so."""
    torch.manual_seed(0)
    squeeze = neurlink.squeezenet1_1()
    stem, final = squeeze["stem"].conv.weight, squeeze[-2].conv.weight
    bound = (6 / (3 * 3 * 3)) ** 0.5  # kaiming_uniform_: gain sqrt(2), fan_in 27
    assert stem.abs().max() <= bound and stem.abs().max() > 0.9 * bound
    assert abs(final.std().item() - 0.01) < 5e-4 and abs(final.mean().item()) < 5e-4
    assert all(not m.bias.any() for m in squeeze.modules() if isinstance(m, nn.Conv2d))
    with torch.device("meta"):  # the counts and kinds of VGG's layers, without drawing 133M values here
        vgg = neurlink.vgg11_bn()
    linears = [m for m in vgg.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [4096, 4096, 1000]
    small = neurlink.vgg11(num_classes=10)  # its head is still 103M: check a slice of each draw
    conv = small["stage1"].conv.weight  # 64 x 3 x 3 x 3, fan_out = 64 * 9
    assert abs(conv.std().item() - (2 / (64 * 9)) ** 0.5) < 0.005
    head = small[-1].linear.weight
    assert abs(head.std().item() - 0.01) < 1e-3 and not small[-1].linear.bias.any()
    alexnet = neurlink.alexnet(num_classes=10)
    first = alexnet["stage1"].conv  # PyTorch's default: uniform in 1 / sqrt(fan_in), bias too
    assert first.weight.abs().max() <= (1 / 363) ** 0.5 and first.bias.any()


# --- the lines ---------------------------------------------------------------------------------


def test_squeezenet_stages_are_tagged_and_make_a_pyramid() -> None:
    net = neurlink.squeezenet1_0(num_classes=10).eval()
    with torch.no_grad():
        features = net(torch.randn(1, 3, 65, 50), outputs=["stem", "stage1", "stage2", "stage3", -1])
    assert [tuple(f.shape[1:]) for f in features] == [(96, 30, 22), (256, 15, 11), (512, 7, 5), (512, 3, 2), (10, 1, 1)]
    fire = net["stage1"]
    assert fire.line_tags() == {"squeeze": 1, "expand1x1": 2, "expand3x3": 3}
    assert (fire["squeeze"].conv.out_channels, fire["expand1x1"].conv.out_channels) == (32, 128)


def test_vgg_lines_are_torchvisions_configurations() -> None:
    with torch.device("meta"):
        for depth, configuration in ((11, "A"), (13, "B"), (16, "D"), (19, "E")):
            net = getattr(neurlink, f"vgg{depth}")()
            expected = [v for v in torchvision.models.vgg.cfgs[configuration]]
            written = [
                "M" if isinstance(m, nv.MaxPool2d) else m.conv.out_channels
                for m in net.children()
                if isinstance(m, (nv.MaxPool2d, nv.Conv2d))
            ]
            assert written == expected, depth


def test_fire_is_torchvisions_fire() -> None:
    torch.manual_seed(0)
    net = nv.build([((96, 1), nv.Input()), ((128, 1), Fire(16))]).eval()
    reference = tv_squeezenet.Fire(96, 16, 64, 64).eval()
    reference.load_state_dict(
        {
            f"{part}.{kind}": getattr(net[1][part].conv, kind)
            for part in ("squeeze", "expand1x1", "expand3x3")
            for kind in ("weight", "bias")
        }
    )
    x = torch.randn(2, 96, 13, 10)
    with torch.no_grad():
        for _ in range(2):
            assert torch.equal(net(x), reference(x))


def test_fire_keywords() -> None:
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 2), nv.Conv2d_ReLU(3, padding="valid")),
            ((40, 4), Fire(8, 24, act=nn.SiLU)),  # strided: both expand convs land on the line's ratio
        ]
    )
    fire = net[2]
    assert [fire[tag].conv.out_channels for tag in ("squeeze", "expand1x1", "expand3x3")] == [8, 24, 16]
    assert fire["expand1x1"].conv.stride == fire["expand3x3"].conv.stride == (2, 2)
    assert all(isinstance(fire[tag].act, nn.SiLU) for tag in ("squeeze", "expand1x1", "expand3x3"))
    assert tuple(net(torch.randn(1, 3, 35, 20)).shape) == (1, 40, 9, 5)


@pytest.mark.parametrize(
    ("fire", "error", "message"),
    [
        (Fire(0), NerveArgumentError, r"squeeze_channels=0 is not a positive int"),
        (Fire(8, 0), NerveArgumentError, r"expand1x1_channels=0 is not a positive int"),
        (Fire(8, 32), DimsError, r"expand1x1_channels=32 leaves none of the line's 32 channels"),
    ],
)
def test_fire_mistakes_name_the_line(fire, error: type, message: str) -> None:
    with pytest.raises(error, match=r"(?s)line 2: \(\(32, 1\), Fire.*" + message):
        nv.build([((3, 1), nv.Input()), ((16, 1), nv.Conv2d_ReLU(3)), ((32, 1), fire)])


def test_a_network_of_your_own_maps_to_its_torch_twin() -> None:
    """The mapping follows the lines, not the zoo's builders: a small VGG-BN-like net with a Fire maps
    onto the same layers written with torch.nn as torchvision writes them."""

    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.MaxPool2d(2, 2),
                tv_squeezenet.Fire(16, 8, 16, 16),
                nn.MaxPool2d(3, 2, ceil_mode=True),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
            self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(32 * 4, 10))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 1), nv.Conv2d_BN_ReLU(3, bias=True)),
            ((16, 2), nv.MaxPool2d(2, padding="valid")),
            ((32, 2), Fire(8)),
            ((32, 4), nv.MaxPool2d(3, padding=0, ceil_mode=True)),
            ((32, "(2, 2)"), nv.AvgPool2d()),
            ((32, "(2, 2)"), nn.Dropout()),
            ((10, "()"), nv.Linear()),
        ]
    )
    twin = Twin()
    randomize_batchnorm(twin, torch.Generator().manual_seed(5))
    load_torchvision(net, twin.state_dict()).eval()
    assert list(to_torchvision_state_dict(net)) == list(twin.state_dict())
    x = torch.randn(2, 3, 23, 30)
    with torch.no_grad():
        assert torch.equal(net(x), twin(x))


# --- errors ------------------------------------------------------------------------------------


def test_another_models_state_dict_names_the_keys() -> None:
    with torch.device("meta"):
        ours, theirs = neurlink.vgg11(), torchvision.models.vgg11_bn(weights=None)
    with pytest.raises(StateDictError) as raised:  # VGG-BN's norms are items of features: every index shifts
        load_torchvision(ours, theirs.state_dict())
    assert "torchvision key 'features.3.weight' is missing" in str(raised.value)  # VGG-11's second conv
    assert "neurlink key '3.conv.weight' needs it" in str(raised.value)
    with pytest.raises(StateDictError, match=r"torchvision key 'features.3.squeeze.weight' has shape \[16, 64, 1, 1\]"):
        with torch.device("meta"):
            load_torchvision(neurlink.squeezenet1_0(), torchvision.models.squeezenet1_1(weights=None).state_dict())


def test_a_line_torchvision_lacks_is_named() -> None:
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 2), nv.Conv2d_ReLU(3, padding="valid")),
            ((16, 2), nn.BatchNorm2d(16)),  # a plain module with weights in features
            ((32, 2), Fire(8)),
            ((32, "(1, 1)"), nv.AvgPool2d()),
            ((10, "()"), nv.Linear()),
        ]
    )
    with pytest.raises(StateDictError, match=r"line 2 \(BatchNorm2d\) has weights, but torchvision's SqueezeNet"):
        to_torchvision_state_dict(net)


def test_builder_keywords() -> None:
    with torch.device("meta"):
        net = neurlink.vgg13_bn(num_classes=5, dropout=0.2)
        squeeze = neurlink.squeezenet1_1(num_classes=3, dropout=0.0)
    assert net[-1].linear.out_features == 5
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.2, 0.2]
    assert squeeze[-2].conv.out_channels == 3 and [m.p for m in squeeze.modules() if isinstance(m, nn.Dropout)] == [0.0]
    with pytest.raises(UnexpectedArgumentError, match=r"alexnet\(\) got unexpected keyword argument\(s\) 'width'"):
        neurlink.alexnet(width=2)
    with pytest.raises(UnexpectedArgumentError, match="weights='DEFAULT'"):
        neurlink.vgg16(pretrained=True)
    with pytest.raises(NerveArgumentError, match="dropout=1.5 is not a probability"):
        neurlink.squeezenet1_0(dropout=1.5)
    with pytest.raises(NerveArgumentError, match="num_classes=0 is not a positive int"):
        neurlink.vgg11(num_classes=0)
