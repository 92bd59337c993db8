"""Vision transformers (torchvision's ``vit_b_16`` ... ``vit_h_14``) in the grammar, line for line.

A ViT is a patchify conv, its tokens, a class token, learned positions, the encoder's blocks, a norm,
the class token's vector and the classifier:

>>> import neurlink
>>> net = neurlink.models.vit_b_32(num_classes=10)
>>> for entry in net.lines[:7] + net.lines[-3:]:
...     print(entry.index, entry.written)
0 ((3, 1), Input())
1 ((768, 32), Conv2d(32, padding='valid'))
2 ((768, tokens(32)), ToTokens())
3 ((768, tokens(32, extra=1)), ClassToken())
4 ((768, tokens(32, extra=1)), PositionEmbedding(224))
5 ((768, tokens(32, extra=1)), Dropout(p=0.0, inplace=False))
6 ((768, tokens(32, extra=1)), TransformerBlock(12, 3072, dropout=0.0, attention_dropout=0.0))
18 ((768, tokens(32, extra=1)), LayerNorm[-1, 'encoder'](1e-06))
19 ((768, '()'), ToVector(0))
20 ((10, '()'), Linear[-1, 'head']())

Any input size: the patchify conv lands on ``ceil(size / patch)`` (padding the input where the
patch does not divide it) and the learned positions are resampled bicubically to the grid of the
call; at the ``image_size`` it was built for (224, or ``vit_b_16(image_size=384)``) the network is
torchvision's, which accepts that size only.
"""

from __future__ import annotations

import math
from typing import Any, cast

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import NerveArgumentError
from ..nerves._args import positive_int, probability
from ._common import check_keywords
from ._published import torchvision_weights

__all__ = ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"]


def _vit(
    builder: str, patch: int, width: int, depth: int, heads: int, mlp: int, num_classes: int, keywords: dict
) -> nv.Network:
    check_keywords(builder, keywords, (), ("num_classes", "image_size", "dropout", "attention_dropout"))
    image_size = keywords.get("image_size", 224)
    image_size = positive_int("image_size", image_size, builder)
    dropout = probability("dropout", keywords.get("dropout", 0.0), builder)
    attention_dropout = probability("attention_dropout", keywords.get("attention_dropout", 0.0), builder)
    if image_size % patch:
        raise NerveArgumentError(
            f"{builder}: image_size={image_size} is not a multiple of the patch size {patch}",
            allowed=f"a multiple of {patch} (torchvision's condition; the network itself takes any size)",
        )
    tokens = nv.tokens(patch, extra=1)
    d = (width, tokens)
    block = nv.TransformerBlock(heads, mlp, dropout=dropout, attention_dropout=attention_dropout)
    lines: list[Any] = [
        ((3, 1), nv.Input()),
        ((width, patch), nv.Conv2d(patch, padding="valid")),  # conv_proj: patch x patch, stride patch, unpadded
        ((width, nv.tokens(patch)), nv.ToTokens()),
        (d, nv.ClassToken()),
        (d, nv.PositionEmbedding(image_size)),
        (d, nn.Dropout(dropout)),
        [(d, block)] * depth,
        (d, nv.LayerNorm[-1, "encoder"](1e-6)),
        ((width, "()"), nv.ToVector(0)),
        ((num_classes, "()"), nv.Linear[-1, "head"]()),
    ]
    net = nv.build(lines)
    _init(net)
    return net


def _init(net: nv.Network) -> None:
    """torchvision's: the patchify conv truncated normal of std ``sqrt(1 / fan_in)``, its bias zero; the
    attention's packed projection Xavier-uniform with zero biases (``nn.MultiheadAttention``'s); the MLPs
    Xavier-uniform with biases of std 1e-6; the class token and the head zero; positions std 0.02."""
    if next(net.parameters()).is_meta:
        return
    conv = cast(nn.Conv2d, net[1].conv)
    nn.init.trunc_normal_(conv.weight, std=math.sqrt(1 / (conv.in_channels * math.prod(conv.kernel_size))))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    for module in net.modules():
        if isinstance(module, nv.SelfAttention):
            nn.init.xavier_uniform_(module.qkv.weight)
            nn.init.zeros_(module.qkv.bias)
            nn.init.zeros_(module.proj.bias)
        elif isinstance(module, nv.MLP):
            for linear in (module.fc1, module.fc2):
                nn.init.xavier_uniform_(linear.weight)
                nn.init.normal_(linear.bias, std=1e-6)
    head = cast(nn.Linear, net[-1].linear)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)


@register_model(weights=torchvision_weights)
def vit_b_16(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """ViT-B/16 (torchvision's ``vit_b_16``): 16x16 patches, width 768, 12 blocks of 12 heads, MLP 3072.

    Keywords as torchvision's: ``image_size`` (224: the size its learned positions are for),
    ``dropout``, ``attention_dropout``.
    """
    return _vit("vit_b_16", 16, 768, 12, 12, 3072, num_classes, keywords)


@register_model(weights=torchvision_weights)
def vit_b_32(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """ViT-B/32 (torchvision's ``vit_b_32``): 32x32 patches, width 768, 12 blocks of 12 heads, MLP 3072."""
    return _vit("vit_b_32", 32, 768, 12, 12, 3072, num_classes, keywords)


@register_model(weights=torchvision_weights)
def vit_l_16(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """ViT-L/16 (torchvision's ``vit_l_16``): 16x16 patches, width 1024, 24 blocks of 16 heads, MLP 4096."""
    return _vit("vit_l_16", 16, 1024, 24, 16, 4096, num_classes, keywords)


@register_model(weights=torchvision_weights)
def vit_l_32(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """ViT-L/32 (torchvision's ``vit_l_32``): 32x32 patches, width 1024, 24 blocks of 16 heads, MLP 4096."""
    return _vit("vit_l_32", 32, 1024, 24, 16, 4096, num_classes, keywords)


@register_model(weights=torchvision_weights)
def vit_h_14(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """ViT-H/14 (torchvision's ``vit_h_14``): 14x14 patches, width 1280, 32 blocks of 16 heads, MLP 5120."""
    return _vit("vit_h_14", 14, 1280, 32, 16, 5120, num_classes, keywords)
