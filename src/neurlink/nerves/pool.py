"""Max and average pooling: with a kernel, stride and padding are derived from the
declared shapes; without one, adaptive pooling to the declared shape."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .. import _runtime
from ..errors import DimsError, NerveArgumentError
from ..interpreter import Ops
from ..nerve import Nerve
from ..shapes import Dims
from ._args import check_shape_ranks, ntuple
from ._geometry import conv_geometry, explicit_padding, ratio_pairs, refuse_growth, windowed_shape

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"]

_MODULES: dict[tuple[str, bool], dict[int, Callable[..., nn.Module]]] = {
    ("max", False): {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d},
    ("avg", False): {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d},
    ("max", True): {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d},
    ("avg", True): {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d},
}


class PoolNd(Nerve):
    """Shared by MaxPool and AvgPool: channels pass through, the spatial shape is declared."""

    spatial_rank: ClassVar[int] = 2
    kind: ClassVar[str] = "max"
    count_include_pad: bool = False  # average pools: whether zero padding counts in a window's mean
    _dilated_max: bool = False

    def _setup(
        self,
        kernel_size: int | Sequence[int] | None,
        dilation: int | Sequence[int],
        padding: str | int | Sequence[int] = "same",
        ceil_mode: bool = False,
    ) -> None:
        name, rank = type(self).__name__, self.spatial_rank
        self.expect_links(1)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        if dims_in.channels != dims_out.channels:
            raise DimsError(
                f"{name} keeps the channels, but the line turns {dims_in.channels} into {dims_out.channels}",
                allowed=f"{dims_in.channels} channels on this line",
            )
        check_shape_ranks(self, rank)
        refuse_growth(name, dims_in.shape, dims_out.shape, rank)
        target = dims_out.shape
        self._ratios = None if target.is_absolute else ratio_pairs(target, rank)
        self._absolute = target.absolute_for(rank) if target.is_absolute else None
        self._pad = None  # static (left, right) per dim applied before a window with no padding
        self.geometry = None
        if kernel_size is None:  # adaptive to the declared shape
            _check_adaptive(self, dilation, padding, ceil_mode)
            self.uses_base_shape = not target.is_absolute
            self.pool = _MODULES[self.kind, True][rank](self._absolute) if target.is_absolute else None
            return
        kernel = ntuple("kernel_size", kernel_size, rank, name)
        dilation = ntuple("dilation", dilation, rank, name)
        self._kernel, self._dilation = kernel, dilation
        pads = explicit_padding(tuple(padding) if isinstance(padding, list) else padding, rank, name)
        if not isinstance(ceil_mode, bool):
            raise NerveArgumentError(
                f"{name}: ceil_mode={ceil_mode!r} is not a bool", allowed="ceil_mode=False or True"
            )
        if ceil_mode and pads is None:
            raise NerveArgumentError(
                f'{name}: ceil_mode=True with padding="same", which lands on ceil(input / stride) already',
                allowed='ceil_mode=True with padding="valid" or an explicit padding (PyTorch\'s ceil_mode arithmetic)',
            )
        geometry = conv_geometry(dims_in.shape, target, kernel, dilation, transposed=False, padding=pads)
        self.geometry = geometry
        if pads is not None:  # PyTorch's own pool: its size is what it makes of the input's
            if any(p > k // 2 for p, k in zip(pads, kernel)):
                raise NerveArgumentError(
                    f"{name}: padding={padding!r} is more than half the kernel {kernel}, which PyTorch's pools refuse",
                    allowed="a padding of at most kernel // 2 on every dim",
                )
            shape = windowed_shape(dims_in.shape, target, kernel, dilation, geometry.stride or (), pads, ceil_mode)
            self.target_dims[0] = Dims(dims_out.channels, shape)
            if self.kind == "max":
                self.pool = _MODULES["max", False][rank](kernel, geometry.stride, pads, dilation, ceil_mode=ceil_mode)
            else:
                self.pool = _MODULES["avg", False][rank](
                    kernel, geometry.stride, pads, ceil_mode=ceil_mode, count_include_pad=self.count_include_pad
                )
            return
        self.uses_base_shape = geometry.kind == "sized" and not target.is_absolute
        if geometry.kind == "sized":  # stride and padding per call: a function, no module
            self.pool = None
            return
        stride = geometry.stride
        # a dilated max pool's padding is split per call so that no window sees only padding
        self._dilated_max = self.kind == "max" and any(d > 1 for d in dilation)
        # PyTorch pools accept only symmetric padding up to half the (undilated) kernel, and
        # avg_pool3d rejects an input smaller than its kernel even when its padding would cover it
        native = (
            not self._dilated_max
            and geometry.kind == "static"
            and all(left == right and left <= k // 2 for (left, right), k in zip(geometry.padding, kernel))
            and not (self.kind == "avg" and rank == 3 and any(left for left, _ in geometry.padding))
        )
        padding = tuple(left for left, _ in geometry.padding) if native else 0
        if geometry.kind == "static" and not native and not self._dilated_max:
            self._pad = [p for pair in reversed(geometry.padding) for p in pair]
        if self.kind == "max":
            self.pool = _MODULES["max", False][rank](kernel, stride, padding, dilation)
        elif native or self.count_include_pad:
            self.pool = _MODULES["avg", False][rank](kernel, stride, padding, count_include_pad=self.count_include_pad)
        else:  # padded by the size, averaging real values only: a function, no module
            self.pool = None

    def _steps(self, ops: Ops, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        geometry = self.geometry
        if geometry is None:
            if self.pool is not None:
                return ops.module("pool", x)
            return ops.function(_runtime.adaptive_pool_to, x, base_shape, self._ratios, self.kind)
        if geometry.kind == "sized":
            return ops.function(
                _runtime.pool_to_size,
                x,
                base_shape,
                self._ratios,
                self._absolute,
                self._kernel,
                self._dilation,
                self.kind,
                self.count_include_pad,
            )
        if self.pool is None:  # average over real values, padded by the geometry
            if geometry.kind == "same":
                return ops.function(_runtime.avg_pool_same, x, self._kernel, geometry.stride, geometry.padding)
            return ops.function(_runtime.avg_pool_padded, x, geometry.padding, self._kernel, geometry.stride)
        fill = float("-inf") if self.kind == "max" else 0.0
        if self._dilated_max:
            x = ops.function(_runtime.pad_for_max, x, self._kernel, self._dilation, geometry.stride, geometry.padding)
        elif geometry.kind == "same":
            x = ops.function(
                _runtime.pad_same, x, self._kernel, self._dilation, geometry.stride, geometry.padding, "zeros", fill
            )
        elif self._pad is not None:
            x = ops.function(F.pad, x, self._pad, value=fill)
        return ops.module("pool", x)


def _check_adaptive(nerve: PoolNd, dilation: object, padding: object, ceil_mode: object) -> None:
    """An adaptive pool has no window: a window's keyword without a kernel is a forgotten kernel, which
    would silently pool another way (GoogLeNet's ``MaxPool2d(3, padding=0, ceil_mode=True)`` written
    without its 3)."""
    given = [
        text
        for text, unset in (
            (f"dilation={dilation!r}", dilation == 1),
            (f"padding={padding!r}", isinstance(padding, str) and padding == "same"),
            (f"ceil_mode={ceil_mode!r}", ceil_mode is False),
            ("count_include_pad=True", not nerve.count_include_pad),
        )
        if not unset
    ]
    if given:
        name = type(nerve).__name__
        raise NerveArgumentError(
            f"{name} without a kernel pools adaptively to the declared shape, which has no window for"
            f" {', '.join(given)}",
            allowed=f"a kernel_size with them (e.g. {name}(3, {', '.join(given)})), or {name}() alone for adaptive pooling",
        )


class MaxPoolNd(PoolNd):
    """Max pooling. ``MaxPool2d(3)`` from ratio 2 to 4: 3x3, stride 2, padding 1.
    ``MaxPool2d()`` (no kernel): adaptive max pooling to the declared shape. ``padding="valid"`` or
    PyTorch's own padding (an int or one per dim), with ``ceil_mode``, is ``nn.MaxPool2d``'s geometry
    at the stride the ratios declare: the line's size follows from its input's (docs/shapes.md)."""

    kind = "max"

    def __init__(
        self,
        kernel_size: int | Sequence[int] | None = None,
        dilation: int | Sequence[int] = 1,
        *,
        padding: str | int | Sequence[int] = "same",
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self._setup(kernel_size, dilation, padding, ceil_mode)


class AvgPoolNd(PoolNd):
    """Average pooling. At the borders a window averages the real values it covers, as
    ``nn.AvgPool2d(count_include_pad=False)`` does; ``count_include_pad=True`` counts the zero
    padding instead. ``AvgPool2d()`` (no kernel): adaptive average pooling to the declared shape,
    e.g. ``((512, "(1, 1)"), AvgPool2d())``. ``padding`` and ``ceil_mode`` as for :class:`MaxPoolNd`."""

    kind = "avg"

    def __init__(
        self,
        kernel_size: int | Sequence[int] | None = None,
        count_include_pad: bool = False,
        *,
        padding: str | int | Sequence[int] = "same",
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(count_include_pad, bool):
            raise NerveArgumentError(
                f"{type(self).__name__}: count_include_pad={count_include_pad!r} is not a bool",
                allowed="count_include_pad=False (default) or True",
            )
        self.count_include_pad = count_include_pad
        self._setup(kernel_size, 1, padding, ceil_mode)


class MaxPool1d(MaxPoolNd):
    spatial_rank = 1


class MaxPool2d(MaxPoolNd):
    spatial_rank = 2


class MaxPool3d(MaxPoolNd):
    spatial_rank = 3


class AvgPool1d(AvgPoolNd):
    spatial_rank = 1


class AvgPool2d(AvgPoolNd):
    spatial_rank = 2


class AvgPool3d(AvgPoolNd):
    spatial_rank = 3
