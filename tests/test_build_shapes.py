"""Valid definitions and the exact shapes they must give: every line lands on ceil(base / ratio)."""

import math

import pytest
import torch
from torch import nn

import neurlink
import neurlink.nerves as nv

RATIOS = [1, 2, 3, 4, 8, 16, 32]
BASES = range(1, 41)


def ceil_shape(base, ratio):
    ratios = ratio if isinstance(ratio, tuple) else (ratio,) * len(base)
    return tuple(math.ceil(b / r) for b, r in zip(base, ratios))


def check_every_line(net, base_shape, channels=1, batch=1):
    """Run the net at ``base_shape`` and compare each line's output with its declaration."""
    x = torch.randn(batch, channels, *base_shape)
    outputs = net(x, output_intermediate=True)
    # the flat forward (every nerve inlined) equals the line-by-line one
    torch.testing.assert_close(net(x), outputs[-1], rtol=0, atol=0)
    for entry, y in zip(net.lines, outputs):
        dims = entry.dims[0]
        assert tuple(y.shape) == (batch, dims.channels, *dims.shape.size(base_shape)), (entry.written, base_shape)


@pytest.mark.parametrize("kernel, dilation", [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (7, 1), (3, 2), (4, 3)])
def test_conv1d_every_ratio_every_base(kernel, dilation):
    for ratio in RATIOS:
        net = nv.build([((1, 1), nv.Input()), ((2, ratio), nv.Conv1d(kernel, dilation=dilation))])
        for base in BASES:
            if dilation * (kernel - 1) + 1 > base + dilation * (kernel - 1):  # never: padding always fits
                continue
            check_every_line(net, (base,))


@pytest.mark.parametrize("pool", [nv.MaxPool1d, nv.AvgPool1d])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
def test_pool1d_every_ratio_every_base(pool, kernel):
    for ratio in RATIOS:
        net = nv.build([((1, 1), nv.Input()), ((1, ratio), pool(kernel))])
        for base in BASES:
            check_every_line(net, (base,))


@pytest.mark.parametrize("kernel, dilation", [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (3, 2), (2, 3)])
@pytest.mark.parametrize("factor", [1, 2, 4, 8])
def test_transposed1d_lands_on_ceil_for_every_base(kernel, dilation, factor):
    for ratio in (8, 16, 32):
        net = nv.build(
            [
                ((1, 1), nv.Input()),
                ((2, ratio), nv.Conv1d(1)),
                ((3, ratio // factor), nv.ConvTransposed1d(kernel, dilation=dilation)),
            ]
        )
        for base in BASES:
            check_every_line(net, (base,))


@pytest.mark.parametrize("ratio", RATIOS)
def test_conv2d_pool2d_transposed2d_every_base(ratio):
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((4, ratio), nv.Conv2d_BN_ReLU(3)),
            ((4, ratio * 2), nv.MaxPool2d(3)),
            ((4, ratio * 2), nv.AvgPool2d(2)),
            ((4, ratio), nv.ConvTransposed2d_ReLU(4)),
            ((4, ratio), nv.Conv2d((3, 4), dilation=(2, 1))),
        ]
    )
    net.eval()
    for base in BASES:
        check_every_line(net, (base, 41 - base), channels=3)


@pytest.mark.parametrize("ratio", [1, 2, 3, 4])
def test_3d_nerves(ratio):
    net = nv.build(
        [
            ((2, 1), nv.Input()),
            ((4, ratio), nv.Conv3d_BN_ReLU(3)),
            ((4, ratio * 2), nv.MaxPool3d(2)),
            ((4, ratio), nv.ConvTransposed3d_BN_ReLU(3)),
            ((4, "(2, 3, 1)"), nv.AvgPool3d()),
        ]
    )
    net.eval()
    for base in [(1, 2, 3), (5, 7, 9), (8, 8, 8), (11, 4, 6)]:
        check_every_line(net, base, channels=2)
    assert isinstance(net.get_submodule("1.norm"), torch.nn.BatchNorm3d)


