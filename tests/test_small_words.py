"""Small words of the grammar: a norm line (``nv.BatchNorm2d``), pixel (un)shuffle with the factor derived,
checked against torch's own modules."""

import pytest
import torch
from torch import nn

import neurlink.nerves as nv
from neurlink.errors import DimsError, InputError, NerveArgumentError, NeurlinkError


def _copy_norm(ours: nn.Module, theirs: nn.Module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for tensor in (theirs.weight, theirs.bias, theirs.running_mean):
            tensor.normal_()
        theirs.running_var.uniform_(0.5, 2.0)
    ours.load_state_dict(theirs.state_dict())


@pytest.mark.parametrize(
    ("nerve", "torch_norm", "act", "shape", "x"),
    [
        (nv.BatchNorm1d(), nn.BatchNorm1d(8), None, 1, (2, 8, 9)),
        (nv.BatchNorm1d_ReLU(), nn.BatchNorm1d(8), nn.ReLU(), "()", (4, 8)),  # vectors (N, C)
        (nv.BatchNorm2d(eps=1e-3, momentum=0.01), nn.BatchNorm2d(8, eps=1e-3, momentum=0.01), None, 1, (2, 8, 7, 5)),
        (nv.BatchNorm2d_ReLU(), nn.BatchNorm2d(8), nn.ReLU(), 1, (2, 8, 7, 5)),
        (nv.BatchNorm2d(act=nn.SiLU), nn.BatchNorm2d(8), nn.SiLU(), 1, (2, 8, 7, 5)),
        (nv.BatchNorm3d_ReLU(), nn.BatchNorm3d(8), nn.ReLU(), 1, (2, 8, 3, 4, 5)),
    ],
)
def test_a_norm_line_is_torchs_norm_then_act(nerve, torch_norm, act, shape, x):
    net = nv.build([((8, shape), nv.Input()), ((8, shape), nerve)]).eval()
    _copy_norm(net[1].norm, torch_norm)
    reference = nn.Sequential(torch_norm, act or nn.Identity()).eval()
    x = torch.randn(*x)
    torch.testing.assert_close(net(x), reference(x))
    assert sorted(net.state_dict()) == sorted(f"1.norm.{key}" for key in torch_norm.state_dict())
    net.train()
    net(x).square().sum().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in net.parameters())


def test_norm_keywords_pass_to_torch():
    net = nv.build(
        [((4, 1), nv.Input()), ((4, 1), nv.BatchNorm2d(affine=False, track_running_stats=False, momentum=None))]
    )
    norm = net[1].norm
    assert (norm.affine, norm.track_running_stats, norm.momentum) == (False, False, None)
    assert list(net.state_dict()) == []


@pytest.mark.parametrize(
    ("lines", "error", "match"),
    [
        ([((8, 1), nv.Input()), ((16, 1), nv.BatchNorm2d())], DimsError, r"line 1.*keeps the dims of its input line 0"),
        ([((8, 1), nv.Input()), ((8, 1), nv.BatchNorm2d(eps=0))], NerveArgumentError, "eps=0 is not a positive"),
        ([((8, 1), nv.Input()), ((8, 1), nv.BatchNorm2d(momentum=2))], NerveArgumentError, "momentum=2"),
        ([((8, 1), nv.Input()), ((8, 1), nv.BatchNorm2d(affine=1))], NerveArgumentError, "affine=1 is not a bool"),
        ([((8, 1), nv.Input()), ((8, 1), nv.Conv3d(1)), ((8, 1), nv.BatchNorm2d())], DimsError, "BatchNorm3d"),
        ([((8, 1), nv.Input()), ((8, 1), nv.Conv2d(1)), ((8, 1), nv.BatchNorm1d())], DimsError, r"line 2.*2d"),
        ([((8, 1), nv.Input()), ((8, 1), nv.BatchNorm2d(3))], NeurlinkError, "BatchNorm2d"),  # channels are derived
    ],
)
def test_norm_errors_name_the_line(lines, error, match):
    with pytest.raises(error, match="(?s)" + match):
        nv.build(lines)


@pytest.mark.parametrize("size", [(16, 16), (12, 20)])
@pytest.mark.parametrize("factor", [2, 3])
def test_pixel_shuffle_and_unshuffle_are_torchs(factor, size):
    net = nv.build(
        [
            ((3 * factor**2, 1), nv.Input()),
            ((3, 1 / factor), nv.PixelShuffle()),
            ((3 * factor**2, 1), nv.PixelUnshuffle()),
        ]
    )
    assert (net[1].factor, net[2].factor) == (factor, factor)
    x = torch.randn(2, 3 * factor**2, *size)
    shuffled = nn.PixelShuffle(factor)(x)
    torch.testing.assert_close(net(x, outputs=[1])[0], shuffled)
    torch.testing.assert_close(net(x), nn.PixelUnshuffle(factor)(shuffled))
    torch.testing.assert_close(net(x), x)


def test_pixel_shuffle_lands_on_its_lines_size():
    """From a line rounded up (ceil(33 / 2) = 17) back to ratio 1: torch's 34 cut to the line's 33."""
    net = nv.build(
        [((3, 1), nv.Input()), ((16, 2), nv.Conv2d(3)), ((4, 1), nv.PixelShuffle()), ((7, 1), nv.Concat[[0, -1]]())]
    ).eval()
    x = torch.randn(1, 3, 33, 20)
    with torch.no_grad():
        y = net(x, outputs=[1, 2])
    assert y[1].shape == (1, 4, 33, 20)
    torch.testing.assert_close(y[1], nn.PixelShuffle(2)(y[0])[..., :33, :20])
    assert net(x).shape == (1, 7, 33, 20)


