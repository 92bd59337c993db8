"""U-Net as segmentation_models_pytorch (smp 0.6.0) builds it, with the decoder written in the grammar.

Each decoder line selects the previous decoder line and an encoder line by tag; the block resizes
the first to the size of the second (``Interpolate[[x, like]]``), concatenates them and applies two
3x3 conv -> norm -> ReLU. The last block has no skip and resizes to its declared ratio. Every
line lands on ``ceil(size / ratio)``, so any input size works:

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.unet import UnetDecoderBlock
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((8, 2), nv.Conv2d_BN_ReLU[-1, "c2"](3)),
...         ((16, 4), nv.Conv2d_BN_ReLU(3)),
...         ((8, 2), UnetDecoderBlock[[-1, "c2"]]()),  # 16 channels from ratio 4 resized to c2's size, + 8
...         ((4, 1), UnetDecoderBlock()),  # no skip: resized to ratio 1
...         ((1, 1), nv.Conv2d(3)),
...     ]
... )
>>> net(torch.randn(1, 3, 37, 30)).shape
torch.Size([1, 1, 37, 30])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import DimsError, NerveArgumentError
from ..nerves._args import Act, Norm, check_shape_ranks, make_act, positive_int
from ._common import check_keywords
from .resnet import BasicBlock, Bottleneck, _conv, _init_like_torchvision, _ResidualBlock, backbone_lines

__all__ = ["UnetDecoderBlock", "unet_resnet18", "unet_resnet34", "unet_resnet50"]

_MODES = ("nearest", "bilinear", "bicubic", "area", "nearest-exact")  # smp's decoder_interpolation


class UnetDecoderBlock(nv.Nerve):
    """smp's ``UnetDecoderBlock`` (without attention, smp's default): ``UnetDecoderBlock[[x, skip]]()``.

    ``x`` is resized (``mode``, smp's default ``"nearest"``) to the size of ``skip``, a line at the
    declared shape, and concatenated with it (``x`` first); with one line selected it is resized to the
    declared shape. Then two 3x3 conv -> norm -> act to the declared channels (a conv bias only
    without a norm, as smp), tagged ``conv1`` and ``conv2`` (smp's names, read by the weight mapping).
    """

    spatial_rank = 2

    def __init__(self, mode: str = "nearest", *, norm: Norm = nn.BatchNorm2d, act: Act = nn.ReLU) -> None:
        super().__init__()
        name = type(self).__name__
        if len(self.input_links) not in (1, 2):
            raise DimsError(
                f"{name} reads the previous line and a skip, but the selector gives {len(self.input_links)} lines",
                allowed="UnetDecoderBlock[[x, skip]]() or one line, UnetDecoderBlock[x]()",
            )
        self.expect_links()
        check_shape_ranks(self, 2)
        if mode not in _MODES:
            raise NerveArgumentError(f"{name}: mode={mode!r}", allowed=", ".join(map(repr, _MODES)))
        make_act(act, name)
        dims_out = self.target_dims[0]
        x, shape = self.input_links[0], dims_out.shape
        lines: list[Any] = []
        channels = x.channels
        if len(self.input_links) == 2:
            skip = self.input_links[1]
            if not skip.shape.same_as(shape):
                raise DimsError(
                    f"{name} resizes line {x.index} to the size of its skip, line {skip.index} at {skip.shape!r},"
                    f" but this line declares {shape!r}",
                    allowed=f"shape {skip.shape!r} on this line, or a skip at the declared shape",
                )
            lines.append(((x.channels, shape), nv.Interpolate[[0, 1]](mode)))  # lines 0 and 1 are the inputs
            channels += skip.channels
            lines.append(((channels, shape), nv.Concat[[-1, 1]]()))
        elif not x.shape.same_as(shape):
            lines.append(((x.channels, shape), nv.Interpolate[0](mode)))
        conv = _conv(norm, act)
        lines.append((dims_out, nv.Conv2d_BN_ReLU[-1, "conv1"](3, **conv)))  # tagged with smp's names
        lines.append((dims_out, nv.Conv2d_BN_ReLU[-1, "conv2"](3, **conv)))
        self.add(lines)


# --- the networks ----------------------------------------------------------------------------

# smp's skips, from the deepest up. The builders' five decoder lines (``decoder1`` ... ``decoder5``,
# ``decoder_channels`` wide, resizing with ``decoder_interpolation``) read them; a 3x3 conv with
# bias (smp's segmentation head) makes the logits at ratio 1. Other keywords go to the encoder's blocks.
_SKIPS = ("layer3", "layer2", "layer1", "stem", None)
_RATIOS = (16, 8, 4, 2, 1)


def _unet(
    builder: str,
    block: type[_ResidualBlock],
    depths: tuple[int, int, int, int],
    num_classes: int,
    decoder_channels: Sequence[int],
    decoder_interpolation: str,
    keywords: dict[str, Any],
) -> nv.Network:
    # smp's own keywords (classes, encoder_weights, in_channels) named at the builder, not in a block
    check_keywords(builder, keywords, (block,), ("num_classes", "decoder_channels", "decoder_interpolation"))
    positive_int("num_classes", num_classes, builder)
    channels = tuple(decoder_channels) if isinstance(decoder_channels, (tuple, list)) else None
    if channels is None or len(channels) != len(_SKIPS):
        raise NerveArgumentError(
            f"decoder_channels={decoder_channels!r}",
            allowed=f"{len(_SKIPS)} channel counts, one per decoder block (smp: (256, 128, 64, 32, 16))",
        )
    decoder = []
    for k, (width, ratio, skip) in enumerate(zip(channels, _RATIOS, _SKIPS)):
        selector = [-1, skip] if skip is not None else -1
        block_line = UnetDecoderBlock[selector, f"decoder{k + 1}"](decoder_interpolation)
        decoder.append(((positive_int("decoder_channels", width, "unet"), ratio), block_line))
    net = nv.build(
        [
            backbone_lines(block, depths, keywords),  # smp's encoder: torchvision's ResNet up to layer4
            decoder,
            ((num_classes, 1), nv.Conv2d(3)),  # smp's segmentation head: a 3x3 conv with bias
        ]
    )
    _init_like_smp(net, len(decoder) + 1)
    return net


def _init_like_smp(net: nv.Network, head_lines: int) -> None:
    """The encoder as torchvision's ResNet; the decoder's convs He-uniform (fan_in), the head's
    Xavier-uniform, their biases 0 (smp's ``initialize_decoder`` and ``initialize_head``)."""
    _init_like_torchvision(net, head_lines)
    if next(net.parameters()).is_meta:
        return
    last = len(net.lines) - 1
    for index in range(last - head_lines + 1, last + 1):
        for module in net.get_submodule(str(index)).modules():
            if isinstance(module, nn.Conv2d):
                if index == last:
                    nn.init.xavier_uniform_(module.weight)
                else:
                    nn.init.kaiming_uniform_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)


@register_model
def unet_resnet18(
    num_classes: int = 1,
    *,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    decoder_interpolation: str = "nearest",
    **block_keywords: Any,
) -> nv.Network:
    """U-Net on a ResNet-18 encoder (smp's ``Unet("resnet18", encoder_weights=None, classes=num_classes)``)."""
    return _unet(
        "unet_resnet18", BasicBlock, (2, 2, 2, 2), num_classes, decoder_channels, decoder_interpolation, block_keywords
    )


@register_model
def unet_resnet34(
    num_classes: int = 1,
    *,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    decoder_interpolation: str = "nearest",
    **block_keywords: Any,
) -> nv.Network:
    """U-Net on a ResNet-34 encoder (smp's ``Unet("resnet34", encoder_weights=None, classes=num_classes)``)."""
    return _unet(
        "unet_resnet34", BasicBlock, (3, 4, 6, 3), num_classes, decoder_channels, decoder_interpolation, block_keywords
    )


@register_model
def unet_resnet50(
    num_classes: int = 1,
    *,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    decoder_interpolation: str = "nearest",
    **block_keywords: Any,
) -> nv.Network:
    """U-Net on a ResNet-50 encoder (smp's ``Unet("resnet50", encoder_weights=None, classes=num_classes)``)."""
    return _unet(
        "unet_resnet50", Bottleneck, (3, 4, 6, 3), num_classes, decoder_channels, decoder_interpolation, block_keywords
    )
