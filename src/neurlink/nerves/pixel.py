"""Trading space for channels: ``PixelShuffle`` (depth to space) and ``PixelUnshuffle`` (space to depth).

The factor is the ratio between the lines, as a conv's stride is: ``PixelShuffle`` from a line at ratio
``r`` to one at ``r / f`` is ``nn.PixelShuffle(f)``, taking ``C * f**2`` channels to ``C``;
``PixelUnshuffle`` from ``r`` to ``r * f`` is ``nn.PixelUnshuffle(f)``, ``C`` to ``C * f**2``. An ESPCN
super-resolution head, and a space-to-depth stem:

>>> import torch
>>> import neurlink.nerves as nv
>>> upscale = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((64, 1), nv.Conv2d_ReLU(5)),
...         ((27, 1), nv.Conv2d(3)),  # 3 * 3**2 channels
...         ((3, 1 / 3), nv.PixelShuffle()),  # nn.PixelShuffle(3): ratio 1 to 1/3
...     ]
... )
>>> upscale(torch.randn(1, 3, 20, 24)).shape
torch.Size([1, 3, 60, 72])
>>> stem = nv.build([((3, 1), nv.Input()), ((48, 4), nv.PixelUnshuffle()), ((64, 4), nv.Conv2d(1))])
>>> stem(torch.randn(1, 3, 32, 32)).shape
torch.Size([1, 64, 8, 8])
"""

from __future__ import annotations

from fractions import Fraction

import torch
from torch import fx, nn

from .. import _runtime
from ..errors import DimsError, InputError
from ..interpreter import Ops
from ..nerve import Nerve
from ._args import check_shape_ranks
from ._geometry import ratio_pairs

__all__ = ["PixelShuffle", "PixelUnshuffle"]


def _factor(nerve: Nerve, shrinking: bool) -> int:
    """The one whole factor ``f >= 2`` by which the line's size grows (``shrinking=False``) or shrinks
    from the size of the line it reads, the same in both dims."""
    name = type(nerve).__name__
    link, target = nerve.input_links[0], nerve.target_dims[0]
    source, declared = link.shape, target.shape
    if source.is_absolute != declared.is_absolute:
        raise DimsError(
            f"{name} reads line {link.index} at {source!r} but declares {declared!r}: one is a ratio, the other a size",
            allowed="ratios on both lines, or absolute sizes on both",
        )
    factors: set[Fraction]
    if source.is_absolute:  # sizes: the declared one is the read one over f where it shrinks, times f where it grows
        sizes = zip(source.absolute_for(2), declared.absolute_for(2))
        factors = {Fraction(into, out) if shrinking else Fraction(out, into) for into, out in sizes if into and out}
    else:  # ratios the other way round: a ratio times f is a size over f
        ratios = zip(source.ratios_for(2), declared.ratios_for(2))
        factors = {out / into if shrinking else into / out for into, out in ratios}
    change = "ratio" if not source.is_absolute else "size"
    direction = "times" if shrinking == (change == "ratio") else "over"
    if len(factors) != 1 or (factor := factors.pop()).denominator != 1 or factor < 2:
        raise DimsError(
            f"{name} from line {link.index} at {source!r} to {declared!r}: the {change} does not change by one"
            f" whole factor f >= 2 in both dims",
            allowed=f"this line's {change} the input's {direction} f, the same f for both dims, e.g."
            f" {_example(source, shrinking)!r}",
        )
    return factor.numerator