def test_pixel_lines_of_absolute_sizes():
    net = nv.build(
        [((4, "(6, 8)"), nv.Input()), ((16, "(3, 4)"), nv.PixelUnshuffle()), ((4, "(6, 8)"), nv.PixelShuffle())]
    )
    x = torch.randn(1, 4, 6, 8)
    torch.testing.assert_close(net(x), x)


def test_pixel_unshuffle_of_an_indivisible_size_names_the_line():
    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3)), ((32, 4), nv.PixelUnshuffle())])
    with pytest.raises(InputError, match=r"(?s)line 2.*PixelUnshuffle\(2\).*divide by 2.*9x8"):
        net(torch.randn(1, 3, 18, 16))


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ([((16, 2), nv.Input()), ((4, 2), nv.PixelShuffle())], r"line 1.*does not change by one whole factor"),
        ([((16, 2), nv.Input()), ((4, 4), nv.PixelShuffle())], r"line 1.*does not change by one whole factor"),
        ([((16, 2), nv.Input()), ((4, (1, 2)), nv.PixelShuffle())], "the same f for both dims"),
        ([((16, 3), nv.Input()), ((4, 2), nv.PixelShuffle())], "whole factor"),
        ([((16, 2), nv.Input()), ((5, 1), nv.PixelShuffle())], r"line 1.*16 / 2\*\*2 = 4 channels.*declares 5"),
        ([((6, 2), nv.Input()), ((1, 1), nv.PixelShuffle())], "a multiple of 2\\*\\*2 = 4 channels"),
        ([((4, 1), nv.Input()), ((15, 2), nv.PixelUnshuffle())], r"line 1.*4 \* 2\*\*2 = 16 channels.*declares 15"),
        ([((4, "(6, 8)"), nv.Input()), ((16, 2), nv.PixelUnshuffle())], "one is a ratio, the other a size"),
        ([((4, "(6, 7)"), nv.Input()), ((16, "(3, 3)"), nv.PixelUnshuffle())], "whole factor"),
        ([((4, 1), nv.Input()), ((4, 1), nv.Conv1d(1)), ((16, 2), nv.PixelUnshuffle())], "2d"),
    ],
)
def test_pixel_errors_name_the_line(lines, match):
    with pytest.raises(DimsError, match="(?s)" + match):
        nv.build(lines)


def _small_words():
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((12, 2), nv.PixelUnshuffle()),
            ((16, 2), nv.Conv2d(3)),
            ((16, 2), nv.BatchNorm2d_ReLU()),
            ((4, 1), nv.PixelShuffle()),
            ((4, 1), nv.BatchNorm2d()),
        ]
    ).eval()


def test_small_words_trace_and_export():
    torch.manual_seed(0)
    net = _small_words()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = net(x)
        torch.testing.assert_close(torch.fx.symbolic_trace(net)(x), expected)
        torch.testing.assert_close(torch.export.export(net, (x,)).module()(x), expected)
    names = [type(module).__name__ for module in net]
    assert names[-5:] == ["PixelUnshuffle", "Conv2d", "BatchNorm2d_ReLU", "PixelShuffle", "BatchNorm2d"]


def test_a_plain_module_reads_a_selected_line_and_carries_a_tag():
    torch.manual_seed(0)
    lines = [
        ((8, 1), nv.Input()),
        ((8, 1), nn.ReLU()),
        ((8, 1), nv.Module[0, "bn"](nn.BatchNorm2d(8))),  # line 0, not the previous line
        ((8, 1), nv.Add[["bn", 1]]()),
        ((8, 1), nv.Module["bn"](nn.Tanh())),
    ]
    net = nv.build(lines).eval()
    assert net["bn"] is net[2] and isinstance(net[2], nn.BatchNorm2d)
    assert [key for key in net.state_dict() if key.startswith("2.")][:2] == ["2.weight", "2.bias"]
    assert "Module[0, 'bn'](BatchNorm2d" in repr(net)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        bn = net[2](x)
        expected = torch.tanh(bn)
        torch.testing.assert_close(net(x), expected)
        torch.testing.assert_close(net(x, outputs=[3])[0], bn + torch.relu(x))
        torch.testing.assert_close(torch.fx.symbolic_trace(net)(x), expected)
        torch.testing.assert_close(torch.export.export(net, (x,)).module()(x), expected)
    again = nv.build(lines)
    assert again[2] is not net[2]  # each build copies the module written


@pytest.mark.parametrize(
    ("nerve", "error", "match"),
    [
        (nv.Module[5](nn.ReLU()), NeurlinkError, r"line 2.*selector 5 points to line 5"),
        (nv.Module["nope"](nn.ReLU()), NeurlinkError, r"line 2.*no earlier line is tagged 'nope'"),
        (nv.Module[0, "a"](nn.ReLU()), NeurlinkError, r"line 2.*tag 'a' is already used by line 1"),
        (nv.Module[0](nv.Conv2d(3)), NeurlinkError, r"line 2.*holds a nerve.*Conv2d\[selector, tag\]"),
        (nv.Module[0](nn.BatchNorm2d), NeurlinkError, r"line 2.*holds the class BatchNorm2d"),
        (nv.Module[0](3), NeurlinkError, r"line 2.*holds an int, not an nn.Module"),
        (nv.Module[0](nn.ReLU(), nn.ReLU()), NeurlinkError, r"line 2.*takes one module"),
        (nv.Module[0](nn.BatchNorm3d(8)), DimsError, r"line 2.*BatchNorm3d is 3d, but its input line 0 is 2d"),
    ],
)
def test_plain_module_errors_name_the_line(nerve, error, match):
    with pytest.raises(error, match="(?s)" + match):
        nv.build([((8, 1), nv.Input()), ((8, 1), nv.Conv2d[-1, "a"](1)), ((8, 1), nerve)])
