"""ResNet, ResNeXt and Wide ResNet in the grammar, layer for layer the networks of torchvision.

The blocks are public nerves: a line declares what comes out, the block reads what comes in
and derives the rest (the stride of its strided conv, whether the skip needs a projection):

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.resnet import BasicBlock, Bottleneck
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((64, 2), nv.Conv2d_BN_ReLU(7)),
...         ((64, 2), BasicBlock()),  # same dims in and out: an identity skip
...         ((256, 4), Bottleneck(groups=32, width=4 / 64)),  # a ResNeXt block, strided, projected skip
...     ]
... )
>>> net(torch.randn(1, 3, 32, 32)).shape
torch.Size([1, 256, 8, 8])
>>> sorted({key.split(".")[1] + "." + key.split(".")[2] for key in net.state_dict() if key.startswith("3.")})
['1.conv', '1.norm', '2.conv', '2.norm', '3.conv', '3.norm', '4.project']

The builders (``resnet18`` ... ``wide_resnet101_2``) tag the stem and the last block of every
stage, so ``net(x, outputs=["layer1", "layer2", "layer3", "layer4"])`` is a feature pyramid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import NerveArgumentError
from ..nerves._args import Act, Norm, make_act, positive_int
from ._common import build_initialised, check_keywords
from ._published import torchvision_weights

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "BottleNeck",
    "backbone_lines",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]


class _ResidualBlock(nv.Nerve):
    """What both blocks share: argument checks, the skip connection and the final activation."""

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    default_expansion: ClassVar[int]

    def _hidden_channels(self, width: float, groups: int, expansion: int) -> int:
        """torchvision's ``int(planes * base_width / 64) * groups`` with ``planes = out / expansion``."""
        name = type(self).__name__
        self.expect_links(1)
        positive_int("expansion", expansion, name)
        positive_int("groups", groups, name)
        if not isinstance(width, (int, float)) or isinstance(width, bool) or not width > 0:
            raise NerveArgumentError(
                f"{name}: width={width!r} is not a positive number",
                allowed="width > 0: channels per group relative to out_channels / expansion (ResNeXt 32x4d: 4 / 64)",
            )
        out_channels = self.target_dims[0].channels
        per_group = int(out_channels / expansion * width)
        if per_group < 1:
            raise NerveArgumentError(
                f"{name}: {out_channels} output channels / expansion {expansion} * width {width} leaves no hidden channel",
                allowed="a larger width or a smaller expansion",
            )
        return per_group * groups

    def _add_residual(self, body: list[Any], norm: Norm, act: Act) -> None:
        """``body`` (whose first line reads line 0, the block's input), then ``input + body``, then ``act``."""
        dims_out = self.target_dims[0]
        lines = [
            *body,
            # a 1x1 conv + norm on the input only when its dims differ (torchvision's downsample)
            (dims_out, nv.SkipConnect2d[[0, -1]](1, norm=norm)),
        ]
        final = make_act(act, type(self).__name__)  # None for act=None or nn.Identity
        if final is not None:
            lines.append((dims_out, final))
        self.add(lines)


