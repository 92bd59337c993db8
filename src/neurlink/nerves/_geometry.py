"""Stride and padding of a conv or pool line, derived once from its declared shapes.

DESIGN section 2: relative -> relative is decided at build time except a strided conv
with an odd total padding (its padding depends on the actual size) and a transposed
conv (its padding depends on the base size); absolute -> absolute is fully static;
relative <-> absolute derives the stride from the actual sizes at call time.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import DimsError, NerveArgumentError
from ..shapes import (
    ShapeSpec,
    same_padding,
    skipped_input,
    static_padding,
    stride_between,
    stride_for_sizes,
    transposed_padding,
    transposed_stride_for_sizes,
)
from ..sizes import append_step, window_step

__all__ = ["Geometry", "conv_geometry", "ratio_pairs", "explicit_padding", "windowed_shape", "refuse_growth"]

PADDING_ALLOWED = (
    'padding="same" (the default: each line lands on ceil(input / stride)), "valid" (no padding, PyTorch\'s'
    " floor((n - kernel) / stride) + 1), or PyTorch's padding as an int or one int per spatial dim"
)


@dataclass(frozen=True)
class Geometry:
    """How a conv/pool line reaches its declared size.

    kind:
      ``"static"``: ``stride`` and ``padding`` (left, right per dim) fixed; for a transposed conv,
        ``padding`` holds (padding, output_padding) per dim and ``crop`` the elements cut at the end.
      ``"same"``: stride fixed; dims whose ``padding`` is None are padded per call from the size.
      ``"transposed"``: stride fixed; padding per call from the base shape (the target size).
      ``"sized"``: stride and padding per call from the actual input and target sizes.
    """

    kind: str
    stride: tuple[int, ...] | None = None  # None: "sized"
    padding: tuple[Any, ...] = ()
    crop: tuple[int, ...] = ()

    @property
    def needs_target(self) -> bool:
        return self.kind in ("transposed", "sized")


def ratio_pairs(shape: ShapeSpec, rank: int) -> tuple[tuple[Any, ...], ...]:
    """Ratios as (numerator, denominator) pairs: plain ints that fx and torch.export can carry; a shape
    sized by the geometry of the lines before it (``neurlink.sizes``) adds its steps, ``(num, den, steps)``."""
    if shape.sizing is None:
        return tuple((r.numerator, r.denominator) for r in shape.ratios_for(rank))
    return tuple(
        (start.numerator, start.denominator, steps) if steps else (start.numerator, start.denominator)
        for start, steps in shape.sizing_for(rank)
    )


def refuse_growth(name: str, shape_in: ShapeSpec, shape_out: ShapeSpec, rank: int) -> None:
    """A nerve that can only keep or shrink a map (a pool) refuses a line that grows it, where the declared
    shapes say so at build time: between ratios (an output ratio below the input's), or between absolute
    sizes. A ratio written as a tuple is often an absolute shape missing its quotes, ``(16, (1, 1))``."""
    if shape_in.is_tokens or shape_out.is_tokens or shape_in.is_absolute != shape_out.is_absolute:
        return  # from a ratio to a size (or back) the sizes are known per call only
    if shape_in.is_absolute:
        sizes_in, sizes_out = shape_in.absolute_for(rank), shape_out.absolute_for(rank)
        if all(n >= t for n, t in zip(sizes_in, sizes_out)):
            return
        raise DimsError(
            f"{name} keeps or shrinks its input: size {shape_in.written} -> {shape_out.written} grows it",
            allowed=f"an output size of at most {shape_in.written} per dim; to grow a map use Interpolate or"
            " ConvTransposed",
        )
    ratios_in, ratios_out = shape_in.ratios_for(rank), shape_out.ratios_for(rank)
    if all(r_out >= r_in for r_in, r_out in zip(ratios_in, ratios_out)):
        return
    written_in, written_out = _ratio_text(shape_in, ratios_in), _ratio_text(shape_out, ratios_out)
    whole = all(r.denominator == 1 for r in ratios_out)
    quoted = shape_out.written if isinstance(shape_out.written, tuple) and whole else (1,) * rank
    absolute = str(quoted[0]) if len(quoted) == 1 else "(" + ", ".join(str(v) for v in quoted) + ")"
    raise DimsError(
        f"{name} keeps or shrinks its input: ratio {written_in} -> {written_out} grows it",
        allowed=f"an output ratio of at least {written_in} (to grow a map use Interpolate or ConvTransposed);"
        f' for an absolute shape write it as a string, "{absolute}"',
    )


def _ratio_text(shape: ShapeSpec, ratios: tuple[Fraction, ...]) -> str:
    """A ratio as the line writes it: one number where one stands for every dim."""
    texts = [str(r.numerator) if r.denominator == 1 else f"{float(r):g}" for r in ratios]
    if shape.broadcast or len(set(texts)) == 1 and not isinstance(shape.written, tuple):
        return texts[0]
    return "(" + ", ".join(texts) + ")"


def explicit_padding(padding: Any, rank: int, name: str) -> tuple[int, ...] | None:
    """``padding=`` of a conv or pool line: None for "same" (derived), else PyTorch's padding per dim."""
    if isinstance(padding, str):
        if padding == "same":
            return None
        if padding == "valid":
            return (0,) * rank
    elif isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        return (padding,) * rank
    elif (
        isinstance(padding, tuple)
        and len(padding) == rank
        and all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in padding)
    ):
        return padding
    raise NerveArgumentError(f"{name}: padding={padding!r}", allowed=PADDING_ALLOWED)


