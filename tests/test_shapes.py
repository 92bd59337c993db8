"""The shape arithmetic of DESIGN section 2, checked against hand-computed values and torch."""

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from neurlink.errors import DimsError
from neurlink.shapes import (
    Dims,
    ShapeSpec,
    same_padding,
    size_at,
    static_padding,
    stride_between,
    stride_for_sizes,
    transposed_padding,
    transposed_stride_for_sizes,
)


@pytest.mark.parametrize("ratio", [1, 2, 3, 4, 8, 16, 32])
def test_size_at_is_ceil_for_every_base(ratio):
    for base in range(1, 41):
        assert size_at(base, Fraction(ratio)) == math.ceil(base / ratio)


def test_size_at_base_7_ratio_4_is_2():  # 0.2.2 computed 7 // 4 + 7 % 4 = 4
    assert ShapeSpec(4).size((7,)) == (2,)


@pytest.mark.parametrize(
    "written, base, expected",
    [
        (0.5, (3, 5), (6, 10)),
        (1.5, (4, 7), (3, 5)),
        ((1, 2), (9, 9), (9, 5)),
        ((0.25, 3), (2, 10), (8, 4)),
        (1 / 3, (5,), (15,)),
        ("(1, 1)", (224, 224), (1, 1)),
        ("7", (100, 50, 3), (7, 7, 7)),
        ("(3, 4)", (9, 9), (3, 4)),
    ],
)
def test_shape_spec_sizes(written, base, expected):
    assert ShapeSpec(written).size(base) == expected


def test_shape_spec_rank_and_equality():
    assert ShapeSpec(2).rank is None and ShapeSpec((2, 2)).rank == 2 and ShapeSpec("(1, 1)").rank == 2
    assert ShapeSpec(2) == 2 and ShapeSpec((2, 2)) == (2, 2)
    assert ShapeSpec(2) != ShapeSpec((2, 2)) and ShapeSpec(2).same_as(ShapeSpec((2, 2)), 2)  # the same in 2d only
    assert ShapeSpec(0.5) == ShapeSpec(1 / 2)
    assert ShapeSpec(2) != ShapeSpec("(2, 2)")
    assert ShapeSpec("7").same_as(ShapeSpec("(7, 7)"), 2)
    assert Dims(64, 2) == (64, 2) and Dims(64, 2) != (64, 4)
    channels, shape = Dims(8, (1, 2))
    assert channels == 8 and shape.size((4, 4)) == (4, 2)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, None, [1, 2], (), (1, 0)])
def test_shape_spec_rejects_non_ratios(bad):
    with pytest.raises(DimsError):
        ShapeSpec(bad)


@pytest.mark.parametrize("bad", ["(0, 1)", "(1.5, 2)", "x", "__import__('os')", "(1, True)", "[1, 2]"])
def test_absolute_shapes_are_literals_only(bad):
    with pytest.raises(DimsError):
        ShapeSpec(bad)


def test_stride_between():
    assert stride_between((Fraction(2), Fraction(2)), (Fraction(8), Fraction(4)), transposed=False) == (4, 2)
    assert stride_between((Fraction(8),), (Fraction(2),), transposed=True) == (4,)
    assert stride_between((Fraction(1, 2),), (Fraction(1),), transposed=False) == (2,)
    for args, transposed in [((3, 4), False), ((4, 2), False), ((4, 3), True)]:
        with pytest.raises(DimsError):
            stride_between((Fraction(args[0]),), (Fraction(args[1]),), transposed=transposed)


def test_static_padding_follows_torchvision():
    assert static_padding(3, 1, 2) == (1, 1)
    assert static_padding(7, 1, 2) == (3, 3)
    assert static_padding(1, 1, 1) == (0, 0)
    assert static_padding(3, 2, 1) == (2, 2)
    assert static_padding(4, 1, 1) == (1, 2)  # odd total at stride 1: floor/ceil
    assert static_padding(2, 1, 2) is None  # odd total at stride 2: depends on the size


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 7, 16])
@pytest.mark.parametrize("dilation", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2, 3, 4, 16])
def test_same_padding_gives_ceil_in_torch(kernel, dilation, stride):
    weight = torch.ones(1, 1, kernel)
    for size in range(1, 41):
        left, right = same_padding(size, kernel, dilation, stride)
        assert left >= 0 and right - left in (0, 1)
        x = F.pad(torch.ones(1, 1, size), (left, right))
        if x.shape[-1] < dilation * (kernel - 1) + 1:
            continue  # the window is larger than the padded input: a kernel/size mismatch, not padding
        assert F.conv1d(x, weight, stride=stride, dilation=dilation).shape[-1] == math.ceil(size / stride)


def test_patchify_needs_no_padding():
    assert same_padding(224, 16, 1, 16) == (0, 0)


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("stride", [1, 2, 3, 4])
@pytest.mark.parametrize("relative", [True, False])
def test_transposed_padding_lands_on_every_target(kernel, dilation, stride, relative):
    weight = torch.ones(1, 1, kernel)
    for size in range(1, 13):
        for target in range(stride * (size - 1) + 1, stride * size + 1):
            padding, output_padding, crop = transposed_padding(
                size, target, kernel, dilation, stride, relative=relative
            )
            assert padding >= 0 and 0 <= output_padding < max(stride, dilation)
            y = F.conv_transpose1d(torch.ones(1, 1, size), weight, None, stride, padding, output_padding, 1, dilation)
            assert y.shape[-1] - crop == target


def test_transposed_padding_matches_the_usual_choices():
    assert transposed_padding(8, 16, 4, 1, 2, relative=True) == (1, 0, 0)  # k4 s2 p1
    # odd target: the conv 15 -> 8 pads (1, 2), so its adjoint pads 1 and cuts the last element
    assert transposed_padding(8, 15, 4, 1, 2, relative=True) == (1, 0, 1)
    assert transposed_padding(8, 16, 3, 1, 2, relative=True) == (1, 1, 0)  # k3 s2 p1 op1
    assert transposed_padding(8, 8, 2, 1, 1, relative=True) == (0, 0, 1)  # stride 1, even kernel: crop one


def test_strides_between_absolute_sizes():
    assert stride_for_sizes(7, 4) == 2 and stride_for_sizes(7, 3) == 3 and stride_for_sizes(10, 6) is None
    assert stride_for_sizes(5, 5) == 1 and stride_for_sizes(3, 4) is None
    assert transposed_stride_for_sizes(4, 8) == 2 and transposed_stride_for_sizes(4, 7) == 2
    assert transposed_stride_for_sizes(4, 3) is None and transposed_stride_for_sizes(1, 5) == 5
