"""torchvision's MNASNet written as lines: every model's parameters, widths, keys and shapes (on the meta
device), outputs equal to torchvision's with its weights at even, odd and non-square sizes (1.0, and 0.75,
whose rounding of the widths differs), outputs and gradients in training, the weights round trip (with the
layout version torchvision's MNASNet requires), its BatchNorm momentum, dropout and initialisation."""

from __future__ import annotations

import pytest
import torch
import torchvision
from networks import MNASNET_PARAMETERS, assert_same_outputs, count, randomize_batchnorm
from torch import nn
from torchvision.models import mnasnet as tv_mnasnet

import neurlink
import neurlink.nerves as nv
from neurlink.errors import NerveArgumentError, StateDictError, UnexpectedArgumentError
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.interop.torchvision._mnasnet import mnasnet_pairs
from neurlink.models import _registry
from neurlink.models.mnasnet import BN_MOMENTUM, MNASNetBlock, mnasnet_depths

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

SIZES = ((64, 64), (33, 33), (45, 71))
ALPHAS = {"mnasnet0_5": 0.5, "mnasnet0_75": 0.75, "mnasnet1_0": 1.0, "mnasnet1_3": 1.3}


def pair(name: str, seed: int = 0, **keywords) -> tuple[nn.Module, nv.Network]:
    """torchvision's model with random norm statistics and affines, and ours with its weights."""
    theirs = getattr(torchvision.models, name)(weights=None, **keywords)
    randomize_batchnorm(theirs, torch.Generator().manual_seed(seed))
    return theirs, load_torchvision(neurlink.create_model(name, **keywords), theirs).eval()


# --- every builder, on the meta device ---------------------------------------------------------


@pytest.mark.parametrize("name", MNASNET_PARAMETERS)
def test_parameters_widths_keys_and_shapes_are_torchvisions(name: str) -> None:
    with torch.device("meta"):
        ours = neurlink.create_model(name)
        theirs = getattr(torchvision.models, name)(weights=None)
    assert count(ours) == MNASNET_PARAMETERS[name] == count(theirs)
    assert getattr(neurlink, name) is getattr(neurlink.models, name) is _registry._BUILDERS[name]
    assert list(mnasnet_depths(ALPHAS[name])) == tv_mnasnet._get_depths(ALPHAS[name])
    exported = to_torchvision_state_dict(ours)
    assert [(key, tensor.shape) for key, tensor in exported.items()] == [
        (key, tensor.shape) for key, tensor in theirs.state_dict().items()
    ]
    assert exported._metadata[""]["version"] == theirs.state_dict()._metadata[""]["version"] == 2
    ours_momenta = [m.momentum for m in ours.modules() if isinstance(m, nn.BatchNorm2d)]
    assert ours_momenta == [m.momentum for m in theirs.modules() if isinstance(m, nn.BatchNorm2d)]
    assert set(ours_momenta) == {BN_MOMENTUM}
    assert [m.p for m in ours.modules() if isinstance(m, nn.Dropout)] == [0.2]


@pytest.mark.parametrize("alpha", [0.1, 0.35, 0.5, 0.6, 0.75, 1.0, 1.1, 1.3, 1.4, 2.0, 3.7])
def test_depths_round_as_torchvisions(alpha: float) -> None:
    assert list(mnasnet_depths(alpha)) == tv_mnasnet._get_depths(alpha)


# --- outputs, gradients and weights against torchvision ---------------------------------------


@pytest.mark.parametrize("name", ["mnasnet1_0", "mnasnet0_75"])
def test_outputs_are_torchvisions_at_every_size(name: str) -> None:
    theirs, ours = pair(name)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for size in SIZES:
            x = torch.randn(1, 3, *size, generator=generator)
            expected = theirs(x)
            assert_same_outputs(ours(x), expected)  # the first call of a size checks every line
            assert_same_outputs(ours(x), expected)  # then the flat forward
            assert torch.equal(ours(x, outputs=["features"])[0], theirs.layers(x))  # bitwise up to the head