def _example(source, shrinking: bool) -> object:
    if source.is_absolute:
        sizes = source.absolute_for(2)
        return "(" + ", ".join(str(n // 2 if shrinking else n * 2) for n in sizes) + ")"
    ratios = source.ratios_for(2)
    shown = [r * 2 if shrinking else r / 2 for r in ratios]
    if len(set(shown)) == 1:
        value = shown[0]
        return int(value) if value.denominator == 1 else str(value)
    return tuple(int(v) if v.denominator == 1 else str(v) for v in shown)


def _check_channels(nerve: Nerve, factor: int, shrinking: bool) -> None:
    name = type(nerve).__name__
    link, declared = nerve.input_links[0], nerve.target_dims[0].channels
    expected = link.channels * factor**2 if shrinking else Fraction(link.channels, factor**2)
    if declared != expected:
        rule = f"{link.channels} {'*' if shrinking else '/'} {factor}**2"
        rule += f" = {expected}" if expected.denominator == 1 else ""
        if not shrinking and expected.denominator != 1:
            allowed = f"a line read with a multiple of {factor}**2 = {factor**2} channels, e.g. {factor**2 * declared}"
        else:
            allowed = f"{expected} channels on this line"
        raise DimsError(
            f"{name} with factor {factor} makes {rule} channels from line {link.index}'s {link.channels},"
            f" but this line declares {declared}",
            allowed=allowed,
        )


@fx.wrap
def shuffle_to_size(y: torch.Tensor, base_shape, ratios) -> torch.Tensor:
    """A shuffled map cut to its line's size: ``f * ceil(base / r)`` can pass ``ceil(base * f / r)`` by
    up to ``f - 1`` (an input rounded up), as a transposed conv's output can; it may not fall short."""
    target = _runtime.target_size(base_shape, ratios, None)
    sizes = tuple(y.shape[-2:])
    if any(t > n for t, n in zip(target, sizes)):
        raise InputError(
            f"PixelShuffle makes size {'x'.join(map(str, sizes))}, smaller than its line's"
            f" {'x'.join(map(str, target))} for an input of size {'x'.join(map(str, base_shape))}",
            allowed="an input from which the line read is sized as its ratio says (its convs padded 'same')",
        )
    return _runtime.crop_end(y, [n - t for n, t in zip(sizes, target)])


@fx.wrap
def divisible_by(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``x`` itself, once its height and width are whole multiples of ``factor`` (``nn.PixelUnshuffle``'s need)."""
    sizes = tuple(x.shape[-2:])
    if any(n % factor for n in sizes):
        raise InputError(
            f"PixelUnshuffle({factor}) takes a map whose height and width divide by {factor}, but it is given"
            f" {'x'.join(map(str, sizes))}",
            allowed=f"an input of a size that makes the line read a multiple of {factor} (a base size multiple"
            f" of the ratio of this line)",
        )
    return x


class PixelShuffle(Nerve):
    """Depth to space: ``nn.PixelShuffle(f)`` from a line at ratio ``r`` with ``C * f**2`` channels to one at
    ``r / f`` with ``C`` (or from a size ``(h, w)`` to ``(h * f, w * f)``); ``f`` is derived.

    The line lands on its own size, ``ceil(base / (r / f))``, as a transposed conv does: where the base
    size is not a multiple of ``r`` the line read was rounded up, and the last rows and columns of the
    shuffled map are cut off (``f * ceil(base / r)`` down to ``ceil(base * f / r)``); elsewhere it is
    torch's ``nn.PixelShuffle`` exactly. The torch module lives in ``shuffle`` (no parameters).
    """

    spatial_rank = 2

    def __init__(self) -> None:
        super().__init__()
        self.expect_links(1)
        check_shape_ranks(self, 2)
        factor = _factor(self, shrinking=False)
        _check_channels(self, factor, shrinking=False)
        self.factor = factor
        self.shuffle = nn.PixelShuffle(factor)
        target = self.target_dims[0].shape
        self._ratios = None if target.is_absolute else ratio_pairs(target, 2)
        self.uses_base_shape = self._ratios is not None

    def _steps(self, ops: Ops, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        x = ops.module("shuffle", x)
        if self._ratios is None:
            return x
        return ops.function(shuffle_to_size, x, base_shape, self._ratios)


class PixelUnshuffle(Nerve):
    """Space to depth: ``nn.PixelUnshuffle(f)`` from a line at ratio ``r`` with ``C`` channels to one at
    ``r * f`` with ``C * f**2`` (or from a size ``(h, w)`` to ``(h / f, w / f)``); ``f`` is derived.

    The map read must divide by ``f``: a call with a size that does not (a base size that is not a
    multiple of ``r * f``, for lines padded "same") raises an :class:`~neurlink.errors.InputError`
    naming the line. The torch module lives in ``unshuffle`` (no parameters).
    """

    spatial_rank = 2

    def __init__(self) -> None:
        super().__init__()
        self.expect_links(1)
        check_shape_ranks(self, 2)
        factor = _factor(self, shrinking=True)
        _check_channels(self, factor, shrinking=True)
        self.factor = factor
        self.unshuffle = nn.PixelUnshuffle(factor)

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        x = ops.function(divisible_by, x, self.factor)
        return ops.module("unshuffle", x)
