"""Nerves that make, fold and pool token sequences ``(N, L, C)``, and give tokens their positions.

A line of tokens declares ``(C, nv.tokens(r, extra=k))``: the patches of a map at ratio ``r``, after
``k`` extra tokens. Changing layout is a line of its own: ``ToTokens`` (map -> tokens), ``ToMap``
(tokens -> the map of their grid) and ``ToVector`` (tokens -> one vector per sample):

>>> import torch
>>> import neurlink.nerves as nv
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((32, 8), nv.Conv2d(8)),  # 8x8 patches, stride 8
...         ((32, nv.tokens(8)), nv.ToTokens()),  # (N, 16, 32) at 32x32
...         ((32, nv.tokens(8, extra=1)), nv.ClassToken()),
...         ((32, nv.tokens(8, extra=1)), nv.PositionEmbedding(32)),  # learned, for a 32x32 base
...         ((32, "()"), nv.ToVector(0)),  # the class token
...     ]
... )
>>> net(torch.randn(2, 3, 32, 32)).shape, net(torch.randn(2, 3, 48, 40)).shape  # any size
(torch.Size([2, 32]), torch.Size([2, 32]))
"""

from __future__ import annotations

import dataclasses
import operator
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from .. import _runtime
from ..errors import DimsError, NerveArgumentError
from ..interpreter import Ops
from ..nerve import Nerve
from ..nn.tokens import ClassToken as _ClassTokenModule
from ..nn.tokens import PositionEmbedding as _PositionEmbeddingModule
from ..nn.tokens import SinCosPositionEmbedding as _SinCosModule
from ..shapes import ShapeSpec, tokens
from ._args import positive_int
from ._geometry import ratio_pairs

__all__ = [
    "ToTokens",
    "ToMap",
    "ToVector",
    "Embedding",
    "ClassToken",
    "PositionEmbedding",
    "SinCosPositionEmbedding",
]

_TOKENS = ("tokens",)


def _one_input(nerve: Nerve) -> Any:
    nerve.expect_links(1)
    return nerve.input_links[0]


def _same_channels(nerve: Nerve, link: Any) -> None:
    given, declared = link.channels, nerve.target_dims[0].channels
    if given != declared:
        raise DimsError(
            f"{type(nerve).__name__} keeps the channels, but the line turns {given} into {declared}",
            allowed=f"{given} channels on this line",
        )


def _grid_rank(nerve: Nerve, link: Any, shape: ShapeSpec) -> int:
    rank = link.rank if link.rank is not None else shape.rank
    if rank is None:
        raise DimsError(
            f"{type(nerve).__name__} cannot tell how many dims line {link.index}'s grid has",
            allowed="a line whose nerve fixes its rank (a conv), or a ratio written with one value per dim",
        )
    return rank


def _ratio_value(ratio: Fraction) -> int | float:
    """A ratio as a user writes it in a line: ``8``, ``0.5``."""
    return ratio.numerator if ratio.denominator == 1 else float(ratio)


def _token_text(shape: ShapeSpec, extra: int) -> str:
    """The declaration of tokens on the grid of ``shape`` (a map's ratio, or tokens of a grid), ``extra`` first."""
    ratios = shape.ratios or ()
    return tokens(ratios[0] if shape.broadcast else tuple(ratios), extra=extra)


class ToTokens(Nerve):
    """A map ``(N, C, *grid)`` as the sequence of its positions ``(N, L, C)``, row-major
    (``x.flatten(2).transpose(1, 2)``, torchvision's ViT after ``conv_proj``).

    The line declares ``(C, nv.tokens(r))`` with ``r`` the map's ratio (a map of an absolute shape
    makes ``nv.tokens(length=prod(shape))``)."""

    keeps_rank = True
    layouts = ("map",)

    def __init__(self) -> None:
        super().__init__()
        link = _one_input(self)
        _same_channels(self, link)
        source, target = link.shape, self.target_dims[0].shape
        if source.is_absolute:
            rank = _grid_rank(self, link, source)
            length = 1
            for size in source.absolute_for(rank):
                length *= size
            expected = ShapeSpec(tokens(length=length))
        else:
            expected = ShapeSpec(_token_text(source, 0))
        if not target.is_tokens or not target.same_as(expected, link.rank):
            raise DimsError(
                f"ToTokens makes the tokens of line {link.index}'s grid, {expected!r}, but the line declares"
                f" {target!r}",
                allowed=f"({link.channels}, {expected!r}); extra tokens come from a line of their own (nv.ClassToken)",
            )

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        return ops.function(torch.transpose, ops.function(torch.flatten, x, 2), 1, 2)


