"""Attention over tokens: ``SelfAttention`` and ``CrossAttention``, on ``F.scaled_dot_product_attention``.

Both read lines of tokens ``(N, L, C)`` and keep the queries' dims; the head dim ``C / heads`` and
every projection's features are derived from the lines:

>>> import torch
>>> import neurlink.nerves as nv
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((32, 4), nv.Conv2d(4)),
...         ((32, nv.tokens(4)), nv.ToTokens()),
...         ((32, nv.tokens(4)), nv.SelfAttention(heads=4)),
...     ]
... )
>>> net(torch.randn(2, 3, 16, 16)).shape  # 16 tokens of 32 channels
torch.Size([2, 16, 32])
>>> sorted(net[3].state_dict())  # the packed projection and the output projection
['proj.bias', 'proj.weight', 'qkv.bias', 'qkv.weight']
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DimsError, NerveArgumentError
from ..interpreter import Ops
from ..nerve import Nerve
from ..nn.attention import Attention
from ._args import positive_int, probability

__all__ = ["SelfAttention", "CrossAttention"]


def _heads(heads: object, channels: int, owner: str) -> int:
    heads = positive_int("heads", heads, owner)
    if channels % heads:
        raise NerveArgumentError(
            f"{owner}: {channels} channels do not split into {heads} heads",
            allowed="a number of heads dividing the channels: "
            + ", ".join(str(h) for h in range(1, min(channels, 64) + 1) if channels % h == 0),
        )
    return heads


def tokens_and_mask(nerve: Nerve) -> None:
    """A nerve of one line of tokens and an optional padding mask selected after it (one channel)."""
    links = nerve.input_links
    if len(links) not in (1, 2):
        raise DimsError(
            f"{type(nerve).__name__} reads one line of tokens (and a mask), but {len(links)} are selected",
            allowed="one line, or [tokens, mask]",
        )
    if len(links) == 2 and links[-2].channels == 1 and links[-1].channels != 1:
        raise DimsError(
            f"{type(nerve).__name__} reads the tokens first and their padding mask last, but line"
            f" {links[-1].index} ({links[-1].channels} channels) comes after line {links[-2].index} (1 channel)",
            allowed=f"[{links[-1].index}, {links[-2].index}]: the tokens, then the mask",
        )


def _bool(name: str, value: object, owner: str) -> bool:
    if not isinstance(value, bool):
        raise NerveArgumentError(f"{owner}: {name}={value!r} is not a bool", allowed=f"{name}=True or False")
    return value


class SelfAttention(Nerve):
    """Multi-head self-attention of a line of tokens, keeping its dims: ``nv.SelfAttention(heads=12)``.

    ``qkv`` (``nn.Linear(C, 3C)``, queries, keys and values packed as ``nn.MultiheadAttention``'s
    ``in_proj_weight``), ``attend`` (:class:`neurlink.nn.Attention`) and ``proj`` (``nn.Linear(C, C)``,
    its ``out_proj``). ``dropout`` drops attention weights in training; ``causal=True`` lets each token
    attend to itself and the tokens before it. With two lines selected,
    ``nv.SelfAttention[[-1, "mask"]](heads)``, the second is a key-padding mask: an Input of
    ``torch.bool`` ``(N, L)`` declared ``((1, nv.tokens(...)), nv.Input["mask"](dtype=torch.bool))``,
    True at tokens to leave out.
    """

    keeps_rank = True
    layouts = ("tokens",)

    def __init__(self, heads: int, *, dropout: float = 0.0, causal: bool = False, bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        tokens_and_mask(self)
        link, target = self.input_links[0], self.target_dims[0]
        if not link.dims[0].same_as(target):
            raise DimsError(
                f"{name} keeps the dims of line {link.index}, {link.dims[0]!r}, but this line declares {target!r}",
                allowed=f"{link.dims[0]!r} on this line",
            )
        self._masked = len(self.input_links) == 2
        channels = target.channels
        self.qkv = nn.Linear(channels, 3 * channels, bias=_bool("bias", bias, name))
        self.attend = Attention(
            _heads(heads, channels, name), probability("dropout", dropout, name), _bool("causal", causal, name)
        )
        self.proj = nn.Linear(channels, channels, bias=bias)

    def _steps(self, ops: Ops, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        qkv = ops.module("qkv", x)
        y = ops.module("attend", qkv) if mask is None else ops.module("attend", qkv, None, mask)
        return ops.module("proj", y)


class CrossAttention(Nerve):
    """Multi-head attention of the queries of one line of tokens to the keys and values of another:
    ``nv.CrossAttention[["queries", "memory"]](heads=8)``; the line keeps the queries' dims.

    ``q`` (``nn.Linear(C, C)``), ``kv`` (``nn.Linear(C_memory, 2C)``, keys and values packed), ``attend``
    and ``proj``; ``dropout`` as :class:`SelfAttention`'s. A third line selected is a key-padding mask of
    the memory (``torch.bool``, True at tokens to leave out).
    """

    keeps_rank = True
    layouts = ("tokens",)

    def __init__(self, heads: int, *, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        if len(self.input_links) not in (2, 3):
            raise DimsError(
                f"{name} reads a line of queries and one of keys and values (and a mask), but"
                f" {len(self.input_links)} are selected",
                allowed="[queries, memory] or [queries, memory, mask]",
            )
        queries, memory = self.input_links[:2]
        target = self.target_dims[0]
        if not queries.dims[0].same_as(target):
            raise DimsError(
                f"{name} keeps the dims of its queries' line {queries.index}, {queries.dims[0]!r}, but this line"
                f" declares {target!r}",
                allowed=f"{queries.dims[0]!r} on this line",
            )
        self._masked = len(self.input_links) == 3
        channels = target.channels
        self.q = nn.Linear(channels, channels, bias=_bool("bias", bias, name))
        self.kv = nn.Linear(memory.channels, 2 * channels, bias=bias)
        self.attend = Attention(_heads(heads, channels, name), probability("dropout", dropout, name))
        self.proj = nn.Linear(channels, channels, bias=bias)

    def _steps(self, ops: Ops, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        q, kv = ops.module("q", x), ops.module("kv", memory)
        y = ops.module("attend", q, kv) if mask is None else ops.module("attend", q, kv, mask)
        return ops.module("proj", y)
