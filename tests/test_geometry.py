"""Exact geometry: transposed convs are adjoints of convs, pools see real values at the borders."""

import pytest
import torch

import neurlink.nerves as nv

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
    down, up = pair(1, kernel, None, shape_in=f"({n_in})", shape_out=f"({n_out})")
    x, y = torch.randn(1, 2, n_in, dtype=torch.float64), torch.randn(1, 3, n_out, dtype=torch.float64)
    back = up([torch.zeros(1, 1, 5, dtype=torch.float64), y])
    torch.testing.assert_close((down(x) * y).sum(), (x * back).sum(), rtol=1e-12, atol=1e-12)