class ToMap(Nerve):
    """Tokens folded back onto the grid they came from, a map ``(N, C, *grid)``; the extra tokens (a
    class token) are left out. The line declares ``(C, r)`` with ``r`` the tokens' grid ratio."""

    keeps_rank = True
    layouts = _TOKENS

    def __init__(self) -> None:
        super().__init__()
        link = _one_input(self)
        _same_channels(self, link)
        source, target = link.shape, self.target_dims[0].shape
        if source.ratios is None:
            raise DimsError(
                f"ToMap folds tokens onto their grid, but line {link.index}'s {source!r} lies on none",
                allowed="tokens of a grid, nv.tokens(r), made from a map by nv.ToTokens",
            )
        # the grid's rank where a line fixes it; otherwise one ratio stands for every dim of the base, at run time
        rank = link.rank if link.rank is not None else target.rank or source.rank or 1
        if target.is_tokens or target.ratios is None or target.ratios_for(rank) != source.ratios_for(rank):
            grid = _ratio_value(source.ratios[0]) if source.broadcast else tuple(map(_ratio_value, source.ratios))
            raise DimsError(
                f"ToMap lands on the grid the tokens of line {link.index} lie on, ratio {grid},"
                f" but the line declares {target!r}",
                allowed=f"({link.channels}, {grid!r}); resample the map on a line of its own",
            )
        self._ratios = ratio_pairs(source, rank)
        self._extra = source.extra

    def _steps(self, ops: Ops, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        return ops.function(_runtime.tokens_to_map, x, base_shape, self._ratios, self._extra)


class ToVector(Nerve):
    """One vector per sample from a sequence: ``ToVector(0)`` takes token 0 (a class token, torchvision's
    ViT), ``ToVector("mean")`` averages the grid's tokens, leaving the extra ones out (timm's
    ``global_pool="avg"``; Swin's average pool). The line declares ``(C, "()")``. With a padding mask
    selected too, ``nv.ToVector[[-1, "mask"]]("mean")`` averages the tokens the mask keeps (False)."""

    live_attributes = frozenset(
        {"token"}
    )  # read by its steps on every trace: may be set after the build (Nerve.__setattr__)

    layouts = _TOKENS

    def __init__(self, token: int | str = 0) -> None:
        super().__init__()
        if len(self.input_links) == 2 and token != "mean":
            raise NerveArgumentError(
                "ToVector: a padding mask is selected, which only the mean uses",
                allowed='ToVector[[-1, "mask"]]("mean")',
            )
        self._masked = len(self.input_links) == 2
        link = self.input_links[0] if self._masked else _one_input(self)
        _same_channels(self, link)
        if not self.target_dims[0].shape.is_vector:
            raise DimsError(
                f"ToVector makes vectors (N, C), but the line declares {self.target_dims[0].shape!r}",
                allowed=f'({link.channels}, "()")',
            )
        if token != "mean" and (not isinstance(token, int) or isinstance(token, bool)):
            raise NerveArgumentError(f"ToVector: token={token!r}", allowed="a token index (0: the first) or 'mean'")
        length = link.shape.length
        extra = link.shape.extra
        if isinstance(token, int) and length is None and not 0 <= token < extra:
            which = f"its {extra} extra token(s), 0..{extra - 1}" if extra else "no extra token"
            raise NerveArgumentError(
                f"ToVector({token}) takes one token, but line {link.index}'s {link.shape!r} has {which}: its other"
                " tokens are patches, and which patch is at an index depends on the input's size",
                allowed="a ClassToken line before (then ToVector(0) is the class token), or ToVector('mean')",
            )
        if isinstance(token, int) and length is not None and not -length <= token < length:
            raise NerveArgumentError(
                f"ToVector: token {token} is not one of line {link.index}'s {length} tokens",
                allowed=f"an index in {-length}..{length - 1}, or 'mean'",
            )
        self.token: int | str = token
        self._extra = link.shape.extra

    def _steps(self, ops: Ops, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            return ops.function(_runtime.masked_mean, x, mask)
        if self.token == "mean":
            if self._extra:
                x = ops.function(operator.getitem, x, (slice(None), slice(self._extra, None)))
            return ops.function(torch.mean, x, 1)
        return ops.function(operator.getitem, x, (slice(None), self.token))


class Embedding(Nerve):
    """Token ids ``(N, L)`` as tokens ``(N, L, C)``: ``nn.Embedding(num_embeddings, C)`` (``embedding``),
    ``padding_idx`` as in torch. It reads an Input of ids, ``((1, nv.tokens(1)),
    nv.Input(dtype=torch.long))``, and the line declares the same tokens with ``C`` channels."""

    keeps_rank = True
    layouts = _TOKENS

    def __init__(self, num_embeddings: int, *, padding_idx: int | None = None) -> None:
        super().__init__()
        link = _one_input(self)
        if link.channels != 1:
            raise DimsError(
                f"Embedding reads token ids (N, L), but line {link.index} declares {link.channels} channels",
                allowed="an Input of ids ((1, nv.tokens(1)), nv.Input(dtype=torch.long))",
            )
        target = self.target_dims[0].shape
        if not target.same_as(link.shape, link.rank):
            raise DimsError(
                f"Embedding makes a token of each id of line {link.index}, {link.shape!r}, but the line declares"
                f" {target!r}",
                allowed=f"({self.target_dims[0].channels}, {link.shape!r})",
            )
        num_embeddings = positive_int("num_embeddings", num_embeddings, "Embedding")
        if padding_idx is not None and (
            not isinstance(padding_idx, int) or not -num_embeddings <= padding_idx < num_embeddings
        ):
            raise NerveArgumentError(
                f"Embedding: padding_idx={padding_idx!r} is not one of the {num_embeddings} ids",
                allowed=f"None or an int in {-num_embeddings}..{num_embeddings - 1}",
            )
        self.embedding = nn.Embedding(num_embeddings, self.target_dims[0].channels, padding_idx=padding_idx)

    def _steps(self, ops: Ops, ids: torch.Tensor) -> torch.Tensor:
        return ops.module("embedding", ids)


class ClassToken(Nerve):
    """``count`` learned tokens put before the sequence (a class token; register tokens): the line
    declares the tokens of the line it reads with ``count`` more extra ones. The parameter is
    ``cls.token``, ``(1, count, C)``, started at zeros as torchvision's ``class_token``."""

    keeps_rank = True
    layouts = _TOKENS

    def __init__(self, count: int = 1) -> None:
        super().__init__()
        link = _one_input(self)
        _same_channels(self, link)
        count = positive_int("count", count, "ClassToken")
        source, target = link.shape, self.target_dims[0].shape
        if source.length is not None:
            expected = ShapeSpec(tokens(length=source.length + count))
        else:
            expected = ShapeSpec(_token_text(source, source.extra + count))
        if not target.same_as(expected, link.rank):
            raise DimsError(
                f"ClassToken puts {count} token(s) before line {link.index}'s {source!r}, which makes {expected!r},"
                f" but the line declares {target!r}",
                allowed=f"({link.channels}, {expected!r})",
            )
        self.cls = _ClassTokenModule(link.channels, count)

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        return ops.module("cls", x)


def _keeps_tokens(nerve: Nerve) -> Any:
    link = _one_input(nerve)
    if not link.dims[0].same_as(nerve.target_dims[0]):
        raise DimsError(
            f"{type(nerve).__name__} keeps the dims of its input line {link.index}, {link.dims[0]!r},"
            f" but this line declares {nerve.target_dims[0]!r}",
            allowed=f"{link.dims[0]!r} on this line",
        )
    return link


class PositionEmbedding(Nerve):
    """A learned position embedding added to every token (torchvision's ViT ``pos_embedding``):
    ``nv.PositionEmbedding(224)`` for tokens of a grid, made for a base of size 224 (an int, or one
    size per dim). At another input size its grid part is resampled bicubically to the grid of the
    call (timm's ``dynamic_img_size``); at the size it was built for it is added unchanged. The extra
    tokens have positions of their own. Tokens on no grid (``nv.tokens(length=n)``) take
    ``nv.PositionEmbedding()``. The parameter is ``embedding.weight``, ``(1, L, C)``, drawn with
    std 0.02."""

    keeps_rank = True
    layouts = _TOKENS

    def __init__(self, base_size: int | tuple[int, ...] | None = None) -> None:
        super().__init__()
        link = _keeps_tokens(self)
        shape = link.shape
        self._ratios = None
        if shape.ratios is None:
            if base_size is not None:
                raise NerveArgumentError(
                    f"PositionEmbedding: line {link.index}'s {shape!r} lies on no grid, so no base size applies",
                    allowed="nv.PositionEmbedding() for a sequence of a fixed length",
                )
            self.embedding = _PositionEmbeddingModule(link.channels, None, length=shape.length)
            return
        if link.rank is None and shape.rank is None and isinstance(base_size, tuple):
            link = dataclasses.replace(link, rank=len(base_size))  # the base size says the grid's rank
        rank = _grid_rank(self, link, shape)
        if base_size is None:
            raise NerveArgumentError(
                "PositionEmbedding: the size of the base it is built for is missing",
                allowed="nv.PositionEmbedding(224) (the input size the learned positions are for; at other"
                " sizes they are resampled)",
            )
        sizes = (base_size,) * rank if isinstance(base_size, int) and not isinstance(base_size, bool) else base_size
        if not isinstance(sizes, tuple) or len(sizes) != rank:
            raise NerveArgumentError(
                f"PositionEmbedding: base_size={base_size!r} is not an int or a tuple of {rank}",
                allowed=f"an int or a tuple of {rank} positive ints",
            )
        for size in sizes:
            positive_int("base_size", size, "PositionEmbedding")
        self.base_size = tuple(sizes)
        self._ratios = ratio_pairs(shape, rank)
        if rank == 1:  # a sequence's positions are sliced from a table of the longest: dynamic_shapes' bound
            ratio = shape.ratios_for(1)[0]
            self.max_base_size = (int(shape.grid(self.base_size)[0] * ratio),)
        if rank > 1:  # the branch "the built grid or another" is one torch's symbolic sizes cannot follow
            self.exports_at_one_size = (
                "adds its positions unchanged at the grid it was built for and resamples them at others"
            )
        self.embedding = _PositionEmbeddingModule(link.channels, shape.grid(self.base_size), prefix=shape.extra)

    def _steps(self, ops: Ops, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        if self._ratios is None:
            return ops.module("embedding", x)
        return ops.module("embedding", x, ops.function(_runtime.grid_size, base_shape, self._ratios))


class SinCosPositionEmbedding(Nerve):
    """Fixed sine-cosine position embeddings added to the grid's tokens, made for the grid of each
    call (no parameters; MAE's and timm's fixed embeddings): for each grid dim in order, ``C / (2 rank)``
    sines then as many cosines of the position at frequencies ``temperature ** (-i / F)``."""

    keeps_rank = True
    layouts = _TOKENS

    def __init__(self, temperature: float = 10000.0) -> None:
        super().__init__()
        link = _keeps_tokens(self)
        if link.shape.ratios is None:
            raise DimsError(
                f"SinCosPositionEmbedding embeds positions on a grid, but line {link.index}'s {link.shape!r} has none",
                allowed="tokens of a grid, nv.tokens(r)",
            )
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not temperature > 0:
            raise NerveArgumentError(
                f"SinCosPositionEmbedding: temperature={temperature!r} is not a positive number",
                allowed="temperature > 0 (10000 in MAE)",
            )
        rank = link.rank if link.rank is not None else link.shape.rank or 1  # one ratio: every dim, at run time
        self._ratios = ratio_pairs(link.shape, rank)
        self.embedding = _SinCosModule(link.shape.extra, float(temperature))

    def _steps(self, ops: Ops, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        return ops.module("embedding", x, ops.function(_runtime.grid_size, base_shape, self._ratios))
