"""Per-channel layers of maps ``(N, C, *spatial)``: ``LayerNorm2d`` and ``LayerScale``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerNorm2d", "LayerScale"]


class LayerNorm2d(nn.LayerNorm):
    """``nn.LayerNorm`` over the channels of every position of an ``(N, C, H, W)`` map.

    torchvision's ``LayerNorm2d`` (ConvNeXt): the map is read channels-last, normalised over
    ``C`` and given back as ``(N, C, H, W)`` (a view in channels-last memory order).

    >>> norm = LayerNorm2d(8)
    >>> x = torch.randn(2, 8, 5, 5)
    >>> norm(x).shape
    torch.Size([2, 8, 5, 5])
    >>> bool(norm(x).mean(1).abs().max() < 1e-5)
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """Multiplies each channel by a learned factor, ``weight * x``, started at ``init_value``.

    ``weight`` has shape ``(channels, 1, ..., 1)`` with one 1 per spatial dim (``rank``), so it
    broadcasts over ``(N, C, *spatial)``: torchvision's ConvNeXt ``layer_scale`` for ``rank=2``.

    >>> scale = LayerScale(4, 0.5)
    >>> scale.weight.shape
    torch.Size([4, 1, 1])
    >>> scale(torch.ones(1, 4, 2, 2)).sum().item()
    8.0
    """

    def __init__(self, channels: int, init_value: float = 1e-6, rank: int = 2) -> None:
        super().__init__()
        self.channels, self.init_value, self.rank = channels, init_value, rank  # kept: it is saved as data
        self.weight = nn.Parameter(torch.full((channels,) + (1,) * rank, float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, init_value={self.init_value}"
