"""Nerves that combine several lines: Add, Concat, SkipConnect, and Bundle (several lines as one)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import ClassVar, cast

import torch

from ..context import Link
from ..errors import DimsError
from ..interpreter import Ops
from ..nerve import Nerve
from ..table import instantiate
from ._args import Act, Norm
from .conv import Conv1d, Conv2d, Conv3d, ConvTransposed1d, ConvTransposed2d, ConvTransposed3d

__all__ = ["Add", "Bundle", "Concat", "SkipConnect1d", "SkipConnect2d", "SkipConnect3d"]


def _dims_text(link: Link) -> str:
    return f"line {link.index} {link.dims[0]!r}"


class Add(Nerve):
    """Element-wise sum of the selected lines, which must all have the declared dims:
    ``((64, 4), nv.Add[[-1, "skip"]]())``."""

    keeps_rank = True  # its output has the spatial rank of its inputs
    layouts = ("map", "vector", "tokens")

    def __init__(self) -> None:
        super().__init__()
        self.expect_links()
        target = self.target_dims[0]
        if len(self.input_links) < 2:
            raise DimsError(f"Add sums two or more lines, but {len(self.input_links)} is selected")
        for link in self.input_links:
            if not link.dims[0].same_as(target):
                raise DimsError(
                    f"Add needs every input to have the declared dims {target!r}, but {_dims_text(link)} differs",
                    allowed="inputs with equal channels and equal shapes (project first with a conv, or use SkipConnect)",
                )

    def _steps(self, ops: Ops, first: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
        for other in others:
            first = ops.function(operator.add, first, other)
        return first


class Concat(Nerve):
    """Concatenation of the selected lines along channels (of tokens: their last dim); their channels
    must sum to the declared channels and their shapes equal the declared shape."""

    keeps_rank = True  # its output has the spatial rank of its inputs
    layouts = ("map", "vector", "tokens")
    sums_input_channels = True  # what a file's scale reads: its channels are its inputs' (scaled) sum

    def __init__(self) -> None:
        super().__init__()
        self.expect_links()
        target = self.target_dims[0]
        if not self.input_links:
            raise DimsError("Concat needs at least one selected line")
        total = sum(link.channels for link in self.input_links)
        if total != target.channels:
            parts = " + ".join(str(link.channels) for link in self.input_links)
            raise DimsError(
                f"Concat of {parts} = {total} channels, but the line declares {target.channels}",
                allowed=f"channels {total}",
            )
        for link in self.input_links:
            if not link.shape.same_as(target.shape):
                raise DimsError(
                    f"Concat needs every input at the declared shape {target.shape!r}, but {_dims_text(link)} differs",
                    allowed="inputs at the same shape (resample first with a pool, conv or Interpolate)",
                )
        self._dim = -1 if target.shape.is_tokens else 1

    def _steps(self, ops: Ops, *inputs: torch.Tensor) -> torch.Tensor:
        return ops.function(torch.cat, inputs, dim=self._dim)


class Bundle(Nerve):
    """The selected lines as the outputs of one multi-output line, in order.

    ``((18, 4), (36, 8), nv.Bundle[["high", "low"]]())`` makes one line of two outputs, which a
    later line selects whole (a tuple) or one by one (``nv.output(line, k)``). Each selected line
    must have the dims declared at its position. A nerve whose sub-lines end in several outputs
    (HRNet's ``HRModule``) ends with a Bundle.
    """

    keeps_rank = True  # its outputs have the spatial rank of its inputs
    layouts = ("map", "vector", "tokens")

    def __init__(self) -> None:
        super().__init__()
        count = len(self.target_dims)
        self.expect_links(count, outputs=count)
        for k, (link, target) in enumerate(zip(self.input_links, self.target_dims)):
            if not link.dims[0].same_as(target):
                raise DimsError(
                    f"Bundle output {k} is {_dims_text(link)}, but the line declares {target!r} there",
                    allowed="one selected line per declared dims, in the same order and with the same dims",
                )

    def _steps(self, ops: Ops, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return inputs if len(inputs) > 1 else inputs[0]


class SkipConnectNd(Nerve):
    """``SkipConnect2d[[from, to]](kernel_size=1, norm=None, act=None)``: ``to + from``.

    When ``from`` has other dims than ``to``, it is first projected by a conv (a transposed
    conv if it must be upsampled) with the given kernel, norm and activation: torchvision's
    ``downsample`` is ``SkipConnect2d[[0, -1]](1, norm=nn.BatchNorm2d)``.
    """

    spatial_rank: ClassVar[int] = 2
    _convs: ClassVar[tuple] = ()

    def __init__(self, kernel_size: int | Sequence[int] = 1, norm: Norm = None, act: Act = None) -> None:
        super().__init__()
        self.expect_links(2)
        source, target = self.input_links
        dims_out = self.target_dims[0]
        for dims in (source.dims[0], dims_out):
            if dims.shape.rank not in (None, self.spatial_rank):
                raise DimsError(
                    f"{type(self).__name__} is {self.spatial_rank}d, but shape {dims.shape!r} has {dims.shape.rank} dims",
                    allowed=f"SkipConnect{dims.shape.rank}d for {dims.shape.rank}d shapes",
                )
        if not target.dims[0].same_as(dims_out):
            raise DimsError(
                f"{type(self).__name__} adds into {_dims_text(target)}, so the line must declare those dims, not {dims_out!r}",
                allowed=f"{target.dims[0]!r} on this line",
            )
        self.project = None
        self.uses_base_shape = False
        if not source.dims[0].same_as(dims_out, self.spatial_rank):
            from_shape, to_shape = source.shape, dims_out.shape
            upsample = (
                not from_shape.is_absolute
                and not to_shape.is_absolute
                and any(
                    a > b
                    for a, b in zip(from_shape.ratios_for(self.spatial_rank), to_shape.ratios_for(self.spatial_rank))
                )
            )
            conv = self._convs[1 if upsample else 0]
            project = cast(Nerve, instantiate(conv(kernel_size, norm=norm, act=act), (source,), (dims_out,)))
            self.project = project
            self.uses_base_shape = project.uses_base_shape

    def _steps(
        self, ops: Ops, source: torch.Tensor, target: torch.Tensor, base_shape: tuple[int, ...] | None = None
    ) -> torch.Tensor:
        if self.project is not None:
            source = ops.module("project", source, base_shape=base_shape)
        return ops.function(operator.add, target, source)


class SkipConnect1d(SkipConnectNd):
    spatial_rank = 1
    _convs = (Conv1d, ConvTransposed1d)


class SkipConnect2d(SkipConnectNd):
    spatial_rank = 2
    _convs = (Conv2d, ConvTransposed2d)


class SkipConnect3d(SkipConnectNd):
    spatial_rank = 3
    _convs = (Conv3d, ConvTransposed3d)
