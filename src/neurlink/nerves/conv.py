"""Convolutions whose stride and padding are derived from the declared shapes.

``Conv2d(3)`` on a line declaring ratio 4 after a line at ratio 2 is a 3x3 conv
with stride 2 and padding 1; ``ConvTransposed2d(4)`` from ratio 8 to 4 upsamples by
2 and lands exactly on ``ceil(base / 4)`` for every base size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from .. import _runtime
from ..errors import NerveArgumentError
from ..interpreter import Ops, optional_child
from ..nerve import Nerve
from ..nn import pointwise, to_size
from ..shapes import Dims, ShapeSpec
from ..table import torch_rank
from ._args import DEFAULT, Act, Norm, check_shape_ranks, make_act, make_norm, ntuple, positive_int
from ._geometry import conv_geometry, explicit_padding, ratio_pairs, windowed_shape

__all__ = [
    f"{kind}{n}d{suffix}"
    for kind in ("Conv", "ConvTransposed")
    for n in (1, 2, 3)
    for suffix in ("", "_ReLU", "_BN_ReLU", "_ReLU_BN")
]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# By rank; called with the arguments every rank takes (torch's stubs type each rank's sizes apart).
_TORCH_CONV: dict[int, Callable[..., nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_TORCH_CONV_T: dict[int, Callable[..., nn.Module]] = {
    1: nn.ConvTranspose1d,
    2: nn.ConvTranspose2d,
    3: nn.ConvTranspose3d,
}
_CONV_TO_SIZE: dict[int, Callable[..., nn.Module]] = {
    1: to_size.Conv1dToSize,
    2: to_size.Conv2dToSize,
    3: to_size.Conv3dToSize,
}
_CONV_T_TO_SIZE: dict[int, Callable[..., nn.Module]] = {
    1: to_size.ConvTranspose1dToSize,
    2: to_size.ConvTranspose2dToSize,
    3: to_size.ConvTranspose3dToSize,
}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class ConvNd(Nerve):
    """Convolution from the selected line to the declared dims, then optional norm and activation.

    Keywords: ``kernel_size``, ``dilation``, ``groups``, ``bias`` (default: True unless a
    norm follows the conv directly), ``norm`` (class taking the channel count, or None), ``act`` (class or
    None), ``norm_after_act`` (conv -> act -> norm instead of conv -> norm -> act),
    ``padding_mode`` (``zeros``, ``reflect``, ``replicate``, ``circular``), ``padding``: ``"same"``
    (the default: the line lands on ``ceil(input / stride)``, the padding derived), ``"valid"`` (none:
    PyTorch's ``floor((n - kernel) / stride) + 1``) or PyTorch's own padding, an int or one per dim,
    with PyTorch's floor rounding. The stride is the ratio between the lines either way; with another
    padding than "same" the line's size is what the conv computes from its input's, and the lines after
    it follow from there (docs/shapes.md, "Geometry").

    Parameters live in ``conv``, ``norm`` and ``act``. ``conv`` is a ``torch.nn.ConvNd`` (or
    ``ConvTransposeNd``) with the derived stride and padding; where they depend on the size of each
    call (a size-targeted line, a transposed conv landing on ``ceil(base / ratio)``), it is one of
    :mod:`neurlink.nn.to_size`'s subclasses, which derives them in its own ``forward``.
    """

    live_attributes = frozenset(
        {"norm_after_act"}
    )  # read by its steps on every trace: may be set after the build (Nerve.__setattr__)

    spatial_rank: ClassVar[int] = 2
    transposed: ClassVar[bool] = False
    default_norm: ClassVar[bool] = False
    default_act: ClassVar[Callable[..., nn.Module] | None] = None
    default_norm_after_act: ClassVar[bool] = False
    conv: nn.Module  # a torch conv, or one of neurlink.nn's that derive their settings per call

    @classmethod
    def shown_defaults(cls) -> dict[str, Any]:
        """What the keywords that default to DEFAULT mean for this class (shown in argument errors)."""
        norm = _BATCH_NORM[cls.spatial_rank] if cls.default_norm else None
        return {"norm": norm, "act": cls.default_act, "norm_after_act": cls.default_norm_after_act}

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        *,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool | None = None,
        norm: Norm = DEFAULT,
        act: Act = DEFAULT,
        norm_after_act: bool = DEFAULT,
        padding_mode: str = "zeros",
        padding: str | int | Sequence[int] = "same",
    ) -> None:
        super().__init__()
        name, rank = type(self).__name__, self.spatial_rank
        self.expect_links(1)
        kernel = ntuple("kernel_size", kernel_size, rank, name)
        dilation = ntuple("dilation", dilation, rank, name)
        groups = positive_int("groups", groups, name)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        for side, count in (("input", dims_in.channels), ("output", dims_out.channels)):
            if count % groups:
                raise NerveArgumentError(
                    f"{name}: {side} channels (={count}) must be divisible by groups (={groups})",
                    allowed="groups dividing both the input and the output channels",
                )
        if padding_mode not in _PADDING_MODES:
            raise NerveArgumentError(
                f"{name}: padding_mode={padding_mode!r}", allowed=", ".join(map(repr, _PADDING_MODES))
            )
        if self.transposed and padding_mode != "zeros":
            raise NerveArgumentError(
                f"{name}: padding_mode={padding_mode!r}, but a transposed conv only pads with zeros",
                allowed="padding_mode='zeros'",
            )
        norm = (_BATCH_NORM[rank] if self.default_norm else None) if norm is DEFAULT else norm
        act = self.default_act if act is DEFAULT else act
        norm_after_act = self.default_norm_after_act if norm_after_act is DEFAULT else bool(norm_after_act)
        if bias is not None and not isinstance(bias, bool):
            raise NerveArgumentError(
                f"{name}: bias={bias!r} is not a bool", allowed="bias=True, False or None (default)"
            )
        norm_module, act_module = make_norm(norm, dims_out.channels, name), make_act(act, name)
        norm_rank = torch_rank(type(norm_module)) if norm_module is not None else None
        if norm_rank is not None and norm_rank != rank:
            raise NerveArgumentError(
                f"{name}: norm={type(norm_module).__name__} is {norm_rank}d, but the conv is {rank}d",
                allowed=f"a {rank}d norm (nn.BatchNorm{rank}d) or one of any rank (functools.partial(nn.GroupNorm, 8))",
            )
        if bias is None:  # the shift of a norm right after the conv makes a bias redundant
            bias = norm_module is None or (norm_after_act and act_module is not None)
        check_shape_ranks(self, rank)
        pads = explicit_padding(tuple(padding) if isinstance(padding, list) else padding, rank, name)
        if pads is not None and self.transposed:
            raise NerveArgumentError(
                f"{name}: padding={padding!r}, but a transposed conv lands on the size of the line it undoes",
                allowed='padding="same" (the default): padding and output_padding derived from the sizes',
            )

        geometry = conv_geometry(
            dims_in.shape, dims_out.shape, kernel, dilation, transposed=self.transposed, padding=pads
        )
        if pads is not None:  # PyTorch's geometry: the line's size is what the conv makes of its input's
            dims_out = Dims(
                dims_out.channels,
                windowed_shape(dims_in.shape, dims_out.shape, kernel, dilation, geometry.stride or (), pads, False),
            )
            self.target_dims[0] = dims_out
        self.geometry = geometry
        self.padding_mode = padding_mode
        out_shape = dims_out.shape
        target = (
            None if out_shape.is_absolute else ratio_pairs(out_shape, rank),
            out_shape.absolute_for(rank) if out_shape.is_absolute else None,
        )
        self._pad_first = False  # pad explicitly before a conv with no padding of its own
        channels = (dims_in.channels, dims_out.channels)
        conv_padding: tuple[int, ...] | int
        if geometry.kind in ("transposed", "sized"):  # the conv module derives its settings per call
            if self.transposed:
                self.conv = _CONV_T_TO_SIZE[rank](
                    *channels,
                    kernel,
                    target=target,
                    stride=geometry.stride,
                    dilation=dilation,
                    groups=groups,
                    bias=bias,
                )
            else:
                self.conv = _CONV_TO_SIZE[rank](
                    *channels, kernel, target=target, dilation=dilation, groups=groups, bias=bias,
                    padding_mode=padding_mode,
                )  # fmt: skip
        elif self.transposed:
            conv_padding = tuple(p for p, _ in geometry.padding)
            output_padding = tuple(op for _, op in geometry.padding)
            self.conv = _TORCH_CONV_T[rank](
                *channels, kernel, geometry.stride, conv_padding, output_padding, groups, bias, dilation
            )
        else:
            symmetric = geometry.kind == "static" and all(left == right for left, right in geometry.padding)
            conv_padding = tuple(left for left, _ in geometry.padding) if symmetric else 0
            self._pad_first = not symmetric
            if _on_points(rank, dims_in.shape, kernel, geometry.stride, conv_padding, dilation, groups):
                self.conv = pointwise.Conv2dOnPoints(*channels, bias=bias)  # a classifier on a pooled map
            else:
                self.conv = _TORCH_CONV[rank](
                    *channels, kernel, geometry.stride, conv_padding, dilation, groups, bias,
                    padding_mode if symmetric else "zeros",
                )  # fmt: skip
        self._kernel, self._dilation = kernel, dilation
        # torch 2.14's oneDNN corrupts the heap (SIGSEGV, nondeterministic) in the weight gradient of a 1x1
        # strided conv on a channels-last input with few channels, which a PointwiseLinear line before a
        # projection hands it: such a conv reads its input contiguous (docs/known-issues.md)
        stride = getattr(geometry, "stride", None) or ()
        self._contiguous_input = not self.transposed and set(kernel) == {1} and any(s > 1 for s in stride)
        self.uses_base_shape = geometry.needs_target and not out_shape.is_absolute

        first, second = act_module, norm_module
        if not norm_after_act:
            first, second = second, first
        self.norm_after_act = norm_after_act
        self.register_module("norm" if not norm_after_act else "act", first)
        self.register_module("act" if not norm_after_act else "norm", second)

    def _steps(self, ops: Ops, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        geometry = self.geometry
        if self._pad_first:
            x = ops.function(
                _runtime.pad_same, x, self._kernel, self._dilation, geometry.stride, geometry.padding, self.padding_mode
            )
        if self._contiguous_input:
            x = ops.function(_runtime.contiguous, x)
        x = ops.module("conv", x, base_shape=base_shape)
        if self.transposed and geometry.kind == "static" and any(geometry.crop):
            x = ops.function(_runtime.crop_end, x, geometry.crop)
        for name in ("act", "norm") if self.norm_after_act else ("norm", "act"):
            if optional_child(self, name) is not None:
                x = ops.module(name, x)
        return x


def _on_points(
    rank: int,
    shape: ShapeSpec,
    kernel: tuple[int, ...],
    stride: tuple[int, ...] | None,
    padding: tuple[int, ...] | int,
    dilation: tuple[int, ...],
    groups: int,
) -> bool:
    """A plain 1x1 conv reading a line of 1x1 maps (``"(1, 1)"``): a Linear layer, computed as one."""
    ones = (1,) * rank
    return (
        rank == 2
        and shape.is_absolute
        and not shape.is_vector
        and shape.absolute_for(rank) == ones
        and tuple(kernel) == ones
        and stride == ones
        and tuple(dilation) == ones
        and padding in (0, (0,) * rank)
        and groups == 1
    )


class Conv1d(ConvNd):
    """1d convolution, stride and padding derived from the declared shapes (see :class:`ConvNd`)."""

    spatial_rank = 1


class Conv1d_ReLU(Conv1d):
    """Conv1d -> ReLU."""

    default_act = nn.ReLU


class Conv1d_BN_ReLU(Conv1d):
    """Conv1d -> BatchNorm1d -> ReLU (the conv has no bias)."""

    default_norm = True
    default_act = nn.ReLU


class Conv1d_ReLU_BN(Conv1d):
    """Conv1d -> ReLU -> BatchNorm1d (the conv has a bias: the ReLU stands between it and the norm)."""

    default_norm = True
    default_act = nn.ReLU
    default_norm_after_act = True


class Conv2d(ConvNd):
    """2d convolution, stride and padding derived from the declared shapes (see :class:`ConvNd`)."""

    spatial_rank = 2


class Conv2d_ReLU(Conv2d):
    """Conv2d -> ReLU."""

    default_act = nn.ReLU


class Conv2d_BN_ReLU(Conv2d):
    """Conv2d -> BatchNorm2d -> ReLU (the conv has no bias)."""

    default_norm = True
    default_act = nn.ReLU


class Conv2d_ReLU_BN(Conv2d):
    """Conv2d -> ReLU -> BatchNorm2d (the conv has a bias: the ReLU stands between it and the norm)."""

    default_norm = True
    default_act = nn.ReLU
    default_norm_after_act = True


class Conv3d(ConvNd):
    """3d convolution, stride and padding derived from the declared shapes (see :class:`ConvNd`)."""

    spatial_rank = 3


class Conv3d_ReLU(Conv3d):
    """Conv3d -> ReLU."""

    default_act = nn.ReLU


class Conv3d_BN_ReLU(Conv3d):
    """Conv3d -> BatchNorm3d -> ReLU (the conv has no bias)."""

    default_norm = True
    default_act = nn.ReLU


class Conv3d_ReLU_BN(Conv3d):
    """Conv3d -> ReLU -> BatchNorm3d (the conv has a bias: the ReLU stands between it and the norm)."""

    default_norm = True
    default_act = nn.ReLU
    default_norm_after_act = True


class ConvTransposed1d(ConvNd):
    """1d transposed convolution, stride and padding derived from the declared shapes (see :class:`ConvNd`)."""

    spatial_rank = 1
    transposed = True


class ConvTransposed1d_ReLU(ConvTransposed1d):
    """ConvTransposed1d -> ReLU."""

    default_act = nn.ReLU


class ConvTransposed1d_BN_ReLU(ConvTransposed1d):
    """ConvTransposed1d -> BatchNorm1d -> ReLU (the conv has no bias)."""

    default_norm = True
    default_act = nn.ReLU


class ConvTransposed1d_ReLU_BN(ConvTransposed1d):
    """ConvTransposed1d -> ReLU -> BatchNorm1d (the conv has a bias: the ReLU stands between it and the norm)."""

    default_norm = True
    default_act = nn.ReLU
    default_norm_after_act = True


class ConvTransposed2d(ConvNd):
    """2d transposed convolution, stride and padding derived from the declared shapes (see :class:`ConvNd`)."""

    spatial_rank = 2
    transposed = True


class ConvTransposed2d_ReLU(ConvTransposed2d):
    """ConvTransposed2d -> ReLU."""

    default_act = nn.ReLU


class ConvTransposed2d_BN_ReLU(ConvTransposed2d):
    """ConvTransposed2d -> BatchNorm2d -> ReLU (the conv has no bias)."""

    default_norm = True
    default_act = nn.ReLU


class ConvTransposed2d_ReLU_BN(ConvTransposed2d):
    """ConvTransposed2d -> ReLU -> BatchNorm2d (the conv has a bias: the ReLU stands between it and the norm)."""

    default_norm = True
    default_act = nn.ReLU
    default_norm_after_act = True


class ConvTransposed3d(ConvNd):
    """3d transposed convolution, stride and padding derived from the declared shapes (see :class:`ConvNd`)."""

    spatial_rank = 3
    transposed = True


class ConvTransposed3d_ReLU(ConvTransposed3d):
    """ConvTransposed3d -> ReLU."""

    default_act = nn.ReLU


class ConvTransposed3d_BN_ReLU(ConvTransposed3d):
    """ConvTransposed3d -> BatchNorm3d -> ReLU (the conv has no bias)."""

    default_norm = True
    default_act = nn.ReLU


class ConvTransposed3d_ReLU_BN(ConvTransposed3d):
    """ConvTransposed3d -> ReLU -> BatchNorm3d (the conv has a bias: the ReLU stands between it and the norm)."""

    default_norm = True
    default_act = nn.ReLU
    default_norm_after_act = True
