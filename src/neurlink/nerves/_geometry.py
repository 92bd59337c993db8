"""Stride and padding of a conv or pool line, derived once from its declared shapes.

DESIGN section 2: relative -> relative is decided at build time except a strided conv
with an odd total padding (its padding depends on the actual size) and a transposed
conv (its padding depends on the base size); absolute -> absolute is fully static;
relative <-> absolute derives the stride from the actual sizes at call time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import DimsError
from ..shapes import (
    ShapeSpec,
    same_padding,
    static_padding,
    stride_between,
    stride_for_sizes,
    transposed_padding,
    transposed_stride_for_sizes,
)

__all__ = ["Geometry", "conv_geometry", "ratio_pairs"]


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


def ratio_pairs(shape: ShapeSpec, rank: int) -> tuple[tuple[int, int], ...]:
    """Ratios as (numerator, denominator) pairs: plain ints that fx and torch.export can carry."""
    return tuple((r.numerator, r.denominator) for r in shape.ratios_for(rank))


def conv_geometry(
    shape_in: ShapeSpec, shape_out: ShapeSpec, kernel: tuple[int, ...], dilation: tuple[int, ...], *, transposed: bool
) -> Geometry:
    rank = len(kernel)
    if not shape_in.is_absolute and not shape_out.is_absolute:
        stride = stride_between(shape_in.ratios_for(rank), shape_out.ratios_for(rank), transposed=transposed)
        if transposed:
            return Geometry("transposed", stride)
        padding = tuple(static_padding(k, d, s) for k, d, s in zip(kernel, dilation, stride))
        return Geometry("static" if None not in padding else "same", stride, padding)
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
        if transposed:
            plans = [
                transposed_padding(n, t, k, d, s, relative=False)
                for n, t, k, d, s in zip(sizes_in, sizes_out, kernel, dilation, stride)
            ]
            return Geometry("static", stride, tuple(p[:2] for p in plans), tuple(p[2] for p in plans))
        padding = tuple(same_padding(n, k, d, s) for n, k, d, s in zip(sizes_in, kernel, dilation, stride))
        return Geometry("static", stride, padding)
    return Geometry("sized")