class BasicBlock(_ResidualBlock):
    """Two ``kernel_size`` convs (each conv -> norm, the first with ``act``), a skip, then ``act``.

    ``((128, 8), BasicBlock())`` after a line at ``(64, 4)`` is torchvision's downsampling
    ``BasicBlock``: the first conv has stride 2 and the skip a strided 1x1 conv + norm.
    The hidden width is ``int(out_channels / expansion * width) * groups`` (torchvision:
    ``expansion=1, width=1, groups=1``); ``groups`` and ``dilation`` apply to both convs
    (torchvision's ``BasicBlock`` refuses a dilation above 1).
    """

    default_expansion = 1

    def __init__(
        self,
        kernel_size: int | Sequence[int] = 3,
        width: float = 1.0,
        groups: int = 1,
        norm: Norm = nn.BatchNorm2d,
        act: Act = nn.ReLU,
        expansion: int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        hidden = self._hidden_channels(width, groups, expansion)
        dims_out = self.target_dims[0]
        self._add_residual(
            [
                # line 0 is the block's input; this conv is strided when the line's ratio grows
                ((hidden, dims_out.shape), nv.Conv2d_BN_ReLU(kernel_size, **_conv(norm, act, groups, dilation))),
                (dims_out, nv.Conv2d_BN_ReLU(kernel_size, **_conv(norm, None, groups, dilation))),
            ],
            norm,
            act,
        )


class Bottleneck(_ResidualBlock):
    """1x1 conv, ``kernel_size`` conv, 1x1 conv (each -> norm, the first two with ``act``), a skip, then ``act``.

    As in torchvision (ResNet v1.5), the stride sits on the middle conv, and ``groups`` only
    there. The hidden width is ``int(out_channels / expansion * width) * groups``: ResNet-50 is
    ``width=1, groups=1``, ResNeXt-50 32x4d ``width=4 / 64, groups=32``, Wide ResNet-50-2 ``width=2``.
    ``dilation`` dilates the middle conv (its padding is derived: ``dilation`` on each side), as in
    torchvision's dilated stages (``replace_stride_with_dilation``).
    """

    default_expansion = 4

    def __init__(
        self,
        kernel_size: int | Sequence[int] = 3,
        width: float = 1.0,
        groups: int = 1,
        norm: Norm = nn.BatchNorm2d,
        act: Act = nn.ReLU,
        expansion: int = 4,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        hidden = self._hidden_channels(width, groups, expansion)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        self._add_residual(
            [
                ((hidden, dims_in.shape), nv.Conv2d_BN_ReLU(1, **_conv(norm, act))),  # line 0 is the input
                ((hidden, dims_out.shape), nv.Conv2d_BN_ReLU(kernel_size, **_conv(norm, act, groups, dilation))),
                (dims_out, nv.Conv2d_BN_ReLU(1, **_conv(norm, None))),
            ],
            norm,
            act,
        )


BottleNeck = Bottleneck  # the spelling of the original neurlink README


def _conv(norm: Norm, act: Act, groups: int = 1, dilation: int = 1) -> dict[str, Any]:
    """Keywords for ``Conv2d_BN_ReLU``, leaving out its defaults so that ``print(net)`` stays short."""
    keywords: dict = {}
    if groups != 1:
        keywords["groups"] = groups
    if dilation != 1:
        keywords["dilation"] = dilation
    if norm is not nn.BatchNorm2d:
        keywords["norm"] = norm
    if act is not nn.ReLU:
        keywords["act"] = act
    return keywords


# --- the networks ----------------------------------------------------------------------------


def _stage(
    block: type[_ResidualBlock], channels: int, ratio: int, depth: int, tag: str, keywords: dict, dilations: tuple
) -> list:
    """``depth`` block lines at ``(channels, ratio)``; the last one carries the stage's tag.

    Only the first block changes dims (stride, channels); the others keep them, so their skips are identities.
    ``dilations`` is (first block's, the others'): torchvision's first block of a dilated stage keeps
    the previous stage's dilation (``_make_layer``'s ``previous_dilation``).
    """

    def make(dilation: int, selector: Any = None) -> Any:  # a NerveDef: calling a nerve class records it
        extra = {"dilation": dilation} if dilation != 1 else {}
        nerve = block if selector is None else block[selector]
        return nerve(**extra, **keywords)

    first, rest = dilations
    lines = [((channels, ratio), make(first, None if depth > 1 else (-1, tag)))]
    lines += [((channels, ratio), make(rest))] * max(depth - 2, 0)
    if depth > 1:
        lines.append(((channels, ratio), make(rest, (-1, tag))))
    return lines


def backbone_lines(
    block: type[_ResidualBlock],
    depths: tuple[int, int, int, int],
    keywords: dict[str, Any],
    replace_stride_with_dilation: Sequence[bool] | None = None,
) -> list[Any]:
    """The lines of a ResNet up to ``layer4`` (the Input, the stem and four tagged stages).

    ``replace_stride_with_dilation`` (three bools, torchvision's keyword) keeps ``layer2``,
    ``layer3``, ``layer4`` at the previous ratio and doubles the dilation instead: ``[False, True,
    True]`` keeps ``layer3`` and ``layer4`` at ratio 8 with dilations 2 and 4 (DeepLabV3, FCN).
    """
    flags = [False, False, False] if replace_stride_with_dilation is None else replace_stride_with_dilation
    if not isinstance(flags, (list, tuple)) or len(flags) != 3 or not all(isinstance(flag, bool) for flag in flags):
        raise NerveArgumentError(
            f"replace_stride_with_dilation={replace_stride_with_dilation!r}",
            allowed="None or three bools, one for each of layer2, layer3 and layer4 (DeepLabV3: [False, True, True])",
        )
    if "dilation" in keywords and any(flags):
        raise NerveArgumentError(
            f"dilation={keywords['dilation']!r} with replace_stride_with_dilation={list(flags)}: each dilated stage"
            " sets its blocks' dilation",
            allowed="replace_stride_with_dilation alone (torchvision's keyword), or dilation without it",
        )
    expansion = keywords.get("expansion", block.default_expansion)
    positive_int("expansion", expansion, block.__name__)  # before it multiplies the channels
    c = 64 * expansion
    # the blocks' norm and act also make the stem's, as torchvision's norm_layer does
    stem = _conv(keywords.get("norm", nn.BatchNorm2d), keywords.get("act", nn.ReLU))
    stages, ratio, dilation = [], 4, 1
    for k, (depth, dilate) in enumerate(zip(depths, (False, *flags))):
        previous = dilation
        if k and dilate:
            dilation *= 2
        elif k:
            ratio *= 2
        stages.append(_stage(block, c * 2**k, ratio, depth, f"layer{k + 1}", keywords, (previous, dilation)))
    return [
        ((3, 1), nv.Input()),
        ((64, 2), nv.Conv2d_BN_ReLU[-1, "stem"](7, **stem)),  # 7x7, stride 2, padding 3
        ((64, 4), nv.MaxPool2d(3)),  # 3x3, stride 2, padding 1
        stages,
    ]


def _resnet(
    builder: str,
    block: type[_ResidualBlock],
    depths: tuple[int, int, int, int],
    num_classes: int,
    keywords: dict[str, Any],
    dilation: Sequence[bool] | None = None,
) -> nv.Network:
    check_keywords(builder, keywords, (block,), ("num_classes", "replace_stride_with_dilation"))
    features = backbone_lines(block, depths, keywords, dilation)
    channels = 8 * 64 * keywords.get("expansion", block.default_expansion)  # layer4's
    lines = [
        features,
        ((channels, "(1, 1)"), nv.AvgPool2d()),  # adaptive average pooling
        ((num_classes, "(1, 1)"), nv.Conv2d(1)),  # the classifier: torchvision's fc, as a 1x1 conv
    ]
    return build_initialised(lines, _init_like_torchvision, head_lines=1)


def _init_like_torchvision(net: nv.Network, head_lines: int = 1) -> None:
    """torchvision's ResNet init: He-normal (fan_out) convs, norms at weight 1 and bias 0.

    The last ``head_lines`` lines keep PyTorch's default init, which for a 1x1 conv is nn.Linear's
    default, what torchvision's ``fc`` gets (and what its segmentation heads get).
    """
    if next(net.parameters()).is_meta:
        return  # no values to set (and torch's init functions on meta tensors import torch._dynamo: seconds)
    skip: set[int] = set()
    for index in range(len(net.lines) - head_lines, len(net.lines)):
        skip.update(id(module) for module in net.get_submodule(str(index)).modules())
    for module in net.modules():
        if id(module) in skip:
            continue
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@register_model(weights=torchvision_weights)
def resnet18(
    num_classes: int = 1000, *, replace_stride_with_dilation: Sequence[bool] | None = None, **block_keywords: Any
) -> nv.Network:
    """ResNet-18 (torchvision's ``resnet18``): BasicBlocks 2, 2, 2, 2. Keywords go to every block;
    ``replace_stride_with_dilation`` (three bools) keeps layer2/3/4 at the previous ratio, dilated."""
    return _resnet("resnet18", BasicBlock, (2, 2, 2, 2), num_classes, block_keywords, replace_stride_with_dilation)


@register_model(weights=torchvision_weights)
def resnet34(
    num_classes: int = 1000, *, replace_stride_with_dilation: Sequence[bool] | None = None, **block_keywords: Any
) -> nv.Network:
    """ResNet-34 (torchvision's ``resnet34``): BasicBlocks 3, 4, 6, 3."""
    return _resnet("resnet34", BasicBlock, (3, 4, 6, 3), num_classes, block_keywords, replace_stride_with_dilation)


@register_model(weights=torchvision_weights)
def resnet50(
    num_classes: int = 1000, *, replace_stride_with_dilation: Sequence[bool] | None = None, **block_keywords: Any
) -> nv.Network:
    """ResNet-50 v1.5 (torchvision's ``resnet50``): Bottlenecks 3, 4, 6, 3."""
    return _resnet("resnet50", Bottleneck, (3, 4, 6, 3), num_classes, block_keywords, replace_stride_with_dilation)


@register_model(weights=torchvision_weights)
def resnet101(
    num_classes: int = 1000, *, replace_stride_with_dilation: Sequence[bool] | None = None, **block_keywords: Any
) -> nv.Network:
    """ResNet-101 v1.5 (torchvision's ``resnet101``): Bottlenecks 3, 4, 23, 3."""
    return _resnet("resnet101", Bottleneck, (3, 4, 23, 3), num_classes, block_keywords, replace_stride_with_dilation)


@register_model(weights=torchvision_weights)
def resnet152(
    num_classes: int = 1000, *, replace_stride_with_dilation: Sequence[bool] | None = None, **block_keywords: Any
) -> nv.Network:
    """ResNet-152 v1.5 (torchvision's ``resnet152``): Bottlenecks 3, 8, 36, 3."""
    return _resnet("resnet152", Bottleneck, (3, 8, 36, 3), num_classes, block_keywords, replace_stride_with_dilation)


@register_model(weights=torchvision_weights)
def resnext50_32x4d(
    num_classes: int = 1000, *, replace_stride_with_dilation: Sequence[bool] | None = None, **block_keywords: Any
) -> nv.Network:
    """ResNeXt-50 32x4d (torchvision's ``resnext50_32x4d``): 32 groups of 4 channels per 64 planes."""
    return _resnet(
        "resnext50_32x4d",
        Bottleneck,
        (3, 4, 6, 3),
        num_classes,
        {"groups": 32, "width": 4 / 64, **block_keywords},
        replace_stride_with_dilation,
    )


@register_model(weights=torchvision_weights)
def resnext101_32x8d(
    num_classes: int = 1000, *, replace_stride_with_dilation: Sequence[bool] | None = None, **block_keywords: Any
) -> nv.Network:
    """ResNeXt-101 32x8d (torchvision's ``resnext101_32x8d``): 32 groups of 8 channels per 64 planes."""
    return _resnet(
        "resnext101_32x8d",
        Bottleneck,
        (3, 4, 23, 3),
        num_classes,
        {"groups": 32, "width": 8 / 64, **block_keywords},
        replace_stride_with_dilation,
    )


@register_model(weights=torchvision_weights)
def wide_resnet50_2(
    num_classes: int = 1000, *, replace_stride_with_dilation: Sequence[bool] | None = None, **block_keywords: Any
) -> nv.Network:
    """Wide ResNet-50-2 (torchvision's ``wide_resnet50_2``): bottlenecks twice as wide inside."""
    return _resnet(
        "wide_resnet50_2",
        Bottleneck,
        (3, 4, 6, 3),
        num_classes,
        {"width": 2.0, **block_keywords},
        replace_stride_with_dilation,
    )


@register_model(weights=torchvision_weights)
def wide_resnet101_2(
    num_classes: int = 1000, *, replace_stride_with_dilation: Sequence[bool] | None = None, **block_keywords: Any
) -> nv.Network:
    """Wide ResNet-101-2 (torchvision's ``wide_resnet101_2``): bottlenecks twice as wide inside."""
    return _resnet(
        "wide_resnet101_2",
        Bottleneck,
        (3, 4, 23, 3),
        num_classes,
        {"width": 2.0, **block_keywords},
        replace_stride_with_dilation,
    )
