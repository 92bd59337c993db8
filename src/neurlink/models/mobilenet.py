"""MobileNetV2 and MobileNetV3 in the grammar, layer for layer the networks of torchvision.

The block is a public nerve: a line declares what comes out, ``InvertedResidual`` reads what
comes in and derives the rest: the stride of its depthwise conv, and a residual sum only where
the input has the output's dims:

>>> import torch
>>> import neurlink.nerves as nv
>>> from torch import nn
>>> from neurlink.models.mobilenet import InvertedResidual
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((16, 2), nv.Conv2d_BN_ReLU(3, act=nn.Hardswish)),
...         ((24, 4), InvertedResidual(4)),  # 1x1 to 64, depthwise 3x3 stride 2, 1x1 to 24: no sum
...         ((24, 4), InvertedResidual(hidden_channels=72, kernel_size=5, squeeze_channels=24)),  # with SE, a sum
...     ]
... )
>>> net(torch.randn(1, 3, 32, 32)).shape
torch.Size([1, 24, 8, 8])
>>> [type(net.get_submodule(f"3.{k}")).__name__ for k in range(1, 6)]
['Conv2d_BN_ReLU', 'Conv2d_BN_ReLU', 'SqueezeExcitation', 'Conv2d_BN_ReLU', 'Add']

The builders tag the stem, the last block of every stage (``stage1`` ...) and the last conv
(``features``), so ``net(x, outputs=["stage2", "stage3", "stage5", "features"])`` is a feature pyramid.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import NerveArgumentError
from ..nerves._args import Act, Norm, positive_int, probability
from ._common import check_keywords, init_weights, kaiming_fan_out, positive_number, stage_lines
from ._published import torchvision_weights

__all__ = [
    "InvertedResidual",
    "make_divisible",
    "v3_features",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """``value`` rounded to a multiple of ``divisor``, never below ``min_value`` (default ``divisor``)
    nor more than 10% below ``value``: torchvision's (and TensorFlow's) ``_make_divisible``.

    >>> make_divisible(32 * 0.75), make_divisible(1280 * 1.1), make_divisible(17)
    (24, 1408, 16)
    """
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class InvertedBottleneck(nv.Nerve):
    """What MobileNet's and EfficientNet's blocks share: expand (1x1 conv), depthwise conv
    (strided when the line's ratio grows), squeeze-and-excitation, project (1x1 conv, no act),
    then, where the input has the output's dims, stochastic depth and the residual sum."""

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    def _add_lines(
        self,
        hidden: int,
        kernel_size: int | Sequence[int],
        act: Act,
        norm: Norm,
        squeeze: int | None,
        se_act: Act,
        se_scale_act: Act,
        stochastic_depth: float,
        dilation: int = 1,
    ) -> None:
        name = type(self).__name__
        positive_int("hidden_channels", hidden, name)
        probability("stochastic_depth", stochastic_depth, name)  # checked even where no sum uses it
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        conv = _keywords(norm=norm, act=act)
        lines: list[Any] = []
        if hidden != dims_in.channels:  # line 0 is the block's input
            lines.append(((hidden, dims_in.shape), nv.Conv2d_BN_ReLU(1, **conv)))
        depthwise: dict[str, Any] = {"dilation": dilation} if dilation != 1 else {}
        lines.append(((hidden, dims_out.shape), nv.Conv2d_BN_ReLU(kernel_size, groups=hidden, **depthwise, **conv)))
        if squeeze is not None:
            excite = _keywords(act=se_act, scale_act=se_scale_act, defaults={"act": nn.ReLU, "scale_act": nn.Sigmoid})
            lines.append(((hidden, dims_out.shape), nv.SqueezeExcitation(squeeze, **excite)))
        lines.append((dims_out, nv.Conv2d_BN_ReLU(1, **_keywords(norm=norm, act=None))))
        if dims_in.same_as(dims_out):  # torchvision's use_res_connect: stride 1, same channels
            if stochastic_depth:
                lines.append((dims_out, nv.StochasticDepth(stochastic_depth)))
            lines.append((dims_out, nv.Add[[-1, 0]]()))
        self.add(lines)


class InvertedResidual(InvertedBottleneck):
    """MobileNet's block (torchvision's ``InvertedResidual`` of V2 and V3).

    The hidden width is ``hidden_channels`` or ``int(round(in_channels * expand_ratio))``; without
    expansion (equal widths) there is no 1x1 expand conv. ``squeeze_channels`` adds a
    ``SqueezeExcitation`` after the depthwise conv (``se_act``, ``se_scale_act``: MobileNetV3's
    ReLU and Hardsigmoid); ``act`` and ``norm`` go to every conv (MobileNetV2: ReLU6, V3: ReLU or
    Hardswish); ``stochastic_depth`` drops the residual branch (0: no such line); ``dilation``
    dilates the depthwise conv (torchvision's ``dilated=True`` last stage, its padding derived).
    """

    def __init__(
        self,
        expand_ratio: float = 6,
        *,
        hidden_channels: int | None = None,
        kernel_size: int | Sequence[int] = 3,
        act: Act = nn.ReLU6,
        norm: Norm = nn.BatchNorm2d,
        squeeze_channels: int | None = None,
        se_act: Act = nn.ReLU,
        se_scale_act: Act = nn.Hardsigmoid,
        stochastic_depth: float = 0.0,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        positive_number("expand_ratio", expand_ratio, name)
        if hidden_channels is None:
            hidden_channels = int(round(self.input_links[0].channels * expand_ratio))
        if squeeze_channels is not None:
            positive_int("squeeze_channels", squeeze_channels, name)
        self._add_lines(
            hidden_channels, kernel_size, act, norm, squeeze_channels, se_act, se_scale_act, stochastic_depth, dilation
        )


def _keywords(defaults: dict[str, Any] | None = None, **keywords: Any) -> dict[str, Any]:
    """Keywords for a nerve, leaving out its defaults so that ``print(net)`` stays short."""
    defaults = {"norm": nn.BatchNorm2d, "act": nn.ReLU} if defaults is None else defaults
    return {key: value for key, value in keywords.items() if key not in defaults or value is not defaults[key]}


# --- the networks ----------------------------------------------------------------------------

# MobileNetV2: expansion t, channels c, blocks n, stride s of each stage (torchvision's table)
_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

# MobileNetV3: kernel, expanded channels, channels, squeeze-and-excitation, Hardswish, stride
_V3_LARGE = [
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
]
_V3_SMALL = [
    (3, 16, 16, True, False, 2),
    (3, 72, 24, False, False, 2),
    (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2),
    (5, 240, 40, True, True, 1),
    (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1),
    (5, 144, 48, True, True, 1),
    (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1),
    (5, 576, 96, True, True, 1),
]


def _head(
    channels: int, ratio: int, act: Act, norm: Norm, hidden: int | None, dropout: float, num_classes: int
) -> list[Any]:
    """The last 1x1 conv, global pooling, (a hidden layer,) dropout and the classifier, all at "(1, 1)"."""
    dropout = _dropout(dropout)
    lines = [
        ((channels, ratio), nv.Conv2d_BN_ReLU[-1, "features"](1, **_keywords(norm=norm, act=act))),
        ((channels, "(1, 1)"), nv.AvgPool2d()),
    ]
    if hidden is not None:  # torchvision's Linear + Hardswish, as a 1x1 conv
        lines.append(((hidden, "(1, 1)"), nv.Conv2d(1, act=nn.Hardswish)))
        channels = hidden
    lines.append(((channels, "(1, 1)"), nn.Dropout(dropout)))
    lines.append(((num_classes, "(1, 1)"), nv.Conv2d(1)))  # torchvision's Linear classifier, as a 1x1 conv
    return lines


def _dropout(dropout: float) -> float:
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
        raise NerveArgumentError(f"dropout={dropout!r} is not a probability", allowed="0 <= dropout <= 1")
    return float(dropout)


def _init(net: nv.Network, head_lines: int) -> nv.Network:
    """torchvision's MobileNet init: He-normal (fan_out) convs, the Linear layers normal(0, 0.01)."""
    init_weights(net, head_lines, kaiming_fan_out, functools.partial(nn.init.normal_, mean=0.0, std=0.01))
    return net


@register_model(weights=torchvision_weights)
def mobilenet_v2(
    num_classes: int = 1000, *, width_mult: float = 1.0, dropout: float = 0.2, **block_keywords: Any
) -> nv.Network:
    """MobileNetV2 (torchvision's ``mobilenet_v2``). ``width_mult`` scales the channels (rounded to
    multiples of 8, as torchvision does); other keywords (``act``, ``norm``) go to every block."""
    check_keywords("mobilenet_v2", block_keywords, (InvertedResidual,), ("num_classes", "width_mult", "dropout"))
    positive_number("width_mult", width_mult, "mobilenet_v2")
    norm, act = block_keywords.get("norm", nn.BatchNorm2d), block_keywords.setdefault("act", nn.ReLU6)
    stem = make_divisible(32 * width_mult)
    blocks, ratio = [], 2
    for t, c, n, s in _V2:
        ratio *= s
        blocks += [
            ((make_divisible(c * width_mult), ratio), InvertedResidual, {"expand_ratio": t, **block_keywords})
        ] * n
    lines = [
        ((3, 1), nv.Input()),
        ((stem, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3, **_keywords(norm=norm, act=act))),
        stage_lines(blocks),
        _head(make_divisible(1280 * max(1.0, width_mult)), ratio, act, norm, None, dropout, num_classes),
    ]
    return _init(nv.build(lines), 1)


def v3_features(
    setting: Sequence[tuple[int, int, int, bool, bool, int]],
    width_mult: float,
    block_keywords: dict[str, Any],
    *,
    dilated: bool = False,
    tags: dict[int, str] | None = None,
) -> tuple[list[Any], int, Norm]:
    """MobileNetV3's ``features`` as lines (the Input, the stem, the blocks, the last 1x1 conv tagged
    ``features``), with its ratio and norm. ``dilated`` keeps the last stage at ratio 16, its
    depthwise convs dilated by 2 (torchvision's ``dilated=True``); ``tags`` names blocks by their
    index in torchvision's ``features`` (``{4: "low"}``) where no stage tag is."""
    positive_number("width_mult", width_mult, "mobilenet_v3")
    norm = block_keywords.pop("norm", functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01))
    blocks, ratio = [], 2
    for index, (kernel, expanded, channels, se, hardswish, stride) in enumerate(setting):
        last_stage = index >= len(setting) - 3  # torchvision's C4 stage, which dilated=True dilates
        keywords: dict[str, Any] = {"hidden_channels": make_divisible(expanded * width_mult), "kernel_size": kernel}
        keywords["act"] = nn.Hardswish if hardswish else nn.ReLU
        if se:
            keywords["squeeze_channels"] = make_divisible(keywords["hidden_channels"] // 4)
        if dilated and last_stage:
            keywords["dilation"] = 2
        else:
            ratio *= stride
        blocks.append(((make_divisible(channels * width_mult), ratio), InvertedResidual, {**keywords, "norm": norm}))
    stem = make_divisible(16 * width_mult)
    blocks = [(dims, block, {**keywords, **block_keywords}) for dims, block, keywords in blocks]
    stages = stage_lines(blocks)
    for index, tag in (tags or {}).items():  # index in features: 0 is the stem, block k is k
        dims, block, keywords = blocks[index - 1]
        stages[index - 1] = (dims, block[-1, tag](**keywords))
    last = 6 * blocks[-1][0][0]
    lines = [
        ((3, 1), nv.Input()),
        ((stem, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3, norm=norm, act=nn.Hardswish)),
        stages,
        ((last, ratio), nv.Conv2d_BN_ReLU[-1, "features"](1, **_keywords(norm=norm, act=nn.Hardswish))),
    ]
    return lines, ratio, norm


def _mobilenet_v3(
    builder: str,
    setting: Sequence[tuple[int, int, int, bool, bool, int]],
    last_channel: int,
    num_classes: int,
    width_mult: float,
    dropout: float,
    block_keywords: dict[str, Any],
    dilated: bool,
) -> nv.Network:
    check_keywords(builder, block_keywords, (InvertedResidual,), ("num_classes", "width_mult", "dropout", "dilated"))
    positive_number("width_mult", width_mult, builder)
    features, ratio, norm = v3_features(setting, width_mult, block_keywords, dilated=dilated)
    last, _ = features[-1][0]
    hidden = make_divisible(last_channel * width_mult)
    lines = [features[:-1], _head(last, ratio, nn.Hardswish, norm, hidden, dropout, num_classes)]
    return _init(nv.build(lines), 3)  # the hidden 1x1 conv, the dropout and the classifier


@register_model(weights=torchvision_weights)
def mobilenet_v3_large(
    num_classes: int = 1000,
    *,
    width_mult: float = 1.0,
    dropout: float = 0.2,
    dilated: bool = False,
    **block_keywords: Any,
) -> nv.Network:
    """MobileNetV3-Large (torchvision's ``mobilenet_v3_large``): BatchNorm eps 1e-3, momentum 0.01;
    the classifier's hidden Linear + Hardswish is a 1x1 conv at ``"(1, 1)"``. ``dilated=True`` keeps
    the last stage at ratio 16, dilated (torchvision's ``dilated=True``, DeepLabV3's backbone)."""
    return _mobilenet_v3(
        "mobilenet_v3_large", _V3_LARGE, 1280, num_classes, width_mult, dropout, dict(block_keywords), dilated
    )


@register_model(weights=torchvision_weights)
def mobilenet_v3_small(
    num_classes: int = 1000,
    *,
    width_mult: float = 1.0,
    dropout: float = 0.2,
    dilated: bool = False,
    **block_keywords: Any,
) -> nv.Network:
    """MobileNetV3-Small (torchvision's ``mobilenet_v3_small``)."""
    return _mobilenet_v3(
        "mobilenet_v3_small", _V3_SMALL, 1024, num_classes, width_mult, dropout, dict(block_keywords), dilated
    )
