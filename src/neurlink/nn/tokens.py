"""Modules of token sequences ``(N, L, C)``: learned extra tokens and position embeddings.

They hold the parameters the token nerves of ``neurlink.nerves`` read, so that a network's flat
forward calls them as modules (their hooks fire, ``state_dict`` keys are theirs). The one step that
depends on the input size, resampling a learned position embedding to the grid of this call, is
``neurlink._runtime.resample_positions``.

>>> import torch
>>> cls = ClassToken(8)
>>> cls(torch.zeros(2, 5, 8)).shape
torch.Size([2, 6, 8])
>>> pos = PositionEmbedding(8, grid=(2, 2), prefix=1)
>>> pos(torch.zeros(2, 5, 8), (2, 2)).shape, pos(torch.zeros(2, 10, 8), (3, 3)).shape
(torch.Size([2, 5, 8]), torch.Size([2, 10, 8]))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .. import _runtime

__all__ = ["ClassToken", "PositionEmbedding", "SinCosPositionEmbedding"]


class ClassToken(nn.Module):
    """``count`` learned tokens put before a sequence: a class token (torchvision's ``class_token``,
    ``(1, 1, C)``, started at zeros) or register tokens."""

    def __init__(self, channels: int, count: int = 1) -> None:
        super().__init__()
        self.channels, self.count = channels, count
        self.token = nn.Parameter(torch.zeros(1, count, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)

    def extra_repr(self) -> str:
        return f"{self.channels}, count={self.count}"


class PositionEmbedding(nn.Module):
    """A learned embedding added to each token, ``weight`` of shape ``(1, L, C)``: ``prefix`` extra
    tokens, then a grid of ``grid`` tokens (row-major), as torchvision's ViT ``pos_embedding``.

    Called with the grid of this call: at the grid it was made for the weight is added as it is; at
    another, its grid part is resampled bicubically (antialiased, as timm's ``dynamic_img_size``) and
    the prefix kept. A sequence on no grid (``grid=None``) has a fixed length."""

    def __init__(self, channels: int, grid: Sequence[int] | None, prefix: int = 0, length: int | None = None) -> None:
        super().__init__()
        self.grid = None if grid is None else tuple(grid)
        self.prefix = prefix
        count = length if grid is None else prefix + _product(self.grid)
        if count is None:
            raise ValueError("a position embedding of no grid needs its length")
        self.weight = nn.Parameter(torch.empty(1, count, channels).normal_(std=0.02))

    def forward(self, x: torch.Tensor, grid: Sequence[int] | None = None) -> torch.Tensor:
        if self.grid is None or grid is None:
            return x + self.weight
        return x + _runtime.resample_positions(self.weight, grid, self.grid, self.prefix)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[-1]}, grid={self.grid}, prefix={self.prefix}"


class SinCosPositionEmbedding(nn.Module):
    """Fixed sine-cosine position embeddings added to the grid tokens (after ``prefix`` extra ones), made
    for the grid of each call (``neurlink._runtime.add_sincos_positions``); no parameters."""

    def __init__(self, prefix: int = 0, temperature: float = 10000.0) -> None:
        super().__init__()
        self.prefix, self.temperature = prefix, temperature

    def forward(self, x: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        return _runtime.add_sincos_positions(x, grid, self.prefix, self.temperature)

    def extra_repr(self) -> str:
        return f"prefix={self.prefix}, temperature={self.temperature}"


def _product(values: Sequence[int] | None) -> int:
    product = 1
    for value in values or ():
        product *= value
    return product
