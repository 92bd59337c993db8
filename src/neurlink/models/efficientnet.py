"""EfficientNet B0 to B7 and EfficientNetV2 S, M and L in the grammar, layer for layer the networks
of torchvision.

``MBConv`` is MobileNet's inverted residual with squeeze-and-excitation, SiLU and stochastic
depth; it reads its dims from the line like every block:

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.efficientnet import MBConv
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((32, 2), nv.Conv2d_BN_ReLU(3)),
...         ((16, 2), MBConv(1)),  # no expansion, new channels: no sum
...         ((24, 4), MBConv(6)),  # strided
...         ((24, 4), MBConv(6, stochastic_depth=0.1)),  # same dims: a dropped branch and a sum
...     ]
... )
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 24, 8, 8])
>>> [type(net.get_submodule(f"4.{k}")).__name__ for k in range(1, 7)]
['Conv2d_BN_ReLU', 'Conv2d_BN_ReLU', 'SqueezeExcitation', 'Conv2d_BN_ReLU', 'StochasticDepth', 'Add']

EfficientNetV2's early stages are ``FusedMBConv``: the expand conv and the depthwise conv made one
full conv, no squeeze-and-excitation; without expansion it is that one conv alone:

>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((24, 2), nv.Conv2d_BN_ReLU(3)),
...         ((24, 2), FusedMBConv(1)),  # one 3x3 conv (norm, SiLU), the sum
...         ((48, 4), FusedMBConv(4)),  # 3x3 stride 2 to 96 channels, 1x1 to 48: no sum
...     ]
... )
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 48, 8, 8])
>>> [tuple(net.get_submodule(f"3.{k}").conv.weight.shape) for k in (1, 2)]
[(96, 24, 3, 3), (48, 96, 1, 1)]

The width and depth multipliers of B0 ... B7 are applied as torchvision does (channels rounded to
multiples of 8, depths rounded up); V2's stages are torchvision's table as it stands. The stochastic
depth rate rises linearly block by block from 0 to ``stochastic_depth_prob * (n - 1) / n``. The
stem, the last block of each stage (``stage1`` ...) and the last conv (``features``) are tagged.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import NerveArgumentError
from ..nerves._args import Act, Norm, probability
from ._common import check_keywords, init_weights, kaiming_fan_out, positive_number, stage_lines, uniform_by_outputs
from ._published import torchvision_weights
from .mobilenet import InvertedBottleneck, _head, _keywords, make_divisible

__all__ = [
    "MBConv",
    "FusedMBConv",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2_s",
    "efficientnet_v2_m",
    "efficientnet_v2_l",
]


class MBConv(InvertedBottleneck):
    """EfficientNet's block (torchvision's ``MBConv``): expand to ``make_divisible(in * expand_ratio)``
    channels (no expand conv when that is ``in``), ``kernel_size`` depthwise conv, squeeze-and-excitation
    to ``max(1, int(in * se_ratio))`` channels (SiLU, Sigmoid; ``se_ratio=None``: none), project, and
    where the dims allow, ``StochasticDepth(stochastic_depth)`` and the sum. ``act`` and ``norm`` go
    to every conv.
    """

    def __init__(
        self,
        expand_ratio: float = 6,
        *,
        kernel_size: int | Sequence[int] = 3,
        se_ratio: float | None = 0.25,
        act: Act = nn.SiLU,
        norm: Norm = nn.BatchNorm2d,
        stochastic_depth: float = 0.0,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        positive_number("expand_ratio", expand_ratio, name)
        channels = self.input_links[0].channels
        squeeze = None
        if se_ratio is not None:
            if not isinstance(se_ratio, (int, float)) or isinstance(se_ratio, bool) or not 0 < se_ratio <= 1:
                raise NerveArgumentError(
                    f"{name}: se_ratio={se_ratio!r} is not in (0, 1]", allowed="0 < se_ratio <= 1, or None for no SE"
                )
            squeeze = max(1, int(channels * se_ratio))
        hidden = make_divisible(channels * expand_ratio)
        self._add_lines(hidden, kernel_size, act, norm, squeeze, act, nn.Sigmoid, stochastic_depth)


class FusedMBConv(nv.Nerve):
    """EfficientNetV2's early block (torchvision's ``FusedMBConv``): one ``kernel_size`` conv (strided
    when the line's ratio grows) to ``make_divisible(in * expand_ratio)`` channels, then a 1x1
    projection without activation; where that width is ``in`` (``expand_ratio=1``), the one conv goes
    to the output channels, with its activation. No squeeze-and-excitation. Where the dims allow,
    ``StochasticDepth(stochastic_depth)`` and the sum. ``act`` and ``norm`` go to every conv.
    """

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    def __init__(
        self,
        expand_ratio: float = 4,
        *,
        kernel_size: int | Sequence[int] = 3,
        act: Act = nn.SiLU,
        norm: Norm = nn.BatchNorm2d,
        stochastic_depth: float = 0.0,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        positive_number("expand_ratio", expand_ratio, name)
        probability("stochastic_depth", stochastic_depth, name)  # checked even where no sum uses it
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        hidden = make_divisible(dims_in.channels * expand_ratio)
        conv = _keywords(norm=norm, act=act)
        lines: list[Any]
        if hidden != dims_in.channels:  # the fused expansion, then the projection
            lines = [((hidden, dims_out.shape), nv.Conv2d_BN_ReLU(kernel_size, **conv))]
            lines.append((dims_out, nv.Conv2d_BN_ReLU(1, **_keywords(norm=norm, act=None))))
        else:
            lines = [(dims_out, nv.Conv2d_BN_ReLU(kernel_size, **conv))]
        if dims_in.same_as(dims_out):  # torchvision's use_res_connect: stride 1, same channels
            if stochastic_depth:
                lines.append((dims_out, nv.StochasticDepth(stochastic_depth)))
            lines.append((dims_out, nv.Add[[-1, 0]]()))  # line 0 is the block's input
        self.add(lines)


# a stage: its block, expansion, kernel, stride, output channels and number of blocks
Stage = tuple[type[nv.Nerve], float, int, int, int, int]

# expansion, kernel, stride, channels, blocks of each stage (torchvision's table for B0)
_STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3)]
_STAGES += [(6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]


def _efficientnet(
    builder: str,
    width_mult: float,
    depth_mult: float,
    dropout: float,
    num_classes: int,
    keywords: dict,
    norm: Norm = nn.BatchNorm2d,
) -> nv.Network:
    """B0 ... B7: B0's stages, widths and depths scaled; the last conv 4x the last stage's width."""
    stages: list[Stage] = [
        (MBConv, expand, kernel, stride, make_divisible(channels * width_mult), int(math.ceil(n * depth_mult)))
        for expand, kernel, stride, channels, n in _STAGES
    ]
    stem, last = make_divisible(32 * width_mult), 4 * stages[-1][4]
    return _network(builder, stages, stem, last, dropout, num_classes, keywords, norm)


def _network(
    builder: str,
    stages: list[Stage],
    stem: int,
    last: int,
    dropout: float,
    num_classes: int,
    keywords: dict,
    norm: Norm,
) -> nv.Network:
    """The stem (3x3 stride 2), the stages' blocks, the last 1x1 conv to ``last`` and the classifier."""
    check_keywords(builder, keywords, (MBConv,), ("num_classes", "dropout", "stochastic_depth_prob", "norm"))
    stochastic_depth_prob = probability("stochastic_depth_prob", keywords.pop("stochastic_depth_prob", 0.2), builder)
    norm = keywords.pop("norm", norm)
    act = keywords.get("act", nn.SiLU)
    total, ratio = sum(n for *_, n in stages), 2
    blocks: list[tuple[tuple[int, int], type[nv.Nerve], dict[str, Any]]] = []
    for block, expand, kernel, stride, channels, depth in stages:
        ratio *= stride
        taken = {key: value for key, value in keywords.items() if key in _keywords_of(block)}  # no SE in FusedMBConv
        for _ in range(depth):
            options = {"kernel_size": kernel, **taken, "norm": norm}
            options["stochastic_depth"] = stochastic_depth_prob * len(blocks) / total  # as torchvision computes it
            blocks.append(((channels, ratio), block, {"expand_ratio": expand, **options}))
    lines = [
        ((3, 1), nv.Input()),
        ((stem, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3, **_keywords(norm=norm, act=act))),
        stage_lines(blocks),
        _head(last, ratio, act, norm, None, dropout, num_classes),
    ]
    net = nv.build(lines)
    init_weights(net, 1, kaiming_fan_out, uniform_by_outputs)
    return net


@functools.cache
def _keywords_of(block: type[nv.Nerve]) -> frozenset[str]:
    return frozenset(inspect.signature(block.__init__).parameters) - {"self"}


_BN_EPS_1E3 = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)  # B5 ... B7, as torchvision


