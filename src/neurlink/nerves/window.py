"""Swin Transformer's nerves: attention within shifted windows of a 2d grid of tokens, patch merging
between stages, and the block of both (torchvision's ``swin_t`` ... ``swin_v2_b``).

They read lines of tokens of a 2d grid, ``(C, nv.tokens(r))``, and take the grid of each call from the
base shape, so a network of them runs on any input size (the grid padded to whole windows):

>>> import torch
>>> import neurlink.nerves as nv
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((32, 4), nv.Conv2d(4)),  # 4x4 patches
...         ((32, nv.tokens(4)), nv.ToTokens()),
...         ((32, nv.tokens(4)), nv.SwinBlock(2, window=4)),
...         ((32, nv.tokens(4)), nv.SwinBlock(2, window=4, shift=2)),  # the windows shifted by half of one
...         ((64, nv.tokens(8)), nv.PatchMerging()),  # 2x2 tokens into one of twice the channels
...     ]
... )
>>> net(torch.randn(2, 3, 32, 32)).shape, net(torch.randn(1, 3, 40, 56)).shape
(torch.Size([2, 16, 64]), torch.Size([1, 35, 64]))
>>> list(net[3].line_tags())
['norm1', 'attn', 'residual1', 'norm2', 'mlp', 'residual2']
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .. import _runtime
from ..errors import DimsError, NerveArgumentError
from ..interpreter import Ops, optional_child
from ..nerve import Nerve
from ..nn.window import QKVLinear
from ..nn.window import WindowAttention as _WindowAttentionModule
from ..shapes import stride_between, tokens
from ._args import Act, ntuple, positive_int, probability
from ._geometry import ratio_pairs
from .attention import _heads
from .channels import LayerNorm
from .drop import StochasticDepth
from .merge import Add
from .transformer import MLP

__all__ = ["WindowAttention", "PatchMerging", "SwinBlock"]

_VERSIONS = (1, 2)


def _version(version: object, owner: str) -> int:
    if not isinstance(version, int) or isinstance(version, bool) or version not in _VERSIONS:
        raise NerveArgumentError(
            f"{owner}: version={version!r} is not a Swin Transformer version",
            allowed="version=1 (Swin, pre-norm) or version=2 (Swin v2: cosine attention, post-norm)",
        )
    return version


def _grid_tokens(nerve: Nerve) -> Any:
    """The one input line: tokens of a 2d grid, with no extra tokens (what windows and merging act on)."""
    nerve.expect_links(1)
    name = type(nerve).__name__
    link = nerve.input_links[0]
    shape = link.shape
    rank = link.rank if link.rank is not None else shape.rank or 2
    if shape.ratios is None:
        reason = "lies on no grid"
    elif shape.extra:
        reason = f"has {shape.extra} extra token(s) before its grid"
    elif rank != 2:
        reason = f"lies on a {rank}d grid"
    else:
        return link
    raise DimsError(
        f"{name} acts on the tokens of a 2d grid, but line {link.index}'s {shape!r} {reason}",
        allowed="tokens of a 2d map, ((C, nv.tokens(r)), nv.ToTokens()) after a Conv2d line, with no class token",
    )


def _keeps(nerve: Nerve, link: Any) -> None:
    target = nerve.target_dims[0]
    if not link.dims[0].same_as(target, 2):
        raise DimsError(
            f"{type(nerve).__name__} keeps the dims of line {link.index}, {link.dims[0]!r}, but this line"
            f" declares {target!r}",
            allowed=f"{link.dims[0]!r} on this line",
        )


class WindowAttention(Nerve):
    """Multi-head self-attention within windows of ``window`` x ``window`` tokens of a 2d grid, keeping the
    line's dims (torchvision's ``ShiftedWindowAttention``, and ``ShiftedWindowAttentionV2`` with
    ``version=2``): ``nv.WindowAttention(heads=3, window=7, shift=3)``.

    The grid of each call is padded at its end with zero tokens to whole windows (the padding takes part
    in attention, as torchvision's), rolled back by ``shift`` (an int or one per dim, below the window)
    and cut into windows; tokens of a shifted window that came from different parts of the grid do not
    attend to each other. Where one window covers the padded grid in a dim, that dim is not shifted.

    Children: ``qkv`` (``nn.Linear(C, 3C)``; in v2 a :class:`neurlink.nn.window.QKVLinear` that leaves the
    keys' bias out), ``attend`` (:class:`neurlink.nn.window.WindowAttention`, the position bias with
    torchvision's names and shapes), ``proj`` (``nn.Linear(C, C)``) and ``drop`` (where ``dropout > 0``,
    after ``proj``). ``attention_dropout`` drops attention weights in training.

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> net = nv.build(
    ...     [
    ...         ((3, 1), nv.Input()),
    ...         ((16, 4), nv.Conv2d(4)),
    ...         ((16, nv.tokens(4)), nv.ToTokens()),
    ...         ((16, nv.tokens(4)), nv.WindowAttention(4, window=3, shift=1, version=2)),
    ...     ]
    ... )
    >>> net(torch.randn(1, 3, 28, 36)).shape  # a 7x9 grid, padded to 9x9 for windows of 3x3
    torch.Size([1, 63, 16])
    >>> sorted(net[3].attend.state_dict())
    ['cpb_mlp.0.bias', 'cpb_mlp.0.weight', 'cpb_mlp.2.weight', 'logit_scale', 'relative_coords_table', \
'relative_position_index']
    """

    live_attributes = frozenset(
        {"shift"}
    )  # read by its steps on every trace: may be set after the build (Nerve.__setattr__)

    spatial_rank = 2  # a 2d grid: a line of one ratio is read as 2d, a line of another rank refused
    layouts = ("tokens",)

    # its choices per grid (padding to whole windows, the shift dropped where one window covers the grid)
    # are branches torch's symbolic sizes cannot follow (Network.dynamic_shapes refuses the network)
    exports_at_one_size = "pads its grid to whole windows and drops the shift where one window covers it"

    def __init__(
        self,
        heads: int,
        window: int | tuple[int, int] = 7,
        shift: int | tuple[int, int] = 0,
        *,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        version: int = 1,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        link = _grid_tokens(self)
        _keeps(self, link)
        channels = link.channels
        heads = _heads(heads, channels, name)
        version = _version(version, name)
        self.window = ntuple("window", window, 2, name)
        shifts = (shift, shift) if isinstance(shift, int) and not isinstance(shift, bool) else shift
        if (
            not isinstance(shifts, (tuple, list))
            or len(shifts) != 2
            or not all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s < w for s, w in zip(shifts, self.window)
            )
        ):
            raise NerveArgumentError(
                f"{name}: shift={shift!r} is not an int or a pair of ints in 0..window - 1 (window {self.window})",
                allowed="shift=0 (no shift) or less than the window in each dim (Swin: window // 2 on every other block)",
            )
        self.shift = tuple(shifts)
        self.version = version
        self._ratios = ratio_pairs(link.shape, 2)
        self.qkv = (
            nn.Linear(channels, 3 * channels) if version == 1 else QKVLinear(channels, 3 * channels, key_bias=False)
        )
        self.attend = _WindowAttentionModule(
            heads, self.window, probability("attention_dropout", attention_dropout, name), version
        )
        self.proj = nn.Linear(channels, channels)
        p = probability("dropout", dropout, name)
        self.register_module("drop", nn.Dropout(p) if p else None)

    def _steps(self, ops: Ops, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        grid = ops.function(_runtime.grid_size, base_shape, self._ratios)
        windows = ops.function(_runtime.window_partition, x, grid, self.window, self.shift)
        y = ops.module("proj", ops.module("attend", ops.module("qkv", windows), grid, self.shift))
        if optional_child(self, "drop") is not None:
            y = ops.module("drop", y)
        return ops.function(_runtime.window_merge, y, grid, self.window, self.shift)


class PatchMerging(Nerve):
    """Tokens of a 2d grid at ratio ``r`` merged into tokens at ratio ``s r``: each ``s x s`` block of tokens
    concatenated (down each column first, the grid padded with zeros at its end to whole blocks), then a
    norm and a linear reduction (torchvision's ``PatchMerging``; ``version=2``: ``PatchMergingV2``, the
    reduction before the norm). The stride ``s`` is derived from the ratios, as a conv's is (Swin: 2); the
    reduction (``reduction``, ``nn.Linear(s * s * C, C_out, bias=False)``) makes the channels the line
    declares (Swin: ``2C``); ``norm`` is an ``nn.LayerNorm`` of ``eps``.

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> net = nv.build(
    ...     [
    ...         ((3, 1), nv.Input()),
    ...         ((8, 4), nv.Conv2d(4)),
    ...         ((8, nv.tokens(4)), nv.ToTokens()),
    ...         ((16, nv.tokens(8)), nv.PatchMerging()),
    ...     ]
    ... )
    >>> net(torch.randn(1, 3, 20, 28)).shape  # a 5x7 grid, padded to 6x8, merged into 3x4
    torch.Size([1, 12, 16])
    >>> net[3].reduction, net[3].norm
    (Linear(in_features=32, out_features=16, bias=False), LayerNorm((32,), eps=1e-05, elementwise_affine=True, bias=True))
    """

    spatial_rank = 2  # a 2d grid: a line of one ratio is read as 2d, a line of another rank refused
    layouts = ("tokens",)

    def __init__(self, version: int = 1, *, eps: float = 1e-5) -> None:
        super().__init__()
        name = type(self).__name__
        link = _grid_tokens(self)
        version = _version(version, name)
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
            raise NerveArgumentError(f"{name}: eps={eps!r} is not a positive number", allowed="eps > 0, e.g. 1e-5")
        source, target = link.shape, self.target_dims[0].shape
        doubled = tuple(2 * r for r in source.ratios_for(2))
        allowed = (
            f"(C_out, {tokens(doubled[0] if source.broadcast else doubled)!r}) to merge 2x2 tokens (Swin, with"
            f" C_out = {2 * link.channels}), or tokens of a grid at another whole multiple of line {link.index}'s"
            " ratio in each dim"
        )
        if not target.is_tokens or target.ratios is None or target.extra:
            raise DimsError(
                f"{name} makes the tokens of a coarser grid, but the line declares {target!r}", allowed=allowed
            )
        try:
            stride = stride_between(source.ratios_for(2), target.ratios_for(2), transposed=False)
        except DimsError as error:
            raise DimsError(f"{name}: {error.reason}", allowed=allowed) from None
        if stride == (1, 1):
            raise DimsError(
                f"{name} merges the tokens of line {link.index}'s grid {source!r} into a coarser one, but the line"
                f" declares the same grid, {target!r}",
                allowed=allowed + " (a Linear per token changes only the channels: nv.Linear())",
            )
        self.stride, self.version = stride, version
        self._ratios = ratio_pairs(source, 2)
        merged = stride[0] * stride[1] * link.channels
        channels = self.target_dims[0].channels
        self.reduction = nn.Linear(merged, channels, bias=False)
        self.norm = nn.LayerNorm(merged if version == 1 else channels, eps=eps)

    def _steps(self, ops: Ops, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        grid = ops.function(_runtime.grid_size, base_shape, self._ratios)
        x = ops.function(_runtime.merge_patches, x, grid, self.stride)
        if self.version == 1:
            return ops.module("reduction", ops.module("norm", x))
        return ops.module("norm", ops.module("reduction", x))


class SwinBlock(Nerve):
    """A Swin Transformer block on a line of tokens of a 2d grid, keeping its dims (torchvision's
    ``SwinTransformerBlock``; ``version=2``: ``SwinTransformerBlockV2``, its norms after each branch)::

        v1: x = x + drop_path(attn(norm1(x)));  x = x + drop_path(mlp(norm2(x)))
        v2: x = x + drop_path(norm1(attn(x)));  x = x + drop_path(norm2(mlp(x)))

    ``attn`` is a :class:`WindowAttention` of ``heads``, ``window`` and ``shift`` (with ``dropout`` after its
    projection and ``attention_dropout``), ``mlp`` an :class:`~neurlink.nerves.MLP` of ``mlp`` hidden
    features (None: 4 C) with ``dropout`` after each layer, the norms ``nn.LayerNorm`` of ``eps``,
    ``drop_path`` stochastic depth per sample. Its parts are sub-lines tagged ``norm1``, ``attn``,
    ``drop_path1``, ``residual1``, ``norm2``, ``mlp``, ``drop_path2``, ``residual2`` (the drop paths where
    ``drop_path > 0``).
    """

    spatial_rank = 2  # a 2d grid: a line of one ratio is read as 2d, a line of another rank refused
    layouts = ("tokens",)

    def __init__(
        self,
        heads: int,
        window: int | tuple[int, int] = 7,
        shift: int | tuple[int, int] = 0,
        *,
        mlp: int | None = None,
        drop_path: float = 0.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        version: int = 1,
        eps: float = 1e-5,
        act: Act = nn.GELU,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        link = _grid_tokens(self)
        _keeps(self, link)
        version = _version(version, name)
        dims = self.target_dims[0]
        hidden = 4 * dims.channels if mlp is None else positive_int("mlp", mlp, name)
        drop = probability("drop_path", drop_path, name)
        d = (dims.channels, dims.shape)
        attention = WindowAttention[-1, "attn"](
            heads, window, shift, dropout=dropout, attention_dropout=attention_dropout, version=version
        )
        attn = (d, attention)
        feed = (d, MLP[-1, "mlp"](hidden, act=act, dropout=probability("dropout", dropout, name)))
        norm1, norm2 = (d, LayerNorm[-1, "norm1"](eps)), (d, LayerNorm[-1, "norm2"](eps))
        lines: list = [norm1, attn] if version == 1 else [attn, norm1]
        if drop:
            lines.append((d, StochasticDepth[-1, "drop_path1"](drop)))
        lines.append((d, Add[[0, -1], "residual1"]()))
        lines += [norm2, feed] if version == 1 else [feed, norm2]
        if drop:
            lines.append((d, StochasticDepth[-1, "drop_path2"](drop)))
        lines.append((d, Add[["residual1", -1], "residual2"]()))
        self.add(lines)