@pytest.mark.parametrize("name", ["mnasnet0_5", "mnasnet1_3"])
def test_the_other_multipliers_are_torchvision(name: str) -> None:
    theirs, ours = pair(name, seed=5)
    x = torch.randn(1, 3, 37, 50, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert_same_outputs(ours(x), theirs(x))


def test_training_outputs_and_gradients_are_torchvisions() -> None:
    """In training mode (batch statistics, no dropout): the same logits, input and weight gradients."""
    theirs, ours = pair("mnasnet0_5", seed=2, dropout=0.0)
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
    theirs_parameters = dict(theirs.named_parameters())
    compared = 0
    for mapped in mnasnet_pairs(ours):
        if mapped.reference in theirs_parameters:
            grad, reference_grad = ours.get_parameter(mapped.neurlink).grad, theirs_parameters[mapped.reference].grad
            torch.testing.assert_close(grad.reshape(reference_grad.shape), reference_grad, rtol=1e-4, atol=1e-6)
            compared += 1
    assert compared == len(theirs_parameters)


def test_weights_round_trip_strictly_with_the_layout_version() -> None:
    theirs, ours = pair("mnasnet0_75", seed=4)
    state = to_torchvision_state_dict(ours)
    assert list(state) == list(theirs.state_dict())
    fresh = torchvision.models.mnasnet0_75(weights=None)
    fresh.load_state_dict(state, strict=True)  # refused without the version: "version should be set to 1 or 2"
    assert all(torch.equal(fresh.state_dict()[key], value) for key, value in theirs.state_dict().items())


def test_initialisation_like_torchvision() -> None:
    torch.manual_seed(0)
    net = neurlink.mnasnet1_0()
    stem = net["stem"].conv.weight  # He normal, fan_out: std sqrt(2 / (32 * 9))
    assert abs(stem.std().item() - (2 / (32 * 9)) ** 0.5) < 0.02
    head = net[-1].conv  # He uniform, fan_out, a sigmoid's gain: bound sqrt(3 / 1000)
    bound = (3 / 1000) ** 0.5
    assert 0.95 * bound < head.weight.abs().max() <= bound and not head.bias.any()
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all()) and not m.bias.any() for m in norms)


# --- the lines ---------------------------------------------------------------------------------


def test_stages_are_tagged_and_make_a_pyramid() -> None:
    net = neurlink.mnasnet0_5(num_classes=10).eval()
    with torch.no_grad():
        features = net(torch.randn(1, 3, 65, 50), outputs=["stem", "stage1", "stage2", "stage3", "stage5", "features"])
    assert [tuple(f.shape[1:]) for f in features] == [
        (16, 33, 25),
        (16, 17, 13),
        (24, 9, 7),
        (40, 5, 4),
        (96, 3, 2),
        (1280, 3, 2),
    ]
    assert [net[f"stage{k}"].target_dims[0].channels for k in range(1, 7)] == list(mnasnet_depths(0.5)[2:])
    sums = [
        isinstance(list(block.children())[-1], nv.Add) for block in net.children() if isinstance(block, MNASNetBlock)
    ]
    assert sums == [False, True, True] * 3 + [False, True] + [False, True, True, True] + [False]


def test_builder_keywords() -> None:
    with torch.device("meta"):
        net = neurlink.mnasnet1_0(num_classes=5, dropout=0.5, act=nn.ReLU6)
        theirs = torchvision.models.mnasnet1_0(num_classes=5)
    assert count(net) == count(theirs)
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.5]
    assert any(isinstance(m, nn.ReLU6) for m in net.modules()) and not any(type(m) is nn.ReLU for m in net.modules())
    with pytest.raises(UnexpectedArgumentError, match="'alpha'"):
        neurlink.mnasnet1_0(alpha=2.0)
    with pytest.raises(NerveArgumentError, match="dropout=1.5"):
        neurlink.mnasnet1_0(dropout=1.5)


def test_the_block_always_expands_as_torchvisions() -> None:
    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3)), ((8, 2), MNASNetBlock(1))])
    convs = [m.conv for m in net[2].children() if isinstance(m, nv.ConvNd)]
    assert [(c.in_channels, c.out_channels, c.groups) for c in convs] == [(8, 8, 1), (8, 8, 8), (8, 8, 1)]
    with pytest.raises(NerveArgumentError, match=r"(?s)line 2: .*expansion_factor=1.5 is not a positive int"):
        nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3)), ((8, 2), MNASNetBlock(1.5))])


def test_a_network_torchvision_has_no_keys_for_is_refused() -> None:
    with torch.device("meta"):
        net = nv.build(
            [
                ((3, 1), nv.Input()),
                ((16, 2), nv.Conv2d_BN_ReLU(3)),
                ((24, 4), MNASNetBlock(3)),
                ((24, "(1, 1)"), nv.AvgPool2d()),
                ((10, "(1, 1)"), nv.Conv2d_BN_ReLU(1)),  # a norm on the classifier: torchvision's Linear has none
            ]
        )
    with pytest.raises(StateDictError, match=r"line 4 \(Conv2d_BN_ReLU\) has weights"):
        to_torchvision_state_dict(net)
