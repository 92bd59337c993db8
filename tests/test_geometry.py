"""Exact geometry: transposed convs are adjoints of convs, pools see real values at the borders."""

import pytest
import torch
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink import _runtime
from neurlink.errors import DimsError

CONV = {1: nv.Conv1d, 2: nv.Conv2d, 3: nv.Conv3d}
CONV_T = {1: nv.ConvTransposed1d, 2: nv.ConvTransposed2d, 3: nv.ConvTransposed3d}
SIZES = {1: range(7, 13), 2: range(7, 13), 3: (7, 8, 11)}


def pair(rank, kernel, ratio, shape_in=1, shape_out=None):
    """A conv line from (2, shape_in) to (3, shape_out) and the transposed conv line back."""
    shape_out = shape_out if shape_out is not None else ratio
    down = nv.build([((2, shape_in), nv.Input()), ((3, shape_out), CONV[rank](kernel, bias=False))])
    up = nv.build(
        [
            ((1, 1), nv.Input()),  # the base shape
            ((3, shape_out), nv.Input()),
            ((2, shape_in), CONV_T[rank][1](kernel, bias=False)),
        ]
    )
    up.get_submodule("2.conv").weight = down.get_submodule("1.conv").weight  # (3, 2, *k) in both
    return down.double(), up.double()


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kernel", [2, 3, 4, 5])
@pytest.mark.parametrize("ratio", [1, 2, 3])
def test_transposed_conv_is_the_adjoint_of_the_conv(rank, kernel, ratio):
    """<conv x, y> == <x, conv_transposed y> at every size: values go back where they came from."""
    torch.manual_seed(0)
    down, up = pair(rank, kernel, ratio)
    for size in SIZES[rank]:
        x = torch.randn(2, 2, *[size] * rank, dtype=torch.float64)
        y_shape = down(x).shape
        y = torch.randn(y_shape, dtype=torch.float64)
        base = torch.zeros(2, 1, *[size] * rank, dtype=torch.float64)
        back = up([base, y])
        assert back.shape == x.shape
        torch.testing.assert_close((down(x) * y).sum(), (x * back).sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [2, 3, 4])
@pytest.mark.parametrize("sizes", [((11,), (6,)), ((12,), (4,)), ((9,), (9,))])
def test_transposed_conv_between_absolute_shapes_is_the_adjoint(kernel, sizes):
    torch.manual_seed(0)
    (n_in,), (n_out,) = sizes
    if -(-n_in // n_out) > kernel:  # 12 -> 4 needs stride 3, which a kernel of 2 would step over input with
        with pytest.raises(DimsError, match="would never read 1 of every 3 input values"):
            pair(1, kernel, None, shape_in=f"({n_in})", shape_out=f"({n_out})")
        return
    down, up = pair(1, kernel, None, shape_in=f"({n_in})", shape_out=f"({n_out})")
    x, y = torch.randn(1, 2, n_in, dtype=torch.float64), torch.randn(1, 3, n_out, dtype=torch.float64)
    back = up([torch.zeros(1, 1, 5, dtype=torch.float64), y])
    torch.testing.assert_close((down(x) * y).sum(), (x * back).sum(), rtol=1e-12, atol=1e-12)


AVG = {1: nv.AvgPool1d, 2: nv.AvgPool2d, 3: nv.AvgPool3d}


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kernel", [2, 3, 4, 5])
@pytest.mark.parametrize("ratio", [1, 2, 3, "(3, 3, 3)"])
def test_average_pools_average_real_values_only(rank, kernel, ratio):
    """A constant image stays constant at every border, for every size."""
    shape = ratio if not isinstance(ratio, str) else "(" + ", ".join(["3"] * rank) + ")"
    net = nv.build([((2, 1), nv.Input()), ((2, shape), AVG[rank](kernel))])
    for size in (5, 6, 7, 9) if rank < 3 else (5, 6):
        if isinstance(ratio, str) and -(-size // 3) > kernel:
            continue  # the stride to size 3 would step over input a kernel this narrow never reads
        ones = torch.ones(1, 2, *[size] * rank)
        for _ in range(2):  # the first, checked call and the flat forward
            out = net(ones)
            torch.testing.assert_close(out, torch.ones_like(out), rtol=0, atol=1e-6)


def test_average_pool_equals_torch_without_counting_padding():
    x = torch.randn(2, 3, 11)
    net = nv.build([((3, 1), nv.Input()), ((3, 1), nv.AvgPool1d(5))])
    expected = nn.AvgPool1d(5, 1, 2, count_include_pad=False)(x)
    torch.testing.assert_close(net(x), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(net(x), expected, rtol=0, atol=1e-6)


def test_count_include_pad_counts_the_zero_padding():
    net = nv.build([((1, 1), nv.Input()), ((1, 2), nv.AvgPool2d(2, count_include_pad=True))])
    out = net(torch.ones(1, 1, 5, 5))[0, 0]
    assert out[-1].tolist() == [0.5, 0.5, 0.25] and out[:, -1].tolist() == [0.5, 0.5, 0.25]
    with pytest.raises(neurlink.NerveArgumentError, match="count_include_pad='yes' is not a bool"):
        nv.build([((1, 1), nv.Input()), ((1, 2), nv.AvgPool2d(2, count_include_pad="yes"))])


def test_no_padding_needed_means_no_copy():
    x = torch.randn(1, 2, 8, 8)
    assert _runtime.pad_same(x, (2, 2), (1, 1), (2, 2), (None, None), "zeros", float("-inf")) is x
    assert _runtime.pad_same(x[..., :7], (2, 2), (1, 1), (2, 2), (None, None), "zeros", 0.0).shape[-1] == 8


MAX = {1: nv.MaxPool1d, 2: nv.MaxPool2d, 3: nv.MaxPool3d}


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("kernel", [2, 3])
@pytest.mark.parametrize("dilation", [2, 3, 5])
@pytest.mark.parametrize("ratio", [1, 2, "(2, 2)"])
def test_a_dilated_max_pool_window_never_sees_only_padding(rank, kernel, dilation, ratio):
    shape = ratio if not isinstance(ratio, str) else "(" + ", ".join(["2"] * rank) + ")"
    net = nv.build([((1, 1), nv.Input()), ((1, shape), MAX[rank](kernel, dilation=dilation))])
    for size in range(1, 12) if rank == 1 else (1, 2, 3, 5, 8):
        if isinstance(ratio, str) and not 2 <= size <= 2 * (dilation * (kernel - 1) + 1):
            continue  # no stride takes size 1 to size 2; above, the stride would step over input
        x = torch.randn(1, 1, *[size] * rank)
        for _ in range(2):
            assert torch.isfinite(net(x)).all(), size


def test_a_dilated_max_pool_keeps_the_usual_split_where_it_works():
    net = nv.build([((1, 1), nv.Input()), ((1, 1), nv.MaxPool1d(3, dilation=2))])
    x = torch.randn(1, 1, 11)
    expected = nn.MaxPool1d(3, 1, 0, dilation=2)(torch.nn.functional.pad(x, [2, 2], value=float("-inf")))
    torch.testing.assert_close(net(x), expected, rtol=0, atol=0)
