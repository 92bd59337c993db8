"""VGG 11, 13, 16 and 19, with and without BatchNorm, in the grammar: the networks of torchvision.

Five stages of 3x3 convs (padded by 1, with a bias even before a norm, as torchvision's), each ending
in a 2x2 max pool of stride 2, which rounds odd sizes down (``padding="valid"``: PyTorch's floor, where
the grammar's default would pad to ``ceil(n / 2)``); then torchvision's adaptive average pool to 7x7,
flattened by the first Linear, and its classifier of three Linear layers on vectors:

>>> import torch
>>> import neurlink
>>> net = neurlink.vgg11(num_classes=10).eval()
>>> with torch.no_grad():
...     pyramid = net(torch.randn(1, 3, 45, 33), outputs=["stage1", "stage3", "stage5", "features", -1])
>>> [tuple(y.shape) for y in pyramid]  # 45 -> 22 -> 11 -> 5 -> 2 -> 1, floor at every pool
[(1, 64, 45, 33), (1, 256, 11, 8), (1, 512, 2, 2), (1, 512, 1, 1), (1, 10)]

The network returns the logits as a vector ``(N, num_classes)``, as torchvision's does (its Linear
classifier reads the flattened ``(512, "(7, 7)")`` line). The builders tag the last conv of each
stage (``stage1`` to ``stage5``, at ratios 1 to 16) and the last pool (``features``, torchvision's
``features`` output), and initialise as torchvision does.
"""

from __future__ import annotations

import functools
from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..nerves._args import positive_int
from ._common import build_initialised, check_keywords, init_weights, kaiming_fan_out
from ._published import torchvision_weights
from .mobilenet import _dropout

__all__ = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "classifier_lines"]

_WIDTHS = (64, 128, 256, 512, 512)
# convs per stage, by depth: torchvision's cfgs A, B, D and E
_DEPTHS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def classifier_lines(channels: int, size: int, num_classes: int, dropout: float, *, dropout_first: bool) -> list[Any]:
    """AlexNet's and VGG's head: the adaptive pool to ``size`` x ``size``, then Linear 4096, ReLU, Linear
    4096, ReLU, Linear ``num_classes``, with a dropout before each of the first two Linear layers
    (AlexNet) or after each of their ReLUs (VGG). The first Linear flattens the pooled line."""
    pooled = (channels, f"({size}, {size})")
    vector = (4096, "()")
    drop = nn.Dropout(dropout)
    hidden = [(vector, nv.Linear()), (vector, nn.ReLU())]
    if dropout_first:
        lines = [(pooled, nv.AvgPool2d()), (pooled, drop), *hidden, (vector, drop), *hidden]
    else:
        lines = [(pooled, nv.AvgPool2d()), *hidden, (vector, drop), *hidden, (vector, drop)]
    return [*lines, ((num_classes, "()"), nv.Linear())]


def _vgg(
    builder: str, depth: int, norm: bool, num_classes: int, dropout: float, keywords: dict[str, Any]
) -> nv.Network:
    check_keywords(builder, keywords, (), ("num_classes", "dropout"))
    positive_int("num_classes", num_classes, builder)
    dropout = _dropout(dropout)
    conv = nv.Conv2d_BN_ReLU if norm else nv.Conv2d_ReLU
    bias: dict[str, Any] = {"bias": True} if norm else {}  # torchvision's convs keep their bias before a norm
    lines: list[Any] = [((3, 1), nv.Input())]
    ratio = 1
    for stage, (width, convs) in enumerate(zip(_WIDTHS, _DEPTHS[depth]), start=1):
        lines += [((width, ratio), conv(3, **bias))] * (convs - 1)
        lines.append(((width, ratio), conv[-1, f"stage{stage}"](3, **bias)))
        ratio *= 2
        pool = nv.MaxPool2d[-1, "features"] if stage == len(_WIDTHS) else nv.MaxPool2d
        lines.append(((width, ratio), pool(2, padding="valid")))  # torchvision's MaxPool2d(2, 2): floor
    head = classifier_lines(_WIDTHS[-1], 7, num_classes, dropout, dropout_first=False)
    return build_initialised([*lines, *head], functools.partial(_init, head_lines=len(head)), head_lines=len(head))


def _init(net: nv.Network, head_lines: int) -> None:
    """torchvision's VGG init: convs He-normal (fan_out), the Linear layers normal(0, 0.01), biases zero,
    norms at weight 1 and bias 0."""
    init_weights(net, head_lines, kaiming_fan_out, functools.partial(nn.init.normal_, mean=0.0, std=0.01))


@register_model(weights=torchvision_weights)
def vgg11(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """VGG-11 (torchvision's ``vgg11``, configuration A): 8 convs, 3 Linear layers.

    ``dropout`` after the first two Linear layers' ReLUs (torchvision's 0.5). Returns ``(N, num_classes)``.
    """
    return _vgg("vgg11", 11, False, num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def vgg11_bn(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """VGG-11 with BatchNorm after every conv (torchvision's ``vgg11_bn``)."""
    return _vgg("vgg11_bn", 11, True, num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def vgg13(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """VGG-13 (torchvision's ``vgg13``, configuration B): 10 convs."""
    return _vgg("vgg13", 13, False, num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def vgg13_bn(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """VGG-13 with BatchNorm (torchvision's ``vgg13_bn``)."""
    return _vgg("vgg13_bn", 13, True, num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def vgg16(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """VGG-16 (torchvision's ``vgg16``, configuration D): 13 convs."""
    return _vgg("vgg16", 16, False, num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def vgg16_bn(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """VGG-16 with BatchNorm (torchvision's ``vgg16_bn``)."""
    return _vgg("vgg16_bn", 16, True, num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def vgg19(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """VGG-19 (torchvision's ``vgg19``, configuration E): 16 convs."""
    return _vgg("vgg19", 19, False, num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def vgg19_bn(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """VGG-19 with BatchNorm (torchvision's ``vgg19_bn``)."""
    return _vgg("vgg19_bn", 19, True, num_classes, dropout, keywords)