def test_per_dim_ratios_and_kernels():
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, (1, 2)), nv.Conv2d((3, 5))),
            ((8, (2, 8)), nv.MaxPool2d((2, 3))),
            ((8, (1, 2)), nv.ConvTransposed2d((4, 3))),
        ]
    )
    for base in [(7, 7), (16, 33), (1, 40), (40, 1)]:
        check_every_line(net, base, channels=3)


def test_float_ratios_upsample_and_back():
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((3, 0.5), nv.Interpolate("nearest")),
            ((6, 0.25), nv.ConvTransposed2d(3)),
            ((6, 0.5), nv.Conv2d(3)),
            ((6, 1.5), nv.MaxPool2d(3)),
            ((6, 3), nv.Conv2d(1)),
            ((6, 1.5), nv.Interpolate("bilinear")),
        ]
    )
    for base in [(1, 1), (2, 3), (7, 10), (9, 31)]:
        check_every_line(net, base, channels=3)


def test_absolute_shapes():
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((3, "(7, 7)"), nv.AvgPool2d()),
            ((8, "(4, 4)"), nv.Conv2d(3)),  # absolute -> absolute: stride 2 derived from 7 -> 4
            ((8, "(8, 8)"), nv.ConvTransposed2d(3)),
            ((8, "(1, 1)"), nv.MaxPool2d()),
            ((5, "(1, 1)"), nv.Conv2d(1)),
            ((5, "(3, 5)"), nv.Interpolate()),
        ]
    )
    for base in [(7, 7), (30, 11), (224, 224)]:
        check_every_line(net, base, channels=3)


def test_relative_to_absolute_conv_derives_stride_per_call():
    net = nv.build([((3, 1), nv.Input()), ((8, "(4, 4)"), nv.Conv2d(3)), ((8, 2), nv.ConvTransposed2d(3))])
    for base in [(8, 8), (7, 8), (8, 7)]:  # strides up to 3 (the kernel's width), then up again
        check_every_line(net, base, channels=3)


def test_a_conv_to_an_absolute_shape_may_not_step_over_its_input():
    """A DCGAN discriminator's last line: 4x4 -> 1x1 reads every input; from 8x8 a stride of 8 would not."""
    net = nv.build([((3, 1), nv.Input()), ((1, "(1, 1)"), nv.Conv2d(4))])
    assert net(torch.randn(2, 3, 4, 4)).shape == (2, 1, 1, 1)
    with pytest.raises(
        neurlink.InputError, match=r"(?s)^line 1: .*needs stride 8, but a kernel 4 wide would never read 4 of every 8"
    ):
        net(torch.randn(2, 3, 8, 8))
    with pytest.raises(
        neurlink.DimsError, match=r"(?s)^line 2: .*needs stride 8, but a kernel 4 wide would never read 4"
    ):
        nv.build([((3, "(8, 8)"), nv.Input()), ((3, "(8, 8)"), nn.ReLU()), ((1, "(1, 1)"), nv.Conv2d(4))])


def test_adaptive_pool_to_a_ratio():
    net = nv.build([((3, 1), nv.Input()), ((3, 3), nv.AvgPool2d()), ((3, 6), nv.MaxPool2d())])
    for base in [(1, 1), (5, 17), (36, 40)]:
        check_every_line(net, base, channels=3)


def test_one_network_serves_every_input_size_in_a_row():
    net = nv.build(
        [
            ((1, 1), nv.Input()),
            ((4, 2), nv.Conv2d(2)),  # odd total padding at stride 2: computed per call
            ((4, 4), nv.Conv2d(4)),
            ((4, 2), nv.ConvTransposed2d(4)),
            ((4, 1), nv.ConvTransposed2d(3)),
        ]
    )
    for base in [(17, 3), (32, 32), (1, 1), (17, 3), (9, 40)]:
        check_every_line(net, base)
