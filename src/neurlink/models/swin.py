"""Swin Transformers (torchvision's ``swin_t`` ... ``swin_v2_b``) in the grammar, line for line.

A Swin Transformer is a 4x4 patchify conv, its tokens and a norm, four stages of blocks attending within
windows (every other one shifted by half a window) with a patch merging between stages (half the grid,
twice the channels), a norm, the mean of the tokens and the classifier:

>>> import neurlink
>>> net = neurlink.models.swin_t(num_classes=10)
>>> for entry in net.lines[:5] + net.lines[6:7] + net.lines[-3:]:
...     print(entry.index, entry.written)
0 ((3, 1), Input())
1 ((96, 4), Conv2d(4, padding='valid'))
2 ((96, tokens(4)), ToTokens())
3 ((96, tokens(4)), LayerNorm(1e-05))
4 ((96, tokens(4)), SwinBlock(3, 7, 0, mlp=384, drop_path=0.0, dropout=0.0, attention_dropout=0.0, version=1))
6 ((192, tokens(8)), PatchMerging(version=1))
19 ((768, tokens(32)), LayerNorm[-1, 'norm'](1e-05))
20 ((768, '()'), ToVector('mean'))
21 ((10, '()'), Linear[-1, 'head']())

Line 5, the second block, is shifted by half a window (``SwinBlock[-1, 'stage1'](3, 7, 3, ...)``); the last
block of each stage is tagged ``stage1`` ... ``stage4`` (``net(x, outputs=["stage3", "stage4"])`` for
features). Any input size: the patchify conv is unpadded (``padding="valid"``, ``floor(size / 4)``) and each block
pads its grid to whole windows, as torchvision's do, so the network is torchvision's at every size.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..nerves._args import probability
from ._common import check_keywords
from ._published import torchvision_weights

__all__ = ["swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b"]


def _swin(
    builder: str,
    width: int,
    depths: tuple[int, ...],
    heads: tuple[int, ...],
    window: int,
    version: int,
    stochastic_depth_prob: float,
    num_classes: int,
    keywords: dict,
) -> nv.Network:
    check_keywords(builder, keywords, (), ("num_classes", "dropout", "attention_dropout", "stochastic_depth_prob"))
    dropout = probability("dropout", keywords.get("dropout", 0.0), builder)
    attention_dropout = probability("attention_dropout", keywords.get("attention_dropout", 0.0), builder)
    drop_path = probability(
        "stochastic_depth_prob", keywords.get("stochastic_depth_prob", stochastic_depth_prob), builder
    )
    total, index = sum(depths), 0
    channels, ratio = width, 4
    lines: list[Any] = [
        ((3, 1), nv.Input()),
        ((width, 4), nv.Conv2d(4, padding="valid")),  # features.0: 4x4 patches (floor), then a norm of the tokens
        ((width, nv.tokens(4)), nv.ToTokens()),
        ((width, nv.tokens(4)), nv.LayerNorm(1e-5)),
    ]
    for stage, (depth, stage_heads) in enumerate(zip(depths, heads)):
        if stage:
            channels, ratio = 2 * channels, 2 * ratio
            lines.append(((channels, nv.tokens(ratio)), nv.PatchMerging(version=version)))
        for k in range(depth):
            p = drop_path * index / (total - 1)  # torchvision's linear schedule over every block
            index += 1
            block = nv.SwinBlock if k < depth - 1 else nv.SwinBlock[-1, f"stage{stage + 1}"]
            shift = 0 if k % 2 == 0 else window // 2
            nerve = block(
                stage_heads,
                window,
                shift,
                mlp=4 * channels,
                drop_path=p,
                dropout=dropout,
                attention_dropout=attention_dropout,
                version=version,
            )
            lines.append(((channels, nv.tokens(ratio)), nerve))
    lines += [
        ((channels, nv.tokens(ratio)), nv.LayerNorm[-1, "norm"](1e-5)),
        ((channels, "()"), nv.ToVector("mean")),  # torchvision's average pool of the map
        ((num_classes, "()"), nv.Linear[-1, "head"]()),
    ]
    net = nv.build(lines)
    _init(net)
    return net


def _init(net: nv.Network) -> None:
    """torchvision's: every ``nn.Linear`` (attention, MLPs, the continuous position bias, the merging
    reductions, the head) truncated normal of std 0.02 with zero biases; the rest as its modules start."""
    if next(net.parameters()).is_meta:
        return
    for module in net.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


@register_model(weights=torchvision_weights)
def swin_t(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """Swin-T (torchvision's ``swin_t``): width 96, stages of 2, 2, 6, 2 blocks of 3, 6, 12, 24 heads,
    windows of 7x7, stochastic depth up to 0.2.

    Keywords as torchvision's: ``dropout``, ``attention_dropout``, ``stochastic_depth_prob`` (the last
    block's; the others' grow linearly from 0).
    """
    return _swin("swin_t", 96, (2, 2, 6, 2), (3, 6, 12, 24), 7, 1, 0.2, num_classes, keywords)


@register_model(weights=torchvision_weights)
def swin_s(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """Swin-S (torchvision's ``swin_s``): width 96, stages of 2, 2, 18, 2 blocks, windows of 7x7,
    stochastic depth up to 0.3."""
    return _swin("swin_s", 96, (2, 2, 18, 2), (3, 6, 12, 24), 7, 1, 0.3, num_classes, keywords)


@register_model(weights=torchvision_weights)
def swin_b(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """Swin-B (torchvision's ``swin_b``): width 128, stages of 2, 2, 18, 2 blocks of 4, 8, 16, 32 heads,
    windows of 7x7, stochastic depth up to 0.5."""
    return _swin("swin_b", 128, (2, 2, 18, 2), (4, 8, 16, 32), 7, 1, 0.5, num_classes, keywords)


@register_model(weights=torchvision_weights)
def swin_v2_t(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """Swin-V2-T (torchvision's ``swin_v2_t``): as Swin-T with windows of 8x8, cosine attention with a
    continuous position bias, and post-norm blocks."""
    return _swin("swin_v2_t", 96, (2, 2, 6, 2), (3, 6, 12, 24), 8, 2, 0.2, num_classes, keywords)


@register_model(weights=torchvision_weights)
def swin_v2_s(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """Swin-V2-S (torchvision's ``swin_v2_s``): as Swin-S with Swin v2's blocks and windows of 8x8."""
    return _swin("swin_v2_s", 96, (2, 2, 18, 2), (3, 6, 12, 24), 8, 2, 0.3, num_classes, keywords)


@register_model(weights=torchvision_weights)
def swin_v2_b(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """Swin-V2-B (torchvision's ``swin_v2_b``): as Swin-B with Swin v2's blocks and windows of 8x8."""
    return _swin("swin_v2_b", 128, (2, 2, 18, 2), (4, 8, 16, 32), 8, 2, 0.5, num_classes, keywords)
