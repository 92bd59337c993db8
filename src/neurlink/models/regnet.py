"""RegNetX and RegNetY in the grammar, layer for layer the networks of torchvision.

``ResBottleneckBlock`` reads its dims from the line like every block: a 1x1 conv, a grouped 3x3
conv (strided when the line's ratio grows), RegNetY's squeeze-and-excitation, a 1x1 conv, and a
1x1 conv + norm projection on the skip where the dims change:

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.regnet import ResBottleneckBlock
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((32, 2), nv.Conv2d_BN_ReLU(3)),
...         ((48, 4), ResBottleneckBlock(8, se_ratio=0.25)),  # strided, 6 groups, SE to round(32 / 4)
...         ((48, 4), ResBottleneckBlock(8, se_ratio=0.25)),  # same dims: an identity skip
...     ]
... )
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 48, 8, 8])
>>> net[2].line_tags()
{'f.a': 1, 'f.b': 2, 'f.se': 3, 'f.c': 4, 'proj': 5}
>>> net[2]["f.b"].conv.groups, net[2]["f.se"].fc1.out_channels, net[3]["proj"].project is None
(6, 8, True)

The sub-lines are tagged with torchvision's names (``f.a`` ... ``proj``), which the weight mapping
reads. The stages' widths and depths come from RegNet's four numbers as torchvision computes them
(:func:`~neurlink.models.regnet.stage_params`); the builders tag the stem and the last block of
every stage (``stage1`` ... ``stage4``, at ratios 4 to 32), so
``net(x, outputs=["stage1", "stage2", "stage3", "stage4"])`` is a feature pyramid. Every conv is
padded ``k // 2`` as the grammar pads it, so the two agree at every input size.
"""

from __future__ import annotations

import functools
import math
import struct
from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import NerveArgumentError
from ..nerves._args import Act, Norm, make_act, positive_int
from ._common import build_initialised, check_keywords, positive_number, stage_lines
from ._published import torchvision_weights
from .mobilenet import _keywords, make_divisible

__all__ = [
    "ResBottleneckBlock",
    "stage_params",
    "regnet_y_400mf",
    "regnet_y_800mf",
    "regnet_y_1_6gf",
    "regnet_y_3_2gf",
    "regnet_y_8gf",
    "regnet_y_16gf",
    "regnet_y_32gf",
    "regnet_y_128gf",
    "regnet_x_400mf",
    "regnet_x_800mf",
    "regnet_x_1_6gf",
    "regnet_x_3_2gf",
    "regnet_x_8gf",
    "regnet_x_16gf",
    "regnet_x_32gf",
]


