"""torchvision's Swin Transformers (v1 and v2) written as lines: parameter counts, outputs and gradients with
torchvision's weights (at 224, and at 256 where the last stages' windows cover their padded grids), the
weights both ways, the flat forward against the lines in training and eval, and the nerves' errors."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from networks import TRANSFORMER_PARAMETERS, count, line_by_line
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink.errors import DimsError, NerveArgumentError, StateDictError, UnexpectedArgumentError
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.interop.torchvision._swin import swin_pairs

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

PARAMETERS = {name: n for name, n in TRANSFORMER_PARAMETERS.items() if name.startswith("swin")}  # torchvision's


def randomize(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Every parameter of the reference random, std 0.02 (the norms' weights about 1, so that the signal
    carries through 12 blocks; the cosine attention's logit scales about log 10, some past its clamp)."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.endswith("logit_scale"):
                parameter.copy_(math.log(10) + 1.5 * noise)
            elif "norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.2 * noise)
            else:
                parameter.copy_(0.02 * noise)
    return model.eval()


def close(ours: torch.Tensor, theirs: torch.Tensor, tol: float = 1e-5) -> None:
    scale = max(1e-3, theirs.abs().max().item())
    torch.testing.assert_close(ours, theirs, rtol=tol, atol=tol * scale)


def pair(name: str, seed: int = 0, **keywords) -> tuple[nn.Module, nv.Network]:
    theirs = randomize(getattr(torchvision.models, name)(**keywords), torch.Generator().manual_seed(seed))
    return theirs, load_torchvision(neurlink.create_model(name, **keywords), theirs).eval()


@pytest.mark.parametrize("name", PARAMETERS)
def test_parameter_counts_on_meta_are_torchvisions(name: str) -> None:
    with torch.device("meta"):
        ours, theirs = neurlink.create_model(name), getattr(torchvision.models, name)()
    assert count(ours) == PARAMETERS[name] == count(theirs)
    assert sum(b.numel() for b in ours.buffers()) == sum(b.numel() for b in theirs.buffers())
    assert isinstance(ours[-1], nv.Linear) and ours.line_tags()["head"] == len(ours) - 1  # the classifier last


@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t"])
def test_torchvision_weights_give_torchvision_outputs(name: str) -> None:
    theirs, ours = pair(name, num_classes=10)
    generator = torch.Generator().manual_seed(1)
    # 224: stage grids 56, 28, 14, 7; at 256: 64, 32, 16, 8, windows padded (v1) and covering the grid (both);
    # at 227x101 the unpadded patchify conv floors (56x25) and the patch merging pads odd grids (28x13, 14x7, 7x4)
    for size in ((224, 224), (256, 256), (227, 101)):
        x = torch.randn(1, 3, *size, generator=generator)
        with torch.no_grad():
            expected = theirs(x)
            close(ours(x), expected)  # the first call checks every line
            close(ours(x), expected)  # the flat forward


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swin_s", "swin_b", "swin_v2_s", "swin_v2_b"])
def test_the_larger_models_give_torchvision_outputs(name: str) -> None:
    theirs, ours = pair(name, num_classes=10)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        close(ours(x), theirs(x))


def test_torchvision_weights_give_torchvision_gradients() -> None:
    theirs, ours = pair("swin_t", num_classes=10)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2), requires_grad=True)
    ours(x).square().sum().backward()
    grad, x.grad = x.grad, None
    theirs(x).square().sum().backward()
    close(grad, x.grad, 1e-4)
    mapping = {p.reference: p.neurlink for p in swin_pairs(ours)}
    parameters = dict(ours.named_parameters())
    for key, parameter in theirs.named_parameters():
        close(parameters[mapping[key]].grad, parameter.grad, 1e-4)


@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t"])
def test_weights_round_trip_strictly_buffers_included(name: str) -> None:
    theirs, ours = pair(name, seed=3, num_classes=10)
    again = getattr(torchvision.models, name)(num_classes=10)
    exported = to_torchvision_state_dict(ours)
    assert list(exported) == list(theirs.state_dict())  # torchvision's order
    assert str(again.load_state_dict(exported)) == "<All keys matched successfully>"
    for key, value in again.state_dict().items():
        assert torch.equal(value, theirs.state_dict()[key]), key
    state = theirs.state_dict()
    del state["features.5.3.attn.relative_position_index"]
    with pytest.raises(StateDictError, match="relative_position_index"):
        load_torchvision(neurlink.create_model(name, num_classes=10), state)
    with pytest.raises(StateDictError):
        load_torchvision(neurlink.swin_t(num_classes=10), torchvision.models.swin_v2_t(num_classes=10))


@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t"])
def test_flat_forward_equals_the_lines_in_training_and_eval(name: str) -> None:
    torch.manual_seed(0)
    net = neurlink.create_model(name, num_classes=5, dropout=0.1, attention_dropout=0.1, stochastic_depth_prob=0.3)
    x = torch.randn(2, 3, 72, 100)  # grids 18x25, 9x13, 5x7, 3x4: padded to windows, merged from odd sizes
    net.eval()
    with torch.no_grad():
        net(x)
        torch.testing.assert_close(net(x), line_by_line(net, x), rtol=0, atol=0)
        assert net(x, outputs=["stage3", "stage4"])[1].shape == (2, 12, 768)
    net.train()
    torch.manual_seed(3)
    a = net(x)
    torch.manual_seed(3)
    torch.testing.assert_close(a, line_by_line(net, x), rtol=0, atol=0)
    torch.manual_seed(4)
    assert not torch.equal(net(x), a)  # dropout and stochastic depth at work in training
    with torch.no_grad():
        assert torch.equal(net.eval()(x), net(x))


def test_builder_keywords_are_checked_at_the_builder() -> None:
    with pytest.raises(UnexpectedArgumentError, match="window_size"):
        neurlink.swin_t(window_size=[8, 8])
    with pytest.raises(NerveArgumentError, match="stochastic_depth_prob"):
        neurlink.swin_v2_t(stochastic_depth_prob=2.0)


# --- the nerves' errors -------------------------------------------------------------------------


def _tokens(channels: int = 16, *head) -> list:
    return [((3, 1), nv.Input()), ((channels, 4), nv.Conv2d(4)), ((channels, nv.tokens(4)), nv.ToTokens()), *head]


def _fails(error: type[Exception], match: str, lines: list) -> None:
    with pytest.raises(error, match=match):
        nv.build(lines)


def test_window_attention_needs_tokens_of_a_2d_grid() -> None:
    # after a map line: the table's layout check
    _fails(DimsError, r"WindowAttention works on tokens", [((3, 1), nv.Input()), ((16, 1), nv.WindowAttention(4))])
    # after a class token: extra tokens have no place in a window
    d = (16, nv.tokens(4, extra=1))
    _fails(
        DimsError,
        r"has 1 extra token\(s\) before its grid",
        _tokens(16, (d, nv.ClassToken()), (d, nv.WindowAttention(4))),
    )
    # a sequence of a fixed length lies on no grid
    seq = (16, nv.tokens(length=49))
    _fails(DimsError, "lies on no grid", [(seq, nv.Input()), (seq, nv.WindowAttention(4))])
    # a 1d grid of tokens: the nerve is 2d
    line = [((3, 1), nv.Input()), ((16, 4), nv.Conv1d(4)), ((16, nv.tokens(4)), nv.ToTokens())]
    _fails(
        DimsError,
        r"WindowAttention is 2d, but its input line 2 is 1d",
        [*line, ((16, nv.tokens(4)), nv.WindowAttention(4))],
    )
    # the dims are kept
    _fails(DimsError, "keeps the dims of line 2", _tokens(16, ((32, nv.tokens(4)), nv.WindowAttention(4))))


def test_window_attention_arguments() -> None:
    d = (12, nv.tokens(4))
    _fails(NerveArgumentError, r"12 channels do not split into 5 heads", _tokens(12, (d, nv.WindowAttention(5))))
    _fails(NerveArgumentError, r"window=0 is not a positive int", _tokens(12, (d, nv.WindowAttention(3, window=0))))
    _fails(NerveArgumentError, r"shift=4 is not an int or a pair", _tokens(12, (d, nv.WindowAttention(3, 4, 4))))
    _fails(NerveArgumentError, r"shift=\(1, -1\)", _tokens(12, (d, nv.WindowAttention(3, 4, (1, -1)))))
    _fails(NerveArgumentError, r"version=3 is not a Swin", _tokens(12, (d, nv.WindowAttention(3, version=3))))
    _fails(NerveArgumentError, r"attention_dropout=2", _tokens(12, (d, nv.WindowAttention(3, attention_dropout=2))))


def test_patch_merging_lands_on_a_whole_multiple_of_the_ratio() -> None:
    _fails(
        DimsError,
        r"ratio 4 -> 6 needs a stride of 1.5, which is not an integer",
        _tokens(16, ((32, nv.tokens(6)), nv.PatchMerging())),
    )
    _fails(DimsError, r"ratio 4 -> 2 would upsample", _tokens(16, ((32, nv.tokens(2)), nv.PatchMerging())))
    _fails(DimsError, r"allowed: \(C_out, tokens\(8\)\)", _tokens(16, ((32, nv.tokens(6)), nv.PatchMerging())))
    _fails(
        DimsError,
        r"makes the tokens of a coarser grid, but the line declares 8",
        _tokens(16, ((32, 8), nv.PatchMerging())),
    )
    _fails(NerveArgumentError, r"eps=0 is not a positive", _tokens(16, ((32, nv.tokens(8)), nv.PatchMerging(eps=0))))
    _fails(NerveArgumentError, r"version='2'", _tokens(16, ((32, nv.tokens(8)), nv.PatchMerging("2"))))
    # another whole stride, and other channels: the merged blocks and the reduction follow the line
    net = nv.build(_tokens(16, ((24, nv.tokens((12, 8))), nv.PatchMerging(version=2))))
    assert net[3].reduction.in_features == 16 * 3 * 2 and net[3].norm.normalized_shape == (24,)
    assert net(torch.randn(1, 3, 40, 40)).shape == (1, 4 * 5, 24)


def test_swin_block_arguments() -> None:
    d = (16, nv.tokens(4))
    _fails(NerveArgumentError, r"mlp=0 is not a positive int", _tokens(16, (d, nv.SwinBlock(4, mlp=0))))
    _fails(NerveArgumentError, r"drop_path=-0.1", _tokens(16, (d, nv.SwinBlock(4, drop_path=-0.1))))
    _fails(DimsError, "SwinBlock keeps the dims", _tokens(16, ((16, nv.tokens(8)), nv.SwinBlock(4))))
    block = nv.build(_tokens(16, (d, nv.SwinBlock(4, 4, 2, drop_path=0.1, version=2))))[3]
    assert list(block.line_tags()) == [
        "attn",
        "norm1",
        "drop_path1",
        "residual1",
        "mlp",
        "norm2",
        "drop_path2",
        "residual2",
    ]
    assert block["mlp"].fc1.out_features == 64 and block["attn"].shift == (2, 2)


@pytest.mark.parametrize("name, size, published", [("swin_t", 224, 4.491e9), ("swin_v2_t", 256, 5.94e9)])
def test_summary_macs_are_torchvisions_published_figures(name: str, size: int, published: float) -> None:
    with torch.device("meta"):
        net = neurlink.create_model(name)
    assert abs(neurlink.summary(net, (1, 3, size, size)).total_macs / published - 1) < 0.02
