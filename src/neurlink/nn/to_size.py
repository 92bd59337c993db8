"""Convolutions whose stride or padding is derived from the sizes of each call.

A conv line between a ratio and an absolute shape (``(64, 4)`` to ``(64, "(7, 7)")``) needs the
stride that takes this input to that size; a transposed conv line lands exactly on
``ceil(base / ratio)``, which needs a padding chosen per call. These modules are the torch conv
classes (``isinstance(m, nn.Conv2d)`` holds, weights and state_dict keys are the same) with a
``forward`` that derives those settings from the sizes it is given, and their ``repr`` says which
settings are per call. They read ``self.weight`` inside their own ``forward``, so hooks,
parametrizations (``weight_norm``, ``spectral_norm``) and pruning apply as to any torch conv.

>>> import torch
>>> conv = Conv2dToSize(3, 8, 3, target=(None, (7, 7)))
>>> conv
Conv2dToSize(3, 8, kernel_size=(3, 3), stride=per call, padding=per call, target=(7, 7))
>>> conv(torch.randn(1, 3, 21, 21)).shape  # stride 3 this call
torch.Size([1, 8, 7, 7])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import _runtime

__all__ = [
    "Conv1dToSize",
    "Conv2dToSize",
    "Conv3dToSize",
    "ConvTranspose1dToSize",
    "ConvTranspose2dToSize",
    "ConvTranspose3dToSize",
]

PER_CALL = "per call"

# (ratios as (numerator, denominator) per dim, with the steps of neurlink.sizes after them where the
# geometry of an earlier line sized this one; None) or (None, absolute size)
Target = tuple[tuple[tuple[Any, ...], ...] | None, tuple[int, ...] | None]

if TYPE_CHECKING:  # a module: at run time the mixins below sit before a torch conv class
    _Module = nn.Module
else:
    _Module = object


class _ToSize(_Module):
    """What both kinds share: the declared target, ``(ratios, None)`` or ``(None, absolute size)``."""

    target: Target
    uses_base_shape: bool
    # "per call" where no one value holds, which torch's repr of the conv shows. torch's conv declares
    # a tuple, and a transposed conv's forward takes an output_size where these take the base shape:
    # the classes below are deliberately not torch's type there, and tell mypy so (ignore[misc]).
    stride: tuple[int, ...] | str
    padding: tuple[int, ...] | str
    # read from the torch conv class
    weight: torch.Tensor
    bias: torch.Tensor | None
    kernel_size: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str

    def _set_target(self, target: Target) -> None:
        ratios, absolute = target
        self.target = (tuple(tuple(ratio) for ratio in ratios) if ratios is not None else None, absolute)
        self.uses_base_shape = absolute is None  # a ratio needs the base shape of the call

    def extra_repr(self) -> str:
        ratios, absolute = self.target
        shown: tuple[Any, ...] = ()
        if absolute is not None:
            shown = tuple(absolute)
        elif ratios is not None:
            shown = tuple(
                (f"1/{n}" if d == 1 else f"{d}/{n}") + (" sized by the lines before" if steps else "")
                for n, d, *steps in ratios
            )
        return super().extra_repr() + f", target={shown}"


class _ConvToSize(_ToSize):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, ...], *, target: Target,
                 dilation: tuple[int, ...] | int = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 **factory: Any) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, 1, 0, dilation, groups, bias, padding_mode, **factory)
        self.stride = PER_CALL
        self.padding = PER_CALL
        self._set_target(target)

    def forward(self, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        ratios, absolute = self.target
        return _runtime.conv_to_size(
            x, self.weight, self.bias, base_shape, ratios, absolute,
            self.kernel_size, self.dilation, self.groups, self.padding_mode,
        )  # fmt: skip


class _ConvTransposeToSize(_ToSize):
    output_padding: tuple[int, ...] | str  # "per call", as the stride

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, ...], *, target: Target,
                 stride: tuple[int, ...] | None = None, dilation: tuple[int, ...] | int = 1, groups: int = 1,
                 bias: bool = True, **factory: Any) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride or 1, 0, 0, groups, bias, dilation, **factory)
        if stride is None:
            self.stride = PER_CALL
        self.padding = PER_CALL
        self.output_padding = PER_CALL
        self._set_target(target)

    def forward(self, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        ratios, absolute = self.target
        stride = None if self.stride == PER_CALL else self.stride
        return _runtime.conv_transpose_to(
            x, self.weight, self.bias, base_shape, ratios, absolute, stride,
            self.kernel_size, self.dilation, self.groups,
        )  # fmt: skip


class Conv1dToSize(_ConvToSize, nn.Conv1d):  # type: ignore[misc]  # see _ToSize
    """``nn.Conv1d`` whose stride and padding take each input to the target size."""


class Conv2dToSize(_ConvToSize, nn.Conv2d):  # type: ignore[misc]  # see _ToSize
    """``nn.Conv2d`` whose stride and padding take each input to the target size."""


class Conv3dToSize(_ConvToSize, nn.Conv3d):  # type: ignore[misc]  # see _ToSize
    """``nn.Conv3d`` whose stride and padding take each input to the target size."""


class ConvTranspose1dToSize(_ConvTransposeToSize, nn.ConvTranspose1d):  # type: ignore[misc]  # see _ToSize
    """``nn.ConvTranspose1d`` whose padding (and stride, if not given) lands each input on the target size."""


class ConvTranspose2dToSize(_ConvTransposeToSize, nn.ConvTranspose2d):  # type: ignore[misc]  # see _ToSize
    """``nn.ConvTranspose2d`` whose padding (and stride, if not given) lands each input on the target size."""


class ConvTranspose3dToSize(_ConvTransposeToSize, nn.ConvTranspose3d):  # type: ignore[misc]  # see _ToSize
    """``nn.ConvTranspose3d`` whose padding (and stride, if not given) lands each input on the target size."""
