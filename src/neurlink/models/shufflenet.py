"""ShuffleNetV2 in the grammar, layer for layer the networks of torchvision.

The unit is a public nerve that reads its dims from the line like every block. Where the line keeps
its input's dims, the channels are split in two (``nv.ChannelSplit``), one half goes through
``branch2`` (1x1 conv, depthwise 3x3 conv, 1x1 conv) and the halves are joined again; where the
line's ratio grows, ``branch1`` (a strided depthwise 3x3 conv, a 1x1 conv) and ``branch2`` both read
the whole input. Either way the result is shuffled by 2 (``nv.ChannelShuffle``):

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.shufflenet import ShuffleInvertedResidual
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((24, 4), nv.Conv2d_BN_ReLU(3)),
...         ((116, 8), ShuffleInvertedResidual()),  # two branches of 58, stride 2
...         ((116, 8), ShuffleInvertedResidual()),  # split: 58 kept, 58 through branch2
...     ]
... )
>>> net(torch.randn(1, 3, 64, 64)).shape
torch.Size([1, 116, 8, 8])
>>> net[2].line_tags()
{'branch1.0': 1, 'branch1.2': 2, 'branch2.0': 3, 'branch2.3': 4, 'branch2.5': 5}
>>> [type(module).__name__ for module in net[3].children()]
['ChannelSplit', 'Conv2d_BN_ReLU', 'Conv2d_BN_ReLU', 'Conv2d_BN_ReLU', 'Concat', 'ChannelShuffle']

The conv sub-lines are tagged with the index of their conv in torchvision's ``branch1`` and
``branch2`` (its norm is the next item), which the weight mapping reads. The builders tag the stem
(``stem``: torchvision's ``conv1``), the last unit of every stage (``stage2`` ... ``stage4``,
torchvision's names, at ratios 8 to 32) and the last 1x1 conv (``conv5``), so
``net(x, outputs=["stage2", "stage3", "stage4"])`` is a feature pyramid. Every conv and the max pool
are padded ``k // 2`` as the grammar pads them, so the two agree at every input size.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import DimsError
from ..nerves._args import Act, Norm
from ._common import check_keywords
from ._published import torchvision_weights
from .mobilenet import _keywords

__all__ = [
    "ShuffleInvertedResidual",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
]


class ShuffleInvertedResidual(nv.Nerve):
    """ShuffleNetV2's unit (torchvision's ``shufflenetv2.InvertedResidual``), to an even number of channels.

    A line that keeps its input's dims splits them in two halves, keeps the first and passes the second
    through ``branch2``; a line of a larger ratio (stride 2) passes the whole input through ``branch1``
    (a strided depthwise 3x3 conv with its norm, a 1x1 conv) and ``branch2`` (a 1x1 conv, a depthwise
    3x3 conv, strided here, with its norm, a 1x1 conv), each to half the line's channels. The halves
    are concatenated and shuffled by 2. ``norm`` goes to every conv, ``act`` to the 1x1 convs (the
    depthwise convs have none, as in torchvision).
    """

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    def __init__(self, *, norm: Norm = nn.BatchNorm2d, act: Act = nn.ReLU) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        if dims_out.channels % 2:
            raise DimsError(
                f"{name} joins two halves, but the line declares {dims_out.channels} channels, an odd number",
                allowed=f"an even number of channels ({dims_out.channels - 1} or {dims_out.channels + 1})",
            )
        half = dims_out.channels // 2
        split = dims_in.shape.same_as(dims_out.shape, 2)
        if split and dims_in.channels != dims_out.channels:
            raise DimsError(
                f"{name} at its input's shape splits the input's {dims_in.channels} channels in two halves,"
                f" so the line must declare {dims_in.channels} channels, not {dims_out.channels}",
                allowed=f"{dims_in!r} on this line, or a larger ratio for the two-branch (stride 2) unit",
            )
        conv, project = _keywords(norm=norm, act=act), _keywords(norm=norm, act=None)
        shape_in, shape_out = dims_in.shape, dims_out.shape
        lines: list[Any] = []  # line 0 is the unit's input
        kept: Any  # the half (or branch) kept as it is, and the line branch2 reads
        branch: Any
        if split:
            lines.append(((half, shape_in), (half, shape_in), nv.ChannelSplit()))
            kept, branch = nv.output(1, 0), nv.output(1, 1)
        else:
            lines += [
                (
                    (dims_in.channels, shape_out),
                    nv.Conv2d_BN_ReLU[0, "branch1.0"](3, groups=dims_in.channels, **project),
                ),
                ((half, shape_out), nv.Conv2d_BN_ReLU[-1, "branch1.2"](1, **conv)),
            ]
            kept, branch = len(lines), 0
        lines += [
            ((half, shape_in), nv.Conv2d_BN_ReLU[branch, "branch2.0"](1, **conv)),
            ((half, shape_out), nv.Conv2d_BN_ReLU[-1, "branch2.3"](3, groups=half, **project)),
            ((half, shape_out), nv.Conv2d_BN_ReLU[-1, "branch2.5"](1, **conv)),
            (dims_out, nv.Concat[[kept, -1]]()),
            (dims_out, nv.ChannelShuffle(2)),
        ]
        self.add(lines)


# --- the networks ----------------------------------------------------------------------------

_REPEATS = (4, 8, 4)  # units of stage2, stage3, stage4 (torchvision's stages_repeats)


def _shufflenet_v2(builder: str, widths: tuple[int, ...], num_classes: int, keywords: dict[str, Any]) -> nv.Network:
    """torchvision's ``ShuffleNetV2(stages_repeats, stages_out_channels)``: widths of the stem, the three
    stages and conv5. torchvision initialises nothing itself: every layer keeps PyTorch's default."""
    check_keywords(builder, keywords, (ShuffleInvertedResidual,), ("num_classes",))
    conv = _keywords(norm=keywords.get("norm", nn.BatchNorm2d), act=keywords.get("act", nn.ReLU))
    stem, *stages, last = widths
    lines: list[Any] = [
        ((3, 1), nv.Input()),
        ((stem, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3, **conv)),  # conv1: 3x3, stride 2, padding 1
        ((stem, 4), nv.MaxPool2d(3)),  # 3, stride 2, padding 1
    ]
    ratio = 4
    for stage, (width, repeats) in enumerate(zip(stages, _REPEATS), start=2):
        ratio *= 2  # every stage's first unit has stride 2
        lines += [((width, ratio), ShuffleInvertedResidual(**keywords))] * (repeats - 1)
        lines.append(((width, ratio), ShuffleInvertedResidual[-1, f"stage{stage}"](**keywords)))
    lines += [
        ((last, ratio), nv.Conv2d_BN_ReLU[-1, "conv5"](1, **conv)),
        ((last, "(1, 1)"), nv.AvgPool2d()),  # torchvision's x.mean([2, 3])
        ((num_classes, "(1, 1)"), nv.Conv2d(1)),  # torchvision's fc, as a 1x1 conv
    ]
    return nv.build(lines)


