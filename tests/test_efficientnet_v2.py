"""EfficientNetV2 (efficientnet_v2_s, _m, _l) and its FusedMBConv against torchvision.

The parametrized tests of tests/test_families.py hold every V2 builder to torchvision's parameter
count (meta), train it with stochastic depth on (a finite gradient for every parameter) and round-trip
its weights strictly (m and l slow); tests/test_registry_contract.py runs, saves and traces it.
Here: outputs and every stage equal at odd and non-square sizes, the block against torchvision's own
block in training, torchvision's rates, and the larger models' key mapping on the meta device.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torchvision
from networks import assert_same_outputs, count, randomize_batchnorm
from torch import nn
from torchvision.models.efficientnet import FusedMBConv as TorchvisionFusedMBConv
from torchvision.models.efficientnet import FusedMBConvConfig
from torchvision.ops import StochasticDepth as TorchvisionStochasticDepth

import neurlink
import neurlink.nerves as nv
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.models import FusedMBConv, MBConv

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

V2 = ["efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"]
TAGS = ["stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "features"]


def test_efficientnet_v2_s_is_torchvision() -> None:
    """Logits, and the output of every item of torchvision's ``features`` (its stages) bitwise, at
    sizes that halve evenly, oddly and differently in each dim; then the weights back, strictly."""
    generator = torch.Generator().manual_seed(0)
    theirs = torchvision.models.efficientnet_v2_s(weights=None)
    randomize_batchnorm(theirs, generator)
    ours = load_torchvision(neurlink.efficientnet_v2_s(), theirs.state_dict()).eval()
    with torch.no_grad():
        for size in ((64, 64), (33, 33), (45, 71)):
            x = torch.randn(1, 3, *size, generator=generator)
            assert_same_outputs(ours(x), theirs(x))  # the first call of a size checks every line
            assert_same_outputs(ours(x), theirs(x))  # then the flat forward
            expected = [x]
            for item in theirs.features:
                expected.append(item(expected[-1]))
            for tag, mine, reference in zip(TAGS, ours(x, outputs=TAGS), expected[1:], strict=True):
                assert torch.equal(mine, reference), (size, tag)
    fresh = torchvision.models.efficientnet_v2_s(weights=None)
    fresh.load_state_dict(to_torchvision_state_dict(ours), strict=True)
    assert all(torch.equal(fresh.state_dict()[key], value) for key, value in theirs.state_dict().items())


@pytest.mark.parametrize(
    ("expand", "kernel", "stride", "channels"),
    [(1, 3, 1, 16), (1, 3, 2, 24), (4, 3, 2, 32), (4, 3, 1, 16), (4, 5, 1, 24)],
)
def test_fused_mbconv_is_torchvisions_block_in_training(expand: int, kernel: int, stride: int, channels: int) -> None:
    """One block on its own in train mode (batch statistics): the output, the input's gradient and every
    weight's gradient equal torchvision's FusedMBConv with the same weights, on an odd input size."""
    torch.manual_seed(0)
    norm = functools.partial(nn.BatchNorm2d, eps=1e-3)
    config = FusedMBConvConfig(expand, kernel, stride, 16, channels, 1)
    theirs = TorchvisionFusedMBConv(config, 0.0, norm).train()
    ours = nv.build([((16, 1), nv.Input()), ((channels, stride), FusedMBConv(expand, kernel_size=kernel, norm=norm))])
    ours.train()
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert [tuple(t.shape) for t in mine.values()] == [tuple(t.shape) for t in reference.values()]
    ours.load_state_dict(dict(zip(mine, reference.values(), strict=True)), strict=True)
    with torch.no_grad():
        for key, value in zip(mine, ours.state_dict().values(), strict=True):  # random norms: a swap shows
            if value.is_floating_point() and "conv" not in key:
                value.copy_(torch.rand(value.shape) + 0.5)
        theirs.load_state_dict(dict(zip(reference, ours.state_dict().values(), strict=True)), strict=True)
    x = torch.randn(2, 16, 13, 11, requires_grad=True)
    y = x.detach().clone().requires_grad_()
    out_ours, out_theirs = ours(x), theirs(y)
    assert out_ours.shape == (2, channels, -(-13 // stride), -(-11 // stride))
    torch.testing.assert_close(out_ours, out_theirs, rtol=0, atol=0)
    out_ours.square().sum().backward()
    out_theirs.square().sum().backward()
    torch.testing.assert_close(x.grad, y.grad)
    for (key, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, msg=key)
    sums = [m for m in ours.modules() if isinstance(m, nv.Add)]
    assert len(sums) == theirs.use_res_connect


@pytest.mark.parametrize("name", V2)
def test_rates_dropout_and_norms_are_torchvisions(name: str) -> None:
    with torch.device("meta"):
        ours = neurlink.create_model(name)
        theirs = getattr(torchvision.models, name)(weights=None)
    rates = [m.drop.drop_prob for m in ours.modules() if isinstance(m, nv.StochasticDepth)]
    blocks = [m for m in theirs.modules() if type(m).__name__ in ("MBConv", "FusedMBConv")]
    drops = [m.p for m in theirs.modules() if isinstance(m, TorchvisionStochasticDepth)]
    # a line only where torchvision adds the branch to a sum and may drop it (its first block's rate is 0)
    assert rates == [p for p, block in zip(drops, blocks, strict=True) if block.use_res_connect and p > 0]
    assert [m.p for m in ours.modules() if isinstance(m, nn.Dropout)] == [m.p for m in theirs.classifier[:1]]
    assert _norms(ours) == _norms(theirs) and set(_norms(ours)) == {(1e-3, 0.1)}
    fused = [m for m in ours.modules() if isinstance(m, FusedMBConv)]
    assert len(fused) == sum(type(block).__name__ == "FusedMBConv" for block in blocks)


def _norms(model: nn.Module) -> list[tuple[float, float | None]]:
    return [(m.eps, m.momentum) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


@pytest.mark.parametrize("name", ["efficientnet_v2_m", "efficientnet_v2_l"])
def test_larger_models_map_every_key_on_meta(name: str) -> None:
    """Key for key and shape for shape, both ways, without memory (their values round-trip in
    test_families.py's slow run)."""
    with torch.device("meta"):
        ours = neurlink.create_model(name)
        theirs = getattr(torchvision.models, name)(weights=None)
    exported, reference = to_torchvision_state_dict(ours), theirs.state_dict()
    assert list(exported) == list(reference)
    assert all(exported[key].shape == value.shape for key, value in reference.items())
    with pytest.raises(neurlink.StateDictError, match="the state_dict fits, but this Network is on the meta device"):
        load_torchvision(ours, reference)  # every key found and every tensor filled, then the refusal to load


def test_builder_keywords() -> None:
    with torch.device("meta"):
        plain = neurlink.efficientnet_v2_s(num_classes=10, dropout=0.5, stochastic_depth_prob=0.0, se_ratio=None)
        theirs = torchvision.models.efficientnet_v2_s(num_classes=10)
    assert not any(isinstance(m, (nv.StochasticDepth, nv.SqueezeExcitation)) for m in plain.modules())
    assert [m.p for m in plain.modules() if isinstance(m, nn.Dropout)] == [0.5]
    se = sum(p.numel() for m in theirs.modules() if type(m).__name__ == "SqueezeExcitation" for p in m.parameters())
    assert count(plain) == count(theirs) - se  # se_ratio went to the MBConv blocks only
    assert sum(isinstance(m, MBConv) for m in plain.modules()) == 30
    with pytest.raises(neurlink.UnexpectedArgumentError, match=r"efficientnet_v2_s\(\) got unexpected.*'width_mult'"):
        neurlink.efficientnet_v2_s(width_mult=1.1)


C16 = ((16, 2), nv.Conv2d_BN_ReLU(3))


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        (
            ((16, 2), FusedMBConv(0)),
            neurlink.NerveArgumentError,
            "FusedMBConv: expand_ratio=0 is not a positive number",
        ),
        (((16, 2), FusedMBConv(stochastic_depth=2)), neurlink.NerveArgumentError, "stochastic_depth=2 is not a prob"),
        (((16, 2), FusedMBConv(kernel_size=0)), neurlink.NerveArgumentError, "kernel_size"),
        (((16, 2), FusedMBConv[[0, 1]]()), neurlink.DefinitionError, r"takes 1 input\(s\)"),
        (((16, 3), FusedMBConv()), neurlink.DefinitionError, "stride"),
    ],
)
def test_fused_mbconv_mistakes_name_the_line(line, error, message) -> None:
    with pytest.raises(error, match=message) as raised:
        nv.build([((3, 1), nv.Input()), C16, line])
    assert "line 2" in str(raised.value)