@register_model(weights=torchvision_weights)
def efficientnet_b0(num_classes: int = 1000, *, dropout: float = 0.2, **keywords: Any) -> nv.Network:
    """EfficientNet-B0 (torchvision's ``efficientnet_b0``): width x1.0, depth x1.0, dropout 0.2.

    Keywords: ``dropout``, ``stochastic_depth_prob`` (0.2), ``norm``, and block keywords (``act``, ``se_ratio``).
    """
    return _efficientnet("efficientnet_b0", 1.0, 1.0, dropout, num_classes, keywords)


@register_model(weights=torchvision_weights)
def efficientnet_b1(num_classes: int = 1000, *, dropout: float = 0.2, **keywords: Any) -> nv.Network:
    """EfficientNet-B1 (torchvision's ``efficientnet_b1``): width x1.0, depth x1.1, dropout 0.2."""
    return _efficientnet("efficientnet_b1", 1.0, 1.1, dropout, num_classes, keywords)


@register_model(weights=torchvision_weights)
def efficientnet_b2(num_classes: int = 1000, *, dropout: float = 0.3, **keywords: Any) -> nv.Network:
    """EfficientNet-B2 (torchvision's ``efficientnet_b2``): width x1.1, depth x1.2, dropout 0.3."""
    return _efficientnet("efficientnet_b2", 1.1, 1.2, dropout, num_classes, keywords)