@register_model(weights=torchvision_weights)
def shufflenet_v2_x0_5(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """ShuffleNetV2 0.5x (torchvision's ``shufflenet_v2_x0_5``): widths 24, 48, 96, 192, 1024.

    Keywords: ``norm`` and ``act`` for the stem, every unit and conv5.
    """
    return _shufflenet_v2("shufflenet_v2_x0_5", (24, 48, 96, 192, 1024), num_classes, keywords)


@register_model(weights=torchvision_weights)
def shufflenet_v2_x1_0(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """ShuffleNetV2 1.0x (torchvision's ``shufflenet_v2_x1_0``): widths 24, 116, 232, 464, 1024."""
    return _shufflenet_v2("shufflenet_v2_x1_0", (24, 116, 232, 464, 1024), num_classes, keywords)


@register_model(weights=torchvision_weights)
def shufflenet_v2_x1_5(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """ShuffleNetV2 1.5x (torchvision's ``shufflenet_v2_x1_5``): widths 24, 176, 352, 704, 1024."""
    return _shufflenet_v2("shufflenet_v2_x1_5", (24, 176, 352, 704, 1024), num_classes, keywords)


@register_model(weights=torchvision_weights)
def shufflenet_v2_x2_0(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """ShuffleNetV2 2.0x (torchvision's ``shufflenet_v2_x2_0``): widths 24, 244, 488, 976, 2048."""
    return _shufflenet_v2("shufflenet_v2_x2_0", (24, 244, 488, 976, 2048), num_classes, keywords)
