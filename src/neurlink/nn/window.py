"""Attention within (shifted) windows of a 2d grid of tokens, torchvision's Swin Transformer v1 and v2:
the step between the packed projection of a window's tokens and the output projection that
``neurlink.nerves.WindowAttention`` holds beside its ``nn.Linear`` layers.

It holds the position bias of a window's tokens (``relative_position_bias_table`` and
``relative_position_index`` in v1; ``cpb_mlp``, ``relative_coords_table``, ``relative_position_index`` and
the cosine attention's ``logit_scale`` in v2, as torchvision registers them); what depends on the grid
of the call (padding to whole windows, the shift, the mask of shifted windows) is
``neurlink._runtime.window_attention``.

>>> import torch
>>> attend = WindowAttention(heads=2, window=(4, 4))
>>> qkv = torch.randn(2 * 4, 16, 3 * 8)  # 2 samples of a 8x8 grid: 4 windows of 16 tokens each
>>> attend(qkv, (8, 8), shift=(2, 2)).shape  # the windows of a grid shifted by (2, 2)
torch.Size([8, 16, 8])
>>> sorted(attend.state_dict())
['relative_position_bias_table', 'relative_position_index']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .. import _runtime

__all__ = ["WindowAttention", "QKVLinear", "relative_position_index", "log_spaced_coords"]


def relative_position_index(window: Sequence[int]) -> torch.Tensor:
    """``(T * T,)`` int64: for each pair of a window's ``T`` tokens (query, key), the row of their offset
    ``(dh, dw)`` in a table of the ``(2 wh - 1) (2 ww - 1)`` offsets, row-major."""
    wh, ww = window
    rows, columns = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
    rows, columns = rows.flatten(), columns.flatten()
    dh = rows[:, None] - rows[None, :] + (wh - 1)
    dw = columns[:, None] - columns[None, :] + (ww - 1)
    return (dh * (2 * ww - 1) + dw).flatten()


def log_spaced_coords(window: Sequence[int]) -> torch.Tensor:
    """``(1, 2 wh - 1, 2 ww - 1, 2)``: every offset within a window, scaled to [-8, 8] per dim and mapped
    through ``sign(x) log2(1 + |x|) / 3`` (Swin v2's input to its continuous position bias)."""
    offsets = []
    for size in window:
        steps = torch.arange(-(size - 1), size, dtype=torch.float32)
        offsets.append(steps / max(size - 1, 1))
    table = torch.stack(torch.meshgrid(*offsets, indexing="ij"), dim=-1).unsqueeze(0) * 8
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / 3.0


class QKVLinear(nn.Linear):
    """``nn.Linear(C, 3C)`` packing queries, keys and values; with ``key_bias=False`` the middle third of
    its bias (the keys') is left out of the sum, as torchvision's Swin v2 zeroes it on every call (it stays
    in the ``state_dict``, and gets no gradient)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, key_bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.key_bias = key_bias
        if bias and not key_bias:
            with torch.no_grad():
                self.bias[out_features // 3 : 2 * (out_features // 3)].zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None or self.key_bias:
            return F.linear(x, self.weight, self.bias)
        third = self.out_features // 3
        bias = torch.cat([self.bias[:third], torch.zeros_like(self.bias[third : 2 * third]), self.bias[2 * third :]])
        return F.linear(x, self.weight, bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.key_bias else ", key_bias=False")


class WindowAttention(nn.Module):
    """Multi-head attention within each window: ``forward(qkv, grid)`` with ``qkv`` ``(N * windows, T, 3C)``
    the packed projections of the windows of a grid ``(H, W)`` (as ``neurlink._runtime.window_partition``
    cuts them, ``T = wh * ww``), returning ``(N * windows, T, C)``.

    ``version=1``: scaled dot products plus a learned bias per head and offset (a table of
    ``(2 wh - 1) (2 ww - 1)`` rows started at a truncated normal of std 0.02). ``version=2``: cosine
    similarities times ``exp(min(logit_scale, log 100))`` (``logit_scale`` per head, started at ``log 10``),
    plus ``16 sigmoid`` of a bias an MLP (``cpb_mlp``: 2 -> 512 -> heads) makes of the log-spaced offsets.
    ``dropout`` drops attention weights in training.
    """

    def __init__(self, heads: int, window: Sequence[int], dropout: float = 0.0, version: int = 1) -> None:
        super().__init__()
        # the shift is the nerve's, given at every call: one owner, so that changing it changes every use of it
        self.heads, self.window = heads, tuple(window)
        self.dropout, self.version = dropout, version
        wh, ww = self.window
        if version == 1:
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        else:
            self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(heads, 1, 1)))
            self.cpb_mlp = nn.Sequential(nn.Linear(2, 512), nn.ReLU(inplace=True), nn.Linear(512, heads, bias=False))
            self.register_buffer("relative_coords_table", log_spaced_coords(self.window))
        self.register_buffer("relative_position_index", relative_position_index(self.window))

    def position_bias(self) -> torch.Tensor:
        """``(1, heads, T, T)``: the bias added to the attention scores of every window."""
        tokens = self.window[0] * self.window[1]
        if self.version == 1:
            table = self.relative_position_bias_table
        else:
            table = self.cpb_mlp(self.relative_coords_table).view(-1, self.heads)
        index = cast(torch.Tensor, self.relative_position_index)
        bias = table[index].view(tokens, tokens, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        return bias if self.version == 1 else 16 * torch.sigmoid(bias)

    def forward(self, qkv: torch.Tensor, grid: Sequence[int], shift: Sequence[int] = (0, 0)) -> torch.Tensor:
        scale = None if self.version == 1 else torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        return _runtime.window_attention(
            qkv,
            self.position_bias(),
            grid,
            self.window,
            tuple(shift),
            self.heads,
            scale,
            self.dropout if self.training else 0.0,
        )

    def extra_repr(self) -> str:
        return f"heads={self.heads}, window={self.window}, dropout={self.dropout}, version={self.version}"