def windowed_shape(
    shape_in: ShapeSpec,
    shape_out: ShapeSpec,
    kernel: tuple[int, ...],
    dilation: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    ceil_mode: bool,
) -> ShapeSpec:
    """The output shape of a window of PyTorch's geometry: the declared ratio, sized from the input's size."""
    sizing = tuple(
        append_step(dim, window_step(k, d, s, p, p, ceil_mode))
        for dim, k, d, s, p in zip(shape_in.sizing_for(len(kernel)), kernel, dilation, stride, padding)
    )
    return shape_out.with_sizing(sizing)


def conv_geometry(
    shape_in: ShapeSpec,
    shape_out: ShapeSpec,
    kernel: tuple[int, ...],
    dilation: tuple[int, ...],
    *,
    transposed: bool,
    padding: tuple[int, ...] | None = None,
) -> Geometry:
    rank = len(kernel)
    pads: tuple[Any, ...]
    if padding is not None:  # PyTorch's own geometry: the stride from the ratios, the size from the input's
        if shape_in.is_absolute or shape_out.is_absolute or shape_in.is_tokens or shape_out.is_tokens:
            raise DimsError(
                f"padding={padding} is a geometry between ratios, but the line goes from {shape_in!r} to {shape_out!r}",
                allowed='ratios on both lines for padding="valid" or an explicit padding; between absolute'
                " shapes the stride and padding come from the sizes",
            )
        stride = stride_between(shape_in.ratios_for(rank), shape_out.ratios_for(rank), transposed=False)
        return Geometry("static", stride, tuple((p, p) for p in padding))
    if not shape_in.is_absolute and not shape_out.is_absolute:
        stride = stride_between(shape_in.ratios_for(rank), shape_out.ratios_for(rank), transposed=transposed)
        if transposed:
            return Geometry("transposed", stride)
        pads = tuple(static_padding(k, d, s) for k, d, s in zip(kernel, dilation, stride))
        return Geometry("static" if None not in pads else "same", stride, pads)
    if shape_in.is_absolute and shape_out.is_absolute:
        sizes_in, sizes_out = shape_in.absolute_for(rank), shape_out.absolute_for(rank)
        find = transposed_stride_for_sizes if transposed else stride_for_sizes
        found = tuple(find(n, t) for n, t in zip(sizes_in, sizes_out))
        if None in found:
            kind = "transposed conv" if transposed else "conv or pool"
            raise DimsError(
                f"no stride takes a {kind} from size {sizes_in} to {sizes_out}",
                allowed="sizes where a whole stride gives ceil(input / stride) == output"
                if not transposed
                else "output sizes between stride * (input - 1) + 1 and stride * input",
            )
        stride = tuple(s for s in found if s is not None)  # every one, after the check
        for n, k, d, s in zip(sizes_in, kernel, dilation, stride):
            skipped = None if transposed else skipped_input(n, sizes_out, k, d, s)
            if skipped is not None:
                raise DimsError(
                    skipped,
                    allowed=f"a kernel at least {s} wide, a line in between that reduces the size, or an adaptive"
                    " pool (the pool written without a kernel, e.g. nv.MaxPool2d()) to reach any size",
                )
        if transposed:
            plans = [
                transposed_padding(n, t, k, d, s, relative=False)
                for n, t, k, d, s in zip(sizes_in, sizes_out, kernel, dilation, stride)
            ]
            return Geometry("static", stride, tuple(p[:2] for p in plans), tuple(p[2] for p in plans))
        pads = tuple(same_padding(n, k, d, s) for n, k, d, s in zip(sizes_in, kernel, dilation, stride))
        return Geometry("static", stride, pads)
    return Geometry("sized")
