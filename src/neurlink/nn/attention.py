"""Scaled dot-product attention over heads, the step between a projection to queries, keys and values
and the output projection (``neurlink.nerves.SelfAttention`` and ``CrossAttention`` hold it beside
their ``nn.Linear`` projections).

It calls ``F.scaled_dot_product_attention`` (fused kernels where torch has them), with attention
dropout in training mode only, as ``nn.MultiheadAttention`` drops attention weights.

>>> import torch
>>> attend = Attention(heads=2)
>>> qkv = torch.randn(3, 5, 3 * 8)  # (N, L, 3C): queries, keys and values of 2 heads of 4
>>> attend(qkv).shape
torch.Size([3, 5, 8])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention"]


class Attention(nn.Module):
    """Multi-head attention of packed inputs: ``forward(qkv)`` with ``qkv`` ``(N, L, 3C)`` (queries, keys,
    values, each ``heads`` heads of ``C / heads``), or ``forward(q, kv)`` with ``q`` ``(N, L, C)`` and
    ``kv`` ``(N, S, 2C)``; returns ``(N, L, C)``.

    ``mask``: a ``(N, S)`` bool tensor, True at keys to leave out (``key_padding_mask``'s meaning in
    ``nn.MultiheadAttention``). ``causal``: each query attends to keys at its position and before.
    """

    def __init__(self, heads: int, dropout: float = 0.0, causal: bool = False) -> None:
        super().__init__()
        self.heads, self.dropout, self.causal = heads, dropout, causal

    def forward(
        self, qkv: torch.Tensor, kv: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if kv is None:  # (N, L, 3, heads, D) -> three (N, heads, L, D)
            q, k, v = qkv.unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
        else:
            q = qkv.unflatten(-1, (self.heads, -1)).transpose(1, 2)
            k, v = kv.unflatten(-1, (2, self.heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
        attn_mask = None if mask is None else ~mask[:, None, None, :]
        causal = self.causal
        if causal and attn_mask is not None:  # SDPA takes one or the other: the causal mask joins the padding mask
            attn_mask = attn_mask & torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
            causal = False
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0, is_causal=causal
        )
        return y.transpose(1, 2).flatten(2)

    def extra_repr(self) -> str:
        return f"heads={self.heads}, dropout={self.dropout}, causal={self.causal}"
