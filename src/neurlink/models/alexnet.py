"""AlexNet in the grammar, layer for layer torchvision's (the "one weird trick" variant it ships).

Its stem is an 11x11 conv of stride 4 padded by 2 (``Conv2d_ReLU(11, padding=2)`` on a line at ratio
4: PyTorch's padding and floor rounding), each of its three max pools an unpadded 3x3 window of
stride 2 (``padding="valid"``), and every size follows from the input's as in torchvision, so the two
agree at every size torchvision takes (from 63x63). Then torchvision's adaptive average pool to 6x6,
flattened by the first Linear, and its classifier on vectors:

>>> import torch
>>> import neurlink
>>> net = neurlink.alexnet(num_classes=10).eval()
>>> with torch.no_grad():
...     features = net(torch.randn(1, 3, 64, 77), outputs=["stage1", "stage2", "stage3", "features", -1])
>>> [tuple(y.shape) for y in features]
[(1, 64, 15, 18), (1, 192, 7, 8), (1, 256, 3, 3), (1, 256, 1, 1), (1, 10)]

The network returns the logits as a vector ``(N, num_classes)``, as torchvision's does. The lines
tagged ``stage1`` to ``stage3`` are the last conv at ratios 4, 8 and 16, ``features`` the last pool
(torchvision's ``features`` output). torchvision keeps PyTorch's default initialisation for AlexNet,
and so does this builder.
"""

from __future__ import annotations

from typing import Any

from .. import nerves as nv
from .._registry import register_model
from ..nerves._args import positive_int
from ._common import check_keywords
from ._published import torchvision_weights
from .mobilenet import _dropout
from .vgg import classifier_lines

__all__ = ["alexnet"]


@register_model(weights=torchvision_weights)
def alexnet(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """AlexNet (torchvision's ``alexnet``): five convs, three max pools, three Linear layers.

    ``dropout`` before each of the first two Linear layers (torchvision's 0.5). Returns ``(N, num_classes)``.
    """
    check_keywords("alexnet", keywords, (), ("num_classes", "dropout"))
    positive_int("num_classes", num_classes, "alexnet")
    lines = [
        ((3, 1), nv.Input()),
        ((64, 4), nv.Conv2d_ReLU[-1, "stage1"](11, padding=2)),  # 11x11, stride 4, padding 2
        ((64, 8), nv.MaxPool2d(3, padding="valid")),  # 3x3, stride 2, unpadded: floor
        ((192, 8), nv.Conv2d_ReLU[-1, "stage2"](5)),  # 5x5, padding 2
        ((192, 16), nv.MaxPool2d(3, padding="valid")),
        ((384, 16), nv.Conv2d_ReLU(3)),
        ((256, 16), nv.Conv2d_ReLU(3)),
        ((256, 16), nv.Conv2d_ReLU[-1, "stage3"](3)),
        ((256, 32), nv.MaxPool2d[-1, "features"](3, padding="valid")),
        classifier_lines(256, 6, num_classes, _dropout(dropout), dropout_first=True),
    ]
    return nv.build(lines)  # PyTorch's default initialisation, as torchvision's AlexNet keeps it
