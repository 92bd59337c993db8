"""Interpolate and Identity: nerves that keep the channels."""

from __future__ import annotations

import torch

from .. import _runtime
from ..errors import DimsError, NerveArgumentError
from ..interpreter import Ops
from ..nerve import Nerve
from ..shapes import dims_text
from ._geometry import ratio_pairs

__all__ = ["Interpolate", "Identity"]

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}  # the others work in any rank
_ALIGNING_MODES = ("linear", "bilinear", "bicubic", "trilinear")  # the modes torch takes align_corners with


def _same_channels(nerve: Nerve) -> None:
    nerve.expect_links(1)
    given, declared = nerve.input_links[0].channels, nerve.target_dims[0].channels
    if given != declared:
        raise DimsError(
            f"{type(nerve).__name__} keeps the channels, but the line turns {given} into {declared}",
            allowed=f"{given} channels on this line",
        )


class Interpolate(Nerve):
    """Resample the selected line to the declared shape (a ratio or absolute):
    ``((64, 2), nv.Interpolate("bilinear"))`` after a line at ratio 8 upsamples by 4.

    With two lines selected, ``nv.Interpolate[[x, like]]()`` resamples ``x`` to the size of ``like``,
    a line at the declared shape: no base shape is needed, so the nerve (and one that holds it) can
    be called on its own tensors.
    """

    live_attributes = frozenset(
        {"mode", "align_corners"}
    )  # read by its steps on every trace: may be set after the build (Nerve.__setattr__)

    keeps_rank = True  # its output has the spatial rank of its inputs

    def __init__(self, mode: str = "nearest", align_corners: bool | None = None) -> None:
        super().__init__()
        like = self.input_links[1] if len(self.input_links) == 2 else None
        if like is not None:
            self.input_links.pop()  # checked as one input below; the second only lends its size
            if not like.dims[0].shape.same_as(self.target_dims[0].shape) or len(like.dims) != 1:
                raise DimsError(
                    f"Interpolate resizes to the size of line {like.index} {dims_text(like.dims)}, which must"
                    f" have the declared shape {self.target_dims[0].shape!r}",
                    allowed="a second line at the declared shape, or one line (resized to the declared shape)",
                )
        try:
            _same_channels(self)
        finally:
            if like is not None:
                self.input_links.append(like)
        if mode not in _MODES:
            raise NerveArgumentError(f"Interpolate: mode={mode!r}", allowed=", ".join(map(repr, _MODES)))
        if align_corners is not None and (not isinstance(align_corners, bool) or mode not in _ALIGNING_MODES):
            raise NerveArgumentError(
                f"Interpolate: align_corners={align_corners!r} with mode={mode!r}",
                allowed=f"align_corners=None, or True/False with mode {', '.join(map(repr, _ALIGNING_MODES))}",
            )
        rank = self.input_links[0].rank
        needs = _MODE_RANK.get(mode)
        if rank is not None and needs is not None and needs != rank:
            fitting = [m for m, r in _MODE_RANK.items() if r == rank]
            raise NerveArgumentError(
                f"Interpolate: mode={mode!r} is for {needs}d inputs, but line {self.input_links[0].index} is {rank}d",
                allowed=", ".join(map(repr, fitting + ["nearest", "area", "nearest-exact"])),
            )
        self.mode, self.align_corners = mode, align_corners
        target = self.target_dims[0].shape
        self._like = like is not None
        self.uses_base_shape = not target.is_absolute and not self._like
        # one value stands for every dim when the shape is written as one (the rank is the input's), unless the
        # lines before size each dim (neurlink.sizes): then every dim has its own steps
        spatial = target.rank or (len(target.sizing) if target.sizing else None) or rank or 1
        self._ratios = None if target.is_absolute else ratio_pairs(target, spatial)
        self._absolute = target.absolute if target.is_absolute else None

    def _steps(
        self, ops: Ops, x: torch.Tensor, like: torch.Tensor | None = None, base_shape: tuple[int, ...] | None = None
    ) -> torch.Tensor:
        if self._like:
            return ops.function(_runtime.interpolate_like, x, like, self.mode, self.align_corners)
        return ops.function(
            _runtime.interpolate_to, x, base_shape, self._ratios, self._absolute, self.mode, self.align_corners
        )


class Identity(Nerve):
    """Pass the selected line through unchanged; its dims must equal the declared ones."""

    keeps_rank = True  # its output has the spatial rank of its inputs
    layouts = ("map", "vector", "tokens")

    def __init__(self) -> None:
        super().__init__()
        _same_channels(self)
        link, target = self.input_links[0], self.target_dims[0]
        if not link.shape.same_as(target.shape):
            raise DimsError(
                f"Identity keeps the shape, but line {link.index} has shape {link.shape!r}, not {target.shape!r}",
                allowed=f"shape {link.shape!r} on this line",
            )

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        return x
