"""A 1x1 conv on 1x1 maps, the classifier of a pooled head, computed as the Linear layer it is.

The zoo's heads end at ``(num_classes, "(1, 1)")``: a 1x1 conv on a ``(N, C, 1, 1)`` map, which is
torchvision's ``nn.Linear`` classifier. On CPU torch runs such a conv through its slow conv path,
several times slower than the matrix product (forward and backward), so this ``nn.Conv2d`` (same
weights, state_dict keys and ``isinstance``) computes ``F.linear`` on 1x1 maps, reading
``self.weight`` in its own ``forward`` so that hooks, parametrizations and pruning apply.

>>> import torch
>>> head = Conv2dOnPoints(8, 3)
>>> x = torch.randn(2, 8, 1, 1)
>>> torch.testing.assert_close(head(x), torch.nn.functional.conv2d(x, head.weight, head.bias))
>>> head(torch.randn(2, 8, 4, 4)).shape  # any other size: an ordinary 1x1 conv
torch.Size([2, 3, 4, 4])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .. import _runtime

__all__ = ["Conv2dOnPoints"]


class Conv2dOnPoints(nn.Conv2d):
    """``nn.Conv2d(in_channels, out_channels, 1)``, computed as ``F.linear`` on 1x1 maps."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True, **factory: Any) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _runtime.conv_on_points(x, self.weight, self.bias)