@register_model(weights=torchvision_weights)
def efficientnet_b3(num_classes: int = 1000, *, dropout: float = 0.3, **keywords: Any) -> nv.Network:
    """EfficientNet-B3 (torchvision's ``efficientnet_b3``): width x1.2, depth x1.4, dropout 0.3."""
    return _efficientnet("efficientnet_b3", 1.2, 1.4, dropout, num_classes, keywords)


@register_model(weights=torchvision_weights)
def efficientnet_b4(num_classes: int = 1000, *, dropout: float = 0.4, **keywords: Any) -> nv.Network:
    """EfficientNet-B4 (torchvision's ``efficientnet_b4``): width x1.4, depth x1.8, dropout 0.4."""
    return _efficientnet("efficientnet_b4", 1.4, 1.8, dropout, num_classes, keywords)


@register_model(weights=torchvision_weights)
def efficientnet_b5(num_classes: int = 1000, *, dropout: float = 0.4, **keywords: Any) -> nv.Network:
    """EfficientNet-B5 (torchvision's ``efficientnet_b5``): width x1.6, depth x2.2, dropout 0.4, BatchNorm eps 1e-3, momentum 0.01."""
    return _efficientnet("efficientnet_b5", 1.6, 2.2, dropout, num_classes, keywords, _BN_EPS_1E3)


