"""Dense prediction heads and torchvision's segmentation models (FCN, DeepLabV3, LR-ASPP) in the grammar.

The heads are public nerves that take their inputs by selector, so they go on any backbone. Each
derives its layers from the dims of the lines it reads and declares; the pooling branches resize
to the size of a line of theirs (``Interpolate[[x, like]]``), so the heads need no base shape:

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.segmentation import ASPP, LRASPPHead
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((16, 4), nv.Conv2d_BN_ReLU[-1, "low"](3)),
...         ((32, 8), nv.Conv2d_BN_ReLU(3)),
...         ((24, 8), ASPP(rates=(2, 4))),  # 1x1, two dilated 3x3 and a pooling branch, projected
...         ((5, 4), LRASPPHead[["low", -1]](inter_channels=8)),  # low at ratio 4, high at ratio 8
...         ((5, 1), nv.Interpolate("bilinear", align_corners=False)),  # logits at the input's size
...     ]
... )
>>> net(torch.randn(2, 3, 45, 38)).shape
torch.Size([2, 5, 45, 38])

The builders (``fcn_resnet50`` ... ``lraspp_mobilenet_v3_large``) are torchvision's models of the
same names, layer for layer: a dilated backbone, a head, and a last line at ratio 1 that resizes the
logits to the input's size (bilinear, ``align_corners=False``), for any input size. ``aux_loss=True``
adds torchvision's auxiliary ``FCNHead`` as a second output: ``out, aux = net(x)``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..context import Link
from ..errors import DimsError, NerveArgumentError
from ..interpreter import Ops
from ..nerves._args import Act, Norm, check_shape_ranks, make_act, positive_int, probability
from .mobilenet import _V3_LARGE, v3_features
from .resnet import Bottleneck, _conv, _init_like_torchvision, backbone_lines

__all__ = [
    "ASPP",
    "DeepLabHead",
    "FCNHead",
    "LRASPPHead",
    "Multiply",
    "fcn_resnet50",
    "fcn_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
]


def _same_shape(nerve: nv.Nerve, link: Link) -> None:
    """The line declares the shape of ``link``: a head keeps the resolution it reads."""
    declared = nerve.target_dims[0].shape
    if not link.shape.same_as(declared):
        raise DimsError(
            f"{type(nerve).__name__} keeps the shape of line {link.index} ({link.shape!r}), but this line declares"
            f" {declared!r}",
            allowed=f"shape {link.shape!r} on this line (resize the logits on a later line, e.g. nv.Interpolate)",
        )


def _rates(rates: Sequence[int], owner: str) -> tuple[int, ...]:
    if isinstance(rates, int) or not isinstance(rates, (tuple, list)) or not rates:
        raise NerveArgumentError(
            f"{owner}: rates={rates!r} is not a sequence of dilations",
            allowed="a tuple of positive ints, one 3x3 branch each (torchvision: (12, 24, 36))",
        )
    return tuple(positive_int("rates", rate, owner) for rate in rates)


class Multiply(nv.Nerve):
    """``x * scale`` of the two selected lines, ``scale`` broadcast: ``((128, 16), Multiply[["x", "s"]]())``
    with ``s`` at ``(128, "(1, 1)")`` weighs every channel of ``x`` (LR-ASPP's attention). The line
    declares the dims of ``x``."""

    keeps_rank = True  # its output has the spatial rank of its inputs

    def __init__(self) -> None:
        super().__init__()
        self.expect_links(2)
        x, scale = self.input_links
        if not x.dims[0].same_as(self.target_dims[0]):
            raise DimsError(
                f"Multiply keeps the dims of its first line {x.index}, {x.dims[0]!r}, but this line declares"
                f" {self.target_dims[0]!r}",
                allowed=f"{x.dims[0]!r} on this line",
            )
        if scale.channels not in (1, x.channels):
            raise DimsError(
                f"Multiply scales line {x.index} ({x.channels} channels) by line {scale.index}, which has"
                f" {scale.channels}",
                allowed=f'a second line of {x.channels} channels or 1, at the first line\'s shape or "(1, 1)"',
            )

    def _steps(self, ops: Ops, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return ops.function(operator.mul, x, scale)


class ASPP(nv.Nerve):
    """Atrous spatial pyramid pooling (torchvision's ``ASPP``): ``((256, 8), ASPP(rates=(12, 24, 36)))``.

    On the selected line, in parallel: a 1x1 conv, a 3x3 conv of each dilation in ``rates``, and a
    pooling branch (global average, 1x1 conv, resized back to the line's size, bilinear), each
    conv -> norm -> act to the declared channels; then their concatenation is projected by a 1x1
    conv -> norm -> act, and dropped out (``dropout``). The line keeps the input's shape; the
    paddings of the dilated convs are derived (``rate`` on each side).

    For the weight mappings, ``branches`` lists the sub-lines of the conv branches, ``pooling``
    the pooling branch's conv and ``project`` the projection.
    """

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    def __init__(
        self,
        rates: Sequence[int] = (12, 24, 36),
        *,
        dropout: float = 0.5,
        norm: Norm = nn.BatchNorm2d,
        act: Act = nn.ReLU,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.expect_links(1)
        check_shape_ranks(self, 2)
        rates = _rates(rates, name)
        dropout = probability("dropout", dropout, name)
        make_act(act, name)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        _same_shape(self, self.input_links[0])
        channels, shape = dims_out.channels, dims_out.shape
        conv = _conv(norm, act)
        lines: list[Any] = [((channels, shape), nv.Conv2d_BN_ReLU[0](1, **conv))]  # line 0 is the input
        lines += [((channels, shape), nv.Conv2d_BN_ReLU[0](3, dilation=rate, **conv)) for rate in rates]
        self.branches = list(range(1, len(lines) + 1))
        lines += [
            ((dims_in.channels, "(1, 1)"), nv.AvgPool2d[0]()),  # adaptive: the global average
            ((channels, "(1, 1)"), nv.Conv2d_BN_ReLU(1, **conv)),
            # to the size of the first branch: the line's own, with no base shape
            ((channels, shape), nv.Interpolate[[-1, 1]]("bilinear", align_corners=False)),
        ]
        self.pooling = len(lines) - 1
        parts = [*self.branches, len(lines)]
        lines.append(((channels * len(parts), shape), nv.Concat[parts]()))
        lines.append(((channels, shape), nv.Conv2d_BN_ReLU(1, **conv)))
        self.project = len(lines)
        lines.append(((channels, shape), nn.Dropout(dropout)))
        self.add(lines)


class FCNHead(nv.Nerve):
    """torchvision's ``FCNHead``: a 3x3 conv -> norm -> act to ``hidden_channels`` (default: a quarter
    of the input's channels), dropout, and a 1x1 conv with bias to the declared channels (the
    logits): ``((21, 8), FCNHead["layer4"]())``. The line keeps the input's shape."""

    spatial_rank = 2

    def __init__(
        self,
        hidden_channels: int | None = None,
        *,
        dropout: float = 0.1,
        norm: Norm = nn.BatchNorm2d,
        act: Act = nn.ReLU,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.expect_links(1)
        check_shape_ranks(self, 2)
        _same_shape(self, self.input_links[0])
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        if hidden_channels is None:
            hidden_channels = dims_in.channels // 4
            if hidden_channels < 1:
                raise NerveArgumentError(
                    f"{name}: a quarter of line {self.input_links[0].index}'s {dims_in.channels} channels is none",
                    allowed="hidden_channels=N, or an input of 4 channels or more",
                )
        positive_int("hidden_channels", hidden_channels, name)
        dropout = probability("dropout", dropout, name)
        make_act(act, name)
        self.add(
            [
                ((hidden_channels, dims_out.shape), nv.Conv2d_BN_ReLU(3, **_conv(norm, act))),
                ((hidden_channels, dims_out.shape), nn.Dropout(dropout)),
                (dims_out, nv.Conv2d(1)),
            ]
        )


class DeepLabHead(nv.Nerve):
    """torchvision's ``DeepLabHead``: an :class:`ASPP` of ``channels`` (256), a 3x3 conv -> norm -> act,
    and a 1x1 conv with bias to the declared channels: ``((21, 8), DeepLabHead["layer4"]())``."""

    spatial_rank = 2

    def __init__(
        self,
        rates: Sequence[int] = (12, 24, 36),
        *,
        channels: int = 256,
        dropout: float = 0.5,
        norm: Norm = nn.BatchNorm2d,
        act: Act = nn.ReLU,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        check_shape_ranks(self, 2)
        _same_shape(self, self.input_links[0])
        positive_int("channels", channels, type(self).__name__)
        dims_out = self.target_dims[0]
        self.add(
            [
                ((channels, dims_out.shape), ASPP(rates, dropout=dropout, norm=norm, act=act)),
                ((channels, dims_out.shape), nv.Conv2d_BN_ReLU(3, **_conv(norm, act))),
                (dims_out, nv.Conv2d(1)),
            ]
        )


class LRASPPHead(nv.Nerve):
    """Lite R-ASPP (torchvision's ``LRASPPHead``) on two lines, ``LRASPPHead[["low", "high"]]()``.

    The high-level line goes through a 1x1 conv -> norm -> act to ``inter_channels``, weighed per
    channel by a sigmoid gate of its global average (a 1x1 conv without bias), then resized to the
    low-level line's size (bilinear); the result is ``low_classifier(low) + high_classifier(high)``,
    two 1x1 convs with bias to the declared channels. The line declares the low-level line's shape.
    ``cbr``, ``scale``, ``low_classifier`` and ``high_classifier`` name the sub-lines (for the weight mappings).
    """

    spatial_rank = 2

    def __init__(self, inter_channels: int = 128, *, norm: Norm = nn.BatchNorm2d, act: Act = nn.ReLU) -> None:
        super().__init__()
        name = type(self).__name__
        self.expect_links(2)
        positive_int("inter_channels", inter_channels, name)
        make_act(act, name)
        low, high = self.input_links
        for link in (low, high):
            if link.shape.rank not in (None, 2):
                raise DimsError(
                    f"{name} is 2d, but line {link.index} declares shape {link.shape!r}",
                    allowed="2d lines (a ratio, or two values)",
                )
        _same_shape(self, low)
        dims_out, shape = self.target_dims[0], high.shape
        self.add(
            [
                # lines 0 and 1 are the low- and the high-level input
                ((inter_channels, shape), nv.Conv2d_BN_ReLU[1](1, **_conv(norm, act))),
                ((high.channels, "(1, 1)"), nv.AvgPool2d[1]()),
                ((inter_channels, "(1, 1)"), nv.Conv2d(1, bias=False, act=nn.Sigmoid)),
                ((inter_channels, shape), Multiply[[2, 4]]()),
                ((inter_channels, low.shape), nv.Interpolate[[-1, 0]]("bilinear", align_corners=False)),
                (dims_out, nv.Conv2d[0](1)),
                (dims_out, nv.Conv2d[6](1)),
                (dims_out, nv.Add[[7, 8]]()),
            ]
        )
        self.cbr, self.scale, self.low_classifier, self.high_classifier = 2, 4, 7, 8


# --- the networks ----------------------------------------------------------------------------


def _upsampled(num_classes: int, tag: str) -> tuple:
    """The logits at the input's size: bilinear, as torchvision's ``F.interpolate(size=input_shape)``."""
    return ((num_classes, 1), nv.Interpolate[-1, tag]("bilinear", align_corners=False))


def _build(lines: list, aux: list | None, num_classes: int) -> nv.Network:
    """The main head's lines, then (``aux``) the auxiliary head's: ``out`` and ``aux`` are the outputs."""
    if aux is None:
        return nv.build([*lines, _upsampled(num_classes, "out")])
    return nv.build(
        [*lines, _upsampled(num_classes, "out"), *aux, _upsampled(num_classes, "aux")], outputs=["out", "aux"]
    )


def _head_lines(aux_loss: bool) -> int:
    """How many lines at the end are heads (torchvision initialises them as PyTorch does)."""
    return 4 if aux_loss else 2


def _resnet_segmentation(
    head: type[nv.Nerve], depths: tuple[int, int, int, int], num_classes: int, aux_loss: bool, keywords: dict[str, Any]
) -> nv.Network:
    if not isinstance(aux_loss, bool):
        raise NerveArgumentError(f"aux_loss={aux_loss!r} is not a bool", allowed="aux_loss=True or False")
    lines = [
        backbone_lines(Bottleneck, depths, keywords, [False, True, True]),  # layer3, layer4 at ratio 8
        ((num_classes, 8), head["layer4"]()),
    ]
    aux = [((num_classes, 8), FCNHead["layer3"]())] if aux_loss else None
    net = _build(lines, aux, num_classes)
    _init_like_torchvision(net, _head_lines(aux_loss))
    return net


def _mobilenet_segmentation(
    head: Any, ratio: int, num_classes: int, aux_loss: bool, keywords: dict[str, Any]
) -> nv.Network:
    if not isinstance(aux_loss, bool):
        raise NerveArgumentError(f"aux_loss={aux_loss!r} is not a bool", allowed="aux_loss=True or False")
    # torchvision's C2 (features[4], the first block at ratio 8) and C5 (the last conv, at ratio 16)
    features, _, _ = v3_features(_V3_LARGE, 1.0, dict(keywords), dilated=True, tags={4: "low"})
    lines = [features, ((num_classes, ratio), head)]
    aux = [((num_classes, 8), FCNHead["low"]())] if aux_loss else None
    net = _build(lines, aux, num_classes)
    if not next(net.parameters()).is_meta:  # MobileNetV3's init for the backbone; the heads keep PyTorch's
        for entry in net.lines[: len(net.lines) - _head_lines(aux_loss)]:
            if entry.name is None:
                continue
            for module in net.get_submodule(entry.name).modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out")
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
    return net


@register_model
def fcn_resnet50(num_classes: int = 21, *, aux_loss: bool = False, **block_keywords: Any) -> nv.Network:
    """FCN on a dilated ResNet-50 (torchvision's ``fcn_resnet50``): layer3 and layer4 at ratio 8,
    an ``FCNHead``, the logits resized to the input's size. Keywords go to the backbone's blocks."""
    return _resnet_segmentation(FCNHead, (3, 4, 6, 3), num_classes, aux_loss, block_keywords)


@register_model
def fcn_resnet101(num_classes: int = 21, *, aux_loss: bool = False, **block_keywords: Any) -> nv.Network:
    """FCN on a dilated ResNet-101 (torchvision's ``fcn_resnet101``)."""
    return _resnet_segmentation(FCNHead, (3, 4, 23, 3), num_classes, aux_loss, block_keywords)


@register_model
def deeplabv3_resnet50(num_classes: int = 21, *, aux_loss: bool = False, **block_keywords: Any) -> nv.Network:
    """DeepLabV3 on a dilated ResNet-50 (torchvision's ``deeplabv3_resnet50``): a ``DeepLabHead``
    (ASPP with rates 12, 24, 36) at ratio 8, the logits resized to the input's size."""
    return _resnet_segmentation(DeepLabHead, (3, 4, 6, 3), num_classes, aux_loss, block_keywords)


@register_model
def deeplabv3_resnet101(num_classes: int = 21, *, aux_loss: bool = False, **block_keywords: Any) -> nv.Network:
    """DeepLabV3 on a dilated ResNet-101 (torchvision's ``deeplabv3_resnet101``)."""
    return _resnet_segmentation(DeepLabHead, (3, 4, 23, 3), num_classes, aux_loss, block_keywords)


@register_model
def deeplabv3_mobilenet_v3_large(num_classes: int = 21, *, aux_loss: bool = False, **block_keywords: Any) -> nv.Network:
    """DeepLabV3 on a dilated MobileNetV3-Large (torchvision's ``deeplabv3_mobilenet_v3_large``):
    a ``DeepLabHead`` on the last conv (960 channels at ratio 16); the auxiliary head reads the
    first block at ratio 8 (tagged ``low``)."""
    return _mobilenet_segmentation(DeepLabHead["features"](), 16, num_classes, aux_loss, block_keywords)


@register_model
def lraspp_mobilenet_v3_large(num_classes: int = 21, **block_keywords: Any) -> nv.Network:
    """LR-ASPP on a dilated MobileNetV3-Large (torchvision's ``lraspp_mobilenet_v3_large``): an
    ``LRASPPHead`` on the first block at ratio 8 (``low``) and the last conv (``features``, ratio 16).
    torchvision's LR-ASPP has no auxiliary head."""
    head = LRASPPHead[["low", "features"]](inter_channels=128)
    return _mobilenet_segmentation(head, 8, num_classes, False, block_keywords)
