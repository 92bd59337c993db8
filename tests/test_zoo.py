"""The model zoo: every builder against torchvision, and the registry."""

from __future__ import annotations

import pytest
import torch
import torchvision
from networks import (  # shared with other tests
    FAMILY_PARAMETERS,
    SEED_SHAPES,
    SEGMENTATION_PARAMETERS,
    TRANSFORMER_PARAMETERS,
    assert_same_outputs,
    count,
    randomize_batchnorm,
)
from torch import nn

import neurlink
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.models import _registry

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

# torchvision's parameter counts (torchvision.models.<name>(weights=None)).
PARAMETERS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
}
# The largest models take most of the time on a small CI machine.
SLOW = {"resnet152", "resnext101_32x8d", "wide_resnet101_2"}
BUILDERS = [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in PARAMETERS]


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_is_torchvision(name: str) -> None:
    generator = torch.Generator().manual_seed(0)
    net = neurlink.create_model(name)
    assert count(net) == PARAMETERS[name]

    # torchvision's weights give torchvision's outputs, at an even size and at one odd at every stage
    reference = getattr(torchvision.models, name)(weights=None)
    randomize_batchnorm(reference, generator)
    load_torchvision(net, reference.state_dict())
    net.eval()
    with torch.no_grad():
        for size in (64, 33):
            x = torch.randn(2, 3, size, size, generator=generator)
            y = net(x)
            assert y.shape == (2, 1000, 1, 1)
            assert_same_outputs(y, reference(x))

    # training: the output shape, no NaN, a finite gradient for every parameter
    net.train()
    y = net(torch.randn(2, 3, 32, 32, generator=generator))
    assert y.shape == (2, 1000, 1, 1)
    assert not y.isnan().any()
    y.square().mean().backward()
    missing = [key for key, p in net.named_parameters() if p.grad is None or not p.grad.isfinite().all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"

    # the way back: after a training step (new weights and running statistics), torchvision serves the model
    with torch.no_grad():
        for p in net.parameters():
            p.sub_(p.grad.clamp(-1, 1) * 1e-3)
    net.eval()
    state = to_torchvision_state_dict(net)
    assert list(state) == list(reference.state_dict())
    reference.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 33, 33, generator=generator)
    with torch.no_grad():
        assert_same_outputs(net(x), reference(x))


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_parameter_count(name: str) -> None:
    # on the meta device: no memory, so the largest models are checked in the fast run too
    with torch.device("meta"):
        net = neurlink.create_model(name)
    assert count(net) == PARAMETERS[name]
    assert getattr(neurlink, name) is _registry._BUILDERS[name]


def test_seed_printout() -> None:
    """The 13 shapes the original neurlink README prints for ResNet-18."""
    net = neurlink.resnet18()
    with torch.no_grad():
        shapes = [tuple(y.shape) for y in net(torch.randn(2, 3, 224, 224), output_intermediate=True)]
    assert shapes == SEED_SHAPES


def test_feature_pyramid() -> None:
    net = neurlink.resnet50(num_classes=10)
    with torch.no_grad():
        features = net(torch.randn(1, 3, 65, 65), outputs=["stem", "layer1", "layer2", "layer3", "layer4"])
    assert [tuple(f.shape) for f in features] == [
        (1, 64, 33, 33),
        (1, 256, 17, 17),
        (1, 512, 9, 9),
        (1, 1024, 5, 5),
        (1, 2048, 3, 3),
    ]


def test_blocks_in_user_lines() -> None:
    from neurlink.models.resnet import BasicBlock, BottleNeck, Bottleneck

    assert BottleNeck is Bottleneck
    nv = neurlink.nv
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((32, 2), nv.Conv2d_BN_ReLU(3)),
            ((32, 2), BasicBlock(act=nn.SiLU, norm=None)),  # identity skip, convs with biases
            ((64, 4), BasicBlock(kernel_size=5)),
            ((64, 8), Bottleneck(expansion=2, width=0.5, groups=4)),
        ]
    )
    assert net(torch.randn(2, 3, 30, 30)).shape == (2, 64, 4, 4)
    keys = net.state_dict().keys()
    assert "2.1.conv.bias" in keys and "2.3.project.conv.weight" not in keys  # same dims: no projection
    assert net.state_dict()["3.1.conv.weight"].shape == (64, 32, 5, 5)
    # hidden = int(64 / 2 * 0.5) * 4 = 64, groups on the middle conv only
    assert net.state_dict()["4.1.conv.weight"].shape == (64, 64, 1, 1)
    assert net.state_dict()["4.2.conv.weight"].shape == (64, 16, 3, 3)
    assert isinstance(net.get_submodule("2.4"), nn.SiLU)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"groups": 0}, "groups=0 is not a positive int"),
        ({"width": -1.0}, "width=-1.0 is not a positive number"),
        ({"expansion": 0}, "expansion=0 is not a positive int"),
        ({"width": 1 / 512}, "leaves no hidden channel"),
        ({"groups": 3}, "divisible by groups"),
        ({"widht": 2.0}, "widht"),
    ],
)
def test_block_arguments(keywords: dict, message: str) -> None:
    with pytest.raises(neurlink.NerveArgumentError, match=message), torch.device("meta"):
        neurlink.resnet18(**keywords)


def test_builder_keywords() -> None:
    with torch.device("meta"):
        net = neurlink.resnet18(num_classes=7, norm=lambda channels: nn.GroupNorm(8, channels))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert net.state_dict()["3.1.norm.weight"].shape == (64,)
    assert net.state_dict()["12.conv.bias"].shape == (7,)


# --- the registry -----------------------------------------------------------------------------


def test_list_models() -> None:
    # every registered model against its reference count: test_registry_contract.py
    assert {*PARAMETERS, *FAMILY_PARAMETERS, *SEGMENTATION_PARAMETERS, *TRANSFORMER_PARAMETERS} <= set(
        neurlink.list_models()
    )
    assert neurlink.list_models("resnet*") == ["resnet101", "resnet152", "resnet18", "resnet34", "resnet50"]
    assert neurlink.list_models("*_2") == ["wide_resnet101_2", "wide_resnet50_2"]
    assert neurlink.list_models("xception*") == []


def test_create_model_passes_keywords() -> None:
    net = neurlink.create_model("resnet18", num_classes=3).eval()
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 3, 1, 1)


def test_unknown_model_suggests() -> None:
    with pytest.raises(neurlink.UnknownModelError, match=r"'resnet05'.*did you mean 'resnet50'") as error:
        neurlink.create_model("resnet05")
    assert isinstance(error.value, neurlink.NeurlinkError)
    with pytest.raises(neurlink.NeurlinkError, match="no model is registered as 'xception'"):
        neurlink.create_model("xception")


def test_register_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_BUILDERS", dict(_registry._BUILDERS))

    @neurlink.models.register_model
    def tiny(num_classes: int = 2) -> nn.Module:
        return nn.Linear(3, num_classes)

    @neurlink.models.register_model(name="tiny_too")
    def another() -> nn.Module:
        return nn.Identity()

    assert neurlink.create_model("tiny", num_classes=5).out_features == 5
    assert neurlink.list_models("tiny*") == ["tiny", "tiny_too"]
    assert isinstance(neurlink.create_model("tiny_too"), nn.Identity)
    with pytest.raises(neurlink.NeurlinkError, match="'tiny' is already registered"):
        neurlink.models.register_model(tiny)
    with pytest.raises(neurlink.NeurlinkError, match="'resnet18' is already registered"):
        neurlink.models.register_model(name="resnet18")(another)