@register_model(weights=torchvision_weights)
def efficientnet_b6(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """EfficientNet-B6 (torchvision's ``efficientnet_b6``): width x1.8, depth x2.6, dropout 0.5, BatchNorm eps 1e-3, momentum 0.01."""
    return _efficientnet("efficientnet_b6", 1.8, 2.6, dropout, num_classes, keywords, _BN_EPS_1E3)


@register_model(weights=torchvision_weights)
def efficientnet_b7(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """EfficientNet-B7 (torchvision's ``efficientnet_b7``): width x2.0, depth x3.1, dropout 0.5, BatchNorm eps 1e-3, momentum 0.01."""
    return _efficientnet("efficientnet_b7", 2.0, 3.1, dropout, num_classes, keywords, _BN_EPS_1E3)


# block, expansion, kernel, stride, channels, blocks of each stage (torchvision's _efficientnet_conf)
_V2_S: list[Stage] = [(FusedMBConv, 1, 3, 1, 24, 2), (FusedMBConv, 4, 3, 2, 48, 4), (FusedMBConv, 4, 3, 2, 64, 4)]
_V2_S += [(MBConv, 4, 3, 2, 128, 6), (MBConv, 6, 3, 1, 160, 9), (MBConv, 6, 3, 2, 256, 15)]
_V2_M: list[Stage] = [(FusedMBConv, 1, 3, 1, 24, 3), (FusedMBConv, 4, 3, 2, 48, 5), (FusedMBConv, 4, 3, 2, 80, 5)]
_V2_M += [(MBConv, 4, 3, 2, 160, 7), (MBConv, 6, 3, 1, 176, 14), (MBConv, 6, 3, 2, 304, 18), (MBConv, 6, 3, 1, 512, 5)]
_V2_L: list[Stage] = [(FusedMBConv, 1, 3, 1, 32, 4), (FusedMBConv, 4, 3, 2, 64, 7), (FusedMBConv, 4, 3, 2, 96, 7)]
_V2_L += [(MBConv, 4, 3, 2, 192, 10), (MBConv, 6, 3, 1, 224, 19), (MBConv, 6, 3, 2, 384, 25), (MBConv, 6, 3, 1, 640, 7)]

_BN_EPS_1E3_V2 = functools.partial(nn.BatchNorm2d, eps=0.001)  # V2: torchvision's eps, the default momentum


def _efficientnet_v2(builder: str, stages: list[Stage], dropout: float, num_classes: int, keywords: dict) -> nv.Network:
    """V2: the stem as wide as the first stage (which keeps its width), the last conv 1280 wide."""
    return _network(builder, stages, stages[0][4], 1280, dropout, num_classes, keywords, _BN_EPS_1E3_V2)


@register_model(weights=torchvision_weights)
def efficientnet_v2_s(num_classes: int = 1000, *, dropout: float = 0.2, **keywords: Any) -> nv.Network:
    """EfficientNetV2-S (torchvision's ``efficientnet_v2_s``): three ``FusedMBConv`` stages, three ``MBConv``
    stages, dropout 0.2, BatchNorm eps 1e-3. Keywords as ``efficientnet_b0``'s (``se_ratio`` goes to ``MBConv``)."""
    return _efficientnet_v2("efficientnet_v2_s", _V2_S, dropout, num_classes, keywords)


@register_model(weights=torchvision_weights)
def efficientnet_v2_m(num_classes: int = 1000, *, dropout: float = 0.3, **keywords: Any) -> nv.Network:
    """EfficientNetV2-M (torchvision's ``efficientnet_v2_m``): three ``FusedMBConv`` stages, four ``MBConv``
    stages, dropout 0.3, BatchNorm eps 1e-3."""
    return _efficientnet_v2("efficientnet_v2_m", _V2_M, dropout, num_classes, keywords)


@register_model(weights=torchvision_weights)
def efficientnet_v2_l(num_classes: int = 1000, *, dropout: float = 0.4, **keywords: Any) -> nv.Network:
    """EfficientNetV2-L (torchvision's ``efficientnet_v2_l``): a 32-channel stem, three ``FusedMBConv`` stages,
    four ``MBConv`` stages, dropout 0.4, BatchNorm eps 1e-3."""
    return _efficientnet_v2("efficientnet_v2_l", _V2_L, dropout, num_classes, keywords)
