"""MNASNet (B1) in the grammar, layer for layer the networks of torchvision.

Its block is a public nerve that reads its dims from the line: a 1x1 conv to ``expansion_factor``
times the input's channels, a depthwise conv (strided when the line's ratio grows), a 1x1 conv
without activation, and the residual sum where the input has the output's dims:

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.mnasnet import MNASNetBlock
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((16, 2), nv.Conv2d_BN_ReLU(3)),
...         ((24, 4), MNASNetBlock(3)),  # 1x1 to 48, depthwise 3x3 stride 2, 1x1 to 24: no sum
...         ((24, 4), MNASNetBlock(3, kernel_size=5)),  # 1x1 to 72, depthwise 5x5, 1x1 to 24, a sum
...     ]
... )
>>> net(torch.randn(1, 3, 32, 32)).shape
torch.Size([1, 24, 8, 8])
>>> [type(module).__name__ for module in net[3].children()]
['Conv2d_BN_ReLU', 'Conv2d_BN_ReLU', 'Conv2d_BN_ReLU', 'Add']

The widths scale with ``alpha`` as torchvision rounds them (:func:`mnasnet_depths`). Every norm is
BatchNorm of momentum ``1 - 0.9997`` (TensorFlow's 0.9997 in PyTorch's convention:
:func:`mnasnet_batch_norm`). The builders tag the stem, the last block of every stage (``stage1`` ...
``stage6``) and the last 1x1 conv (``features``), so
``net(x, outputs=["stage1", "stage2", "stage3", "stage5", "features"])`` is a feature pyramid. Every
conv is padded ``k // 2`` as the grammar pads it, so the two agree at every input size.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from torch import nn

from .. import nerves as nv
from .._names import nameable
from .._registry import register_model
from ..nerves._args import Act, Norm, positive_int
from ._common import build_initialised, check_keywords, init_weights, kaiming_fan_out, positive_number, stage_lines
from ._published import torchvision_weights
from .mobilenet import _dropout, _keywords, make_divisible

__all__ = [
    "MNASNetBlock",
    "mnasnet_batch_norm",
    "mnasnet_depths",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
]

BN_MOMENTUM = 1 - 0.9997  # the paper's TensorFlow decay 0.9997, in PyTorch's convention


@nameable
def mnasnet_batch_norm(channels: int) -> nn.BatchNorm2d:
    """MNASNet's norm: ``nn.BatchNorm2d`` of momentum ``1 - 0.9997`` (a named function, so that the lines print it short)."""
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)