class ResBottleneckBlock(nv.Nerve):
    """RegNet's block (torchvision's ``ResBottleneckBlock``): ``act(proj(x) + f(x))``.

    ``f`` is a 1x1 conv to ``int(round(out_channels * bottleneck_multiplier))`` channels, a 3x3 conv
    in groups of ``group_width`` channels (strided when the line's ratio grows), with ``se_ratio``
    a ``SqueezeExcitation`` to ``int(round(se_ratio * in_channels))`` channels (of the block's input,
    as torchvision rounds it; ``act`` then Sigmoid), and a 1x1 conv without activation. ``proj`` is a
    1x1 conv + norm where the input's dims differ from the line's, the identity otherwise. ``norm``
    and ``act`` go to every conv (and ``act`` to the SE and after the sum).
    """

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    def __init__(
        self,
        group_width: int = 1,
        *,
        bottleneck_multiplier: float = 1.0,
        se_ratio: float | None = None,
        norm: Norm = nn.BatchNorm2d,
        act: Act = nn.ReLU,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        positive_int("group_width", group_width, name)
        positive_number("bottleneck_multiplier", bottleneck_multiplier, name)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        hidden = int(round(dims_out.channels * bottleneck_multiplier))
        groups = hidden // group_width
        if groups < 1 or hidden % groups:
            raise NerveArgumentError(
                f"{name}: {hidden} hidden channels ({dims_out.channels} * bottleneck_multiplier"
                f" {bottleneck_multiplier}) do not split into groups of group_width={group_width}",
                allowed=f"a group_width of at most {hidden} whose quotient divides {hidden} (e.g. a divisor of it)",
            )
        conv = _keywords(norm=norm, act=act)
        lines: list[Any] = [
            ((hidden, dims_in.shape), nv.Conv2d_BN_ReLU[-1, "f.a"](1, **conv)),  # line 0 is the block's input
            ((hidden, dims_out.shape), nv.Conv2d_BN_ReLU[-1, "f.b"](3, groups=groups, **conv)),
        ]
        if se_ratio is not None:
            positive_number("se_ratio", se_ratio, name)
            squeeze = int(round(se_ratio * dims_in.channels))  # of the block's input, not of the hidden width
            if squeeze < 1:
                raise NerveArgumentError(
                    f"{name}: se_ratio={se_ratio!r} of {dims_in.channels} input channels rounds to no channel",
                    allowed=f"se_ratio >= {0.5 / dims_in.channels:.3g}, or None for no squeeze-and-excitation",
                )
            excite = _keywords(act=act, defaults={"act": nn.ReLU})
            lines.append(((hidden, dims_out.shape), nv.SqueezeExcitation[-1, "f.se"](squeeze, **excite)))
        lines.append((dims_out, nv.Conv2d_BN_ReLU[-1, "f.c"](1, **_keywords(norm=norm, act=None))))
        # torchvision's proj: a 1x1 conv + norm where the dims change, strided by the ratio
        lines.append((dims_out, nv.SkipConnect2d[[0, -1], "proj"](1, norm=norm)))
        final = make_act(act, name)
        if final is not None:
            lines.append((dims_out, final))
        self.add(lines)


@functools.lru_cache(maxsize=64)
def stage_params(
    depth: int, w_0: int, w_a: float, w_m: float, group_width: int, bottleneck_multiplier: float = 1.0
) -> tuple[tuple[int, int, int], ...]:
    """``(width, blocks, group width)`` of each stage of the RegNet of ``depth`` blocks, initial width
    ``w_0``, slope ``w_a`` and width multiplier ``w_m``: torchvision's ``BlockParams.from_init_params``.

    Block ``i`` would be ``w_0 + i * w_a`` wide; that is quantized in log space to ``w_0 * w_m ** k``
    (``k`` the rounded ``log_{w_m}`` of the ratio) and rounded to a multiple of 8; a run of equal
    widths is a stage. Each stage's bottleneck width is then made divisible by its group width, which
    is at most that bottleneck width. torchvision computes the widths in float32, ``w_a`` and ``w_m``
    as float32 numbers (``w_m ** k`` then differs from float64's by ``k`` float32 roundings of ``w_m``,
    enough to round a width otherwise); so does this, each step rounded to float32.

    >>> stage_params(16, 48, 27.89, 2.09, 8)  # RegNetY-400MF
    ((48, 1, 8), (104, 3, 8), (208, 6, 8), (440, 6, 8))
    >>> stage_params(18, 80, 34.01, 2.25, 24)  # RegNetX-1.6GF: 176 becomes 168, a multiple of 24
    ((72, 2, 24), (168, 4, 24), (408, 10, 24), (912, 2, 24))
    """
    if not (w_a >= 0 and w_0 > 0 and w_m > 1 and w_0 % 8 == 0):
        raise NerveArgumentError(
            f"RegNet: w_0={w_0!r}, w_a={w_a!r}, w_m={w_m!r} are not RegNet settings",
            allowed="w_0 a positive multiple of 8, w_a >= 0, w_m > 1 (torchvision's check)",
        )
    slope, multiplier, log_multiplier = _float32(w_a), _float32(w_m), _float32(math.log(w_m))
    stages: list[list[int]] = []  # [width, blocks]
    for block in range(depth):
        linear = _float32(_float32(block * slope) + w_0)
        step = round(_float32(_float32(math.log(_float32(linear / w_0))) / log_multiplier))  # half to even
        width = round(_float32(_float32(w_0 * _float32(multiplier**step)) / 8)) * 8
        if stages and stages[-1][0] == width:
            stages[-1][1] += 1
        else:
            stages.append([width, 1])
    result = []
    for width, blocks in stages:
        bottleneck = int(width * bottleneck_multiplier)
        group = min(group_width, bottleneck)
        result.append((int(make_divisible(bottleneck, group) / bottleneck_multiplier), blocks, group))
    return tuple(result)


def _float32(value: float) -> float:
    """``value`` rounded to the nearest float32, as torch's float32 tensors hold it."""
    return struct.unpack("f", struct.pack("f", value))[0]


def _regnet(
    builder: str,
    settings: tuple[int, int, float, float, int],
    se_ratio: float | None,
    num_classes: int,
    keywords: dict[str, Any],
) -> nv.Network:
    check_keywords(builder, keywords, (), ("num_classes", "stem_width", "norm", "act"))
    stem_width = positive_int("stem_width", keywords.pop("stem_width", 32), builder)
    conv = _keywords(norm=keywords.get("norm", nn.BatchNorm2d), act=keywords.get("act", nn.ReLU))
    excite = {} if se_ratio is None else {"se_ratio": se_ratio}
    blocks, ratio = [], 2
    for width, depth, group_width in stage_params(*settings):
        ratio *= 2  # every stage's first block has stride 2
        blocks += [((width, ratio), ResBottleneckBlock, {"group_width": group_width, **excite, **conv})] * depth
    lines = [
        ((3, 1), nv.Input()),
        ((stem_width, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3, **conv)),  # 3x3, stride 2, padding 1
        stage_lines(blocks),
        ((blocks[-1][0][0], "(1, 1)"), nv.AvgPool2d()),
        ((num_classes, "(1, 1)"), nv.Conv2d(1)),  # torchvision's fc, as a 1x1 conv
    ]
    return build_initialised(lines, _init, head_lines=1)


def _init(net: nv.Network) -> None:
    """torchvision's RegNet init: every conv's weight normal with std ``sqrt(2 / fan_out)`` (fan_out
    ``k * k * out_channels``; the SE convs keep PyTorch's default bias), norms at weight 1 and bias 0,
    the classifier normal(0, 0.01) with bias 0."""
    if next(net.parameters()).is_meta:
        return  # no values to set (and torch's init functions on meta tensors import torch._dynamo: seconds)
    head = {id(module) for module in net[-1].modules()}
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and id(module) in head:
            nn.init.normal_(module.weight, mean=0.0, std=0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")  # sqrt(2 / fan_out)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


# depth, w_0, w_a, w_m, group width: torchvision's arguments of BlockParams.from_init_params
_Y_400MF = (16, 48, 27.89, 2.09, 8)
_Y_800MF = (14, 56, 38.84, 2.4, 16)
_Y_1_6GF = (27, 48, 20.71, 2.65, 24)
_Y_3_2GF = (21, 80, 42.63, 2.66, 24)
_Y_8GF = (17, 192, 76.82, 2.19, 56)
_Y_16GF = (18, 200, 106.23, 2.48, 112)
_Y_32GF = (20, 232, 115.89, 2.53, 232)
_Y_128GF = (27, 456, 160.83, 2.52, 264)
_X_400MF = (22, 24, 24.48, 2.54, 16)
_X_800MF = (16, 56, 35.73, 2.28, 16)
_X_1_6GF = (18, 80, 34.01, 2.25, 24)
_X_3_2GF = (25, 88, 26.31, 2.25, 48)
_X_8GF = (23, 80, 49.56, 2.88, 120)
_X_16GF = (22, 216, 55.59, 2.1, 128)
_X_32GF = (23, 320, 69.86, 2.0, 168)
_SE = 0.25  # RegNetY's squeeze-and-excitation ratio; RegNetX has none


@register_model(weights=torchvision_weights)
def regnet_y_400mf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetY-400MF (torchvision's ``regnet_y_400mf``): depth 16, w_0 48, w_a 27.89, w_m 2.09, groups of 8, SE 0.25.

    Keywords: ``stem_width`` (32), and ``norm`` and ``act`` for the stem and every block.
    """
    return _regnet("regnet_y_400mf", _Y_400MF, _SE, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_y_800mf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetY-800MF (torchvision's ``regnet_y_800mf``): depth 14, w_0 56, w_a 38.84, w_m 2.4, groups of 16, SE 0.25."""
    return _regnet("regnet_y_800mf", _Y_800MF, _SE, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_y_1_6gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetY-1.6GF (torchvision's ``regnet_y_1_6gf``): depth 27, w_0 48, w_a 20.71, w_m 2.65, groups of 24, SE 0.25."""
    return _regnet("regnet_y_1_6gf", _Y_1_6GF, _SE, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_y_3_2gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetY-3.2GF (torchvision's ``regnet_y_3_2gf``): depth 21, w_0 80, w_a 42.63, w_m 2.66, groups of 24, SE 0.25."""
    return _regnet("regnet_y_3_2gf", _Y_3_2GF, _SE, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_y_8gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetY-8GF (torchvision's ``regnet_y_8gf``): depth 17, w_0 192, w_a 76.82, w_m 2.19, groups of 56, SE 0.25."""
    return _regnet("regnet_y_8gf", _Y_8GF, _SE, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_y_16gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetY-16GF (torchvision's ``regnet_y_16gf``): depth 18, w_0 200, w_a 106.23, w_m 2.48, groups of 112, SE 0.25."""
    return _regnet("regnet_y_16gf", _Y_16GF, _SE, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_y_32gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetY-32GF (torchvision's ``regnet_y_32gf``): depth 20, w_0 232, w_a 115.89, w_m 2.53, groups of 232, SE 0.25."""
    return _regnet("regnet_y_32gf", _Y_32GF, _SE, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_y_128gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetY-128GF (torchvision's ``regnet_y_128gf``): depth 27, w_0 456, w_a 160.83, w_m 2.52, groups of 264, SE 0.25."""
    return _regnet("regnet_y_128gf", _Y_128GF, _SE, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_x_400mf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetX-400MF (torchvision's ``regnet_x_400mf``): depth 22, w_0 24, w_a 24.48, w_m 2.54, groups of 16, no SE.

    Keywords: ``stem_width`` (32), and ``norm`` and ``act`` for the stem and every block.
    """
    return _regnet("regnet_x_400mf", _X_400MF, None, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_x_800mf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetX-800MF (torchvision's ``regnet_x_800mf``): depth 16, w_0 56, w_a 35.73, w_m 2.28, groups of 16."""
    return _regnet("regnet_x_800mf", _X_800MF, None, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_x_1_6gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetX-1.6GF (torchvision's ``regnet_x_1_6gf``): depth 18, w_0 80, w_a 34.01, w_m 2.25, groups of 24."""
    return _regnet("regnet_x_1_6gf", _X_1_6GF, None, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_x_3_2gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetX-3.2GF (torchvision's ``regnet_x_3_2gf``): depth 25, w_0 88, w_a 26.31, w_m 2.25, groups of 48."""
    return _regnet("regnet_x_3_2gf", _X_3_2GF, None, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_x_8gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetX-8GF (torchvision's ``regnet_x_8gf``): depth 23, w_0 80, w_a 49.56, w_m 2.88, groups of 120."""
    return _regnet("regnet_x_8gf", _X_8GF, None, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_x_16gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetX-16GF (torchvision's ``regnet_x_16gf``): depth 22, w_0 216, w_a 55.59, w_m 2.1, groups of 128."""
    return _regnet("regnet_x_16gf", _X_16GF, None, num_classes, keywords)


@register_model(weights=torchvision_weights)
def regnet_x_32gf(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """RegNetX-32GF (torchvision's ``regnet_x_32gf``): depth 23, w_0 320, w_a 69.86, w_m 2.0, groups of 168."""
    return _regnet("regnet_x_32gf", _X_32GF, None, num_classes, keywords)