class MNASNetBlock(nv.Nerve):
    """MNASNet's inverted residual (torchvision's ``mnasnet._InvertedResidual``).

    A 1x1 conv to ``in_channels * expansion_factor`` channels (always, even for a factor of 1), a
    depthwise ``kernel_size`` conv (strided when the line's ratio grows), a 1x1 conv without
    activation, then, where the input has the line's dims, ``layers(x) + x``. ``norm`` goes to every
    conv (by default MNASNet's BatchNorm, momentum ``1 - 0.9997``), ``act`` to the first two.
    """

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    def __init__(
        self,
        expansion_factor: int = 3,
        *,
        kernel_size: int | Sequence[int] = 3,
        norm: Norm = mnasnet_batch_norm,
        act: Act = nn.ReLU,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        positive_int("expansion_factor", expansion_factor, type(self).__name__)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        hidden = dims_in.channels * expansion_factor
        conv = _keywords(norm=norm, act=act)
        lines: list[Any] = [  # line 0 is the block's input
            ((hidden, dims_in.shape), nv.Conv2d_BN_ReLU(1, **conv)),
            ((hidden, dims_out.shape), nv.Conv2d_BN_ReLU(kernel_size, groups=hidden, **conv)),
            (dims_out, nv.Conv2d_BN_ReLU(1, **_keywords(norm=norm, act=None))),
        ]
        if dims_in.same_as(dims_out):  # torchvision's apply_residual: stride 1, same channels
            lines.append((dims_out, nv.Add[[-1, 0]]()))
        self.add(lines)


_DEPTHS = (32, 16, 24, 40, 80, 96, 192, 320)  # the stem's two convs, then the six stacks

# the six stacks: kernel, stride, expansion factor, blocks (torchvision's _stack calls)
_STACKS = ((3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1))


@functools.lru_cache(maxsize=16)
def mnasnet_depths(alpha: float) -> tuple[int, ...]:
    """The widths of MNASNet's stem and stacks at depth multiplier ``alpha``: torchvision's ``_get_depths``.

    Each of 32, 16, 24, 40, 80, 96, 192, 320 times ``alpha`` is rounded to the nearest multiple of 8
    (at least 8), one multiple up where that would lose more than 10% (torchvision's
    ``_round_to_multiple_of`` with its bias of 0.9: MobileNet's ``make_divisible``).

    >>> mnasnet_depths(0.75)  # 16 * 0.75 = 12 rounds up to 16, 24 * 0.75 = 18 to 24
    (24, 16, 24, 32, 64, 72, 144, 240)
    >>> mnasnet_depths(1.3)
    (40, 24, 32, 56, 104, 128, 248, 416)
    """
    return tuple(make_divisible(depth * alpha, 8) for depth in _DEPTHS)


def _mnasnet(builder: str, alpha: float, num_classes: int, dropout: float, keywords: dict[str, Any]) -> nv.Network:
    check_keywords(builder, keywords, (), ("num_classes", "dropout", "norm", "act"))
    positive_number("alpha", alpha, builder)
    norm = keywords.get("norm", mnasnet_batch_norm)
    act = keywords.get("act", nn.ReLU)
    conv = _keywords(norm=norm, act=act)
    block_keywords = _keywords(norm=norm, act=act, defaults={"norm": mnasnet_batch_norm, "act": nn.ReLU})
    depths = mnasnet_depths(alpha)
    blocks, ratio = [], 2
    for (kernel, stride, expansion, repeats), width in zip(_STACKS, depths[2:]):
        ratio *= stride
        block = {"expansion_factor": expansion, **({"kernel_size": kernel} if kernel != 3 else {}), **block_keywords}
        blocks += [((width, ratio), MNASNetBlock, block)] * repeats
    lines = [
        ((3, 1), nv.Input()),
        ((depths[0], 2), nv.Conv2d_BN_ReLU[-1, "stem"](3, **conv)),  # 3x3, stride 2, padding 1
        ((depths[0], 2), nv.Conv2d_BN_ReLU(3, groups=depths[0], **conv)),  # depthwise separable, no skip
        ((depths[1], 2), nv.Conv2d_BN_ReLU(1, **_keywords(norm=norm, act=None))),
        stage_lines(blocks),
        ((1280, ratio), nv.Conv2d_BN_ReLU[-1, "features"](1, **conv)),
        ((1280, "(1, 1)"), nv.AvgPool2d()),  # torchvision's x.mean([2, 3])
        ((1280, "(1, 1)"), nn.Dropout(_dropout(dropout))),
        ((num_classes, "(1, 1)"), nv.Conv2d(1)),  # torchvision's Linear classifier, as a 1x1 conv
    ]
    return build_initialised(lines, _init, head_lines=1)


def _init(net: nv.Network) -> None:
    """torchvision's MNASNet init: convs He-normal (fan_out), the classifier He-uniform (fan_out, the
    gain of a sigmoid), biases zero, norms at weight 1 and bias 0."""
    head = functools.partial(nn.init.kaiming_uniform_, mode="fan_out", nonlinearity="sigmoid")
    init_weights(net, 1, kaiming_fan_out, head)


@register_model(weights=torchvision_weights)
def mnasnet0_5(num_classes: int = 1000, *, dropout: float = 0.2, **keywords: Any) -> nv.Network:
    """MNASNet with depth multiplier 0.5 (torchvision's ``mnasnet0_5``).

    Keywords: ``dropout`` before the classifier, and ``norm`` and ``act`` for every conv (torchvision:
    BatchNorm of momentum ``1 - 0.9997``, ReLU).
    """
    return _mnasnet("mnasnet0_5", 0.5, num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def mnasnet0_75(num_classes: int = 1000, *, dropout: float = 0.2, **keywords: Any) -> nv.Network:
    """MNASNet with depth multiplier 0.75 (torchvision's ``mnasnet0_75``)."""
    return _mnasnet("mnasnet0_75", 0.75, num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def mnasnet1_0(num_classes: int = 1000, *, dropout: float = 0.2, **keywords: Any) -> nv.Network:
    """MNASNet with depth multiplier 1.0 (torchvision's ``mnasnet1_0``)."""
    return _mnasnet("mnasnet1_0", 1.0, num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def mnasnet1_3(num_classes: int = 1000, *, dropout: float = 0.2, **keywords: Any) -> nv.Network:
    """MNASNet with depth multiplier 1.3 (torchvision's ``mnasnet1_3``)."""
    return _mnasnet("mnasnet1_3", 1.3, num_classes, dropout, keywords)
