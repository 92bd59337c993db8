"""Shape declarations and the arithmetic derived from them (pure Python, no torch).

A line declares each output as ``(channels, shape)``. ``shape`` is either a
*ratio* of the base shape (int, float or one per spatial dim; size
``ceil(base / ratio)``), an *absolute* shape written as a string literal such
as ``"(1, 1)"``, or a *token sequence* ``tokens(ratio, extra=k)`` (see :func:`tokens`).
Everything a PyTorch user derives by hand (stride, padding, output_padding, a sequence's
length) is computed here from two such declarations.
"""

from __future__ import annotations

import ast
import numbers
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from typing import Any, Literal

from .errors import DimsError
from .sizes import DimSizing, apply_steps

# How a line's tensor is held: channels-first maps (N, C, *spatial), vectors (N, C), or token
# sequences (N, L, C), channels last as nn.LayerNorm, nn.Linear and scaled_dot_product_attention take them.
Layout = Literal["map", "vector", "tokens"]

__all__ = [
    "dims_text",
    "tokens",
    "Layout",
    "layout_of",
    "ShapeSpec",
    "Dims",
    "size_at",
    "stride_between",
    "static_padding",
    "same_padding",
    "transposed_padding",
    "conv_padding",
    "stride_for_sizes",
    "transposed_stride_for_sizes",
    "skipped_input",
]

# Float ratios are read as the simple fraction they were meant to be (0.5 -> 1/2, 1/3 -> 1/3).
_MAX_DENOMINATOR = 1_000_000


def _is_number(value: object) -> bool:
    """A real number that is not a bool: int, float, Fraction, numpy's scalars."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_ratio(value: Any, written: Any) -> Fraction:
    if not _is_number(value) or not value > 0 or value != value or value == float("inf"):
        raise DimsError(
            f"shape {written!r}: ratio {value!r} is not a positive number",
            allowed="a positive int or float ratio of the base shape (2 = half size, 0.5 = double),"
            " a tuple of them, or an absolute shape string such as '(1, 1)' (the string \"()\" for a vector line)",
        )
    ratio = (Fraction(value) if isinstance(value, numbers.Rational) else Fraction(float(value))).limit_denominator(
        _MAX_DENOMINATOR
    )
    if ratio == 0:  # a positive float below 1/2000000 reads as 0, which no size can be divided by
        raise DimsError(
            f"shape {written!r}: ratio {value!r} is too small",
            allowed=f"a ratio of at least 1/{_MAX_DENOMINATOR} (a size at most {_MAX_DENOMINATOR} times the base)",
        )
    return ratio


class ShapeSpec:
    """A declared spatial shape: a ratio of the base shape, or an absolute shape.

    >>> ShapeSpec(4).size((7, 224))
    (2, 56)
    >>> ShapeSpec(0.5).size((3,))
    (6,)
    >>> ShapeSpec("(1, 1)").size((224, 224))
    (1, 1)
    >>> ShapeSpec("()").size((224, 224))  # a vector: (N, C)
    ()
    >>> ShapeSpec(tokens(16, extra=1)).size((224, 224))  # 14 * 14 patches and a class token
    (197,)
    """

    __slots__ = ("ratios", "absolute", "broadcast", "written", "is_tokens", "extra", "length", "sizing")
    ratios: tuple[Fraction, ...] | None
    absolute: tuple[int, ...] | None
    broadcast: bool  # True when one value stands for every spatial dim (``2``, ``"7"``).
    written: Any
    is_tokens: bool  # a token sequence (N, L, C): of a grid at ``ratios``, or of a fixed ``length``
    extra: int  # tokens before the grid's (a class token, register tokens)
    length: int | None  # a fixed number of tokens, for a sequence that is no grid
    # per spatial dim, how the size follows from the base after a conv or pool of another geometry
    # than "same" (``neurlink.sizes``); None: ``ceil(base / ratio)``. Set by the build, never written.
    sizing: tuple[DimSizing, ...] | None

    def __init__(self, written: Any) -> None:
        if isinstance(written, ShapeSpec):
            for name in ShapeSpec.__slots__:
                setattr(self, name, getattr(written, name))
            return
        self.written = written
        self.ratios = None
        self.absolute = None
        self.broadcast = True
        self.is_tokens, self.extra, self.length = False, 0, None
        self.sizing = None
        if isinstance(written, str) and written.strip().startswith("tokens"):
            grid, self.extra, self.length = _parse_tokens(written)
            self.is_tokens, self.written = True, _TokensText(written.strip())  # shown as the call it is
            if grid is not None:
                self.ratios = (
                    tuple(_as_ratio(value, written) for value in grid)
                    if isinstance(grid, tuple)
                    else (_as_ratio(grid, written),)
                )
                self.broadcast = not isinstance(grid, tuple)
            else:
                self.broadcast = False
        elif isinstance(written, str):
            self.absolute, self.broadcast = _parse_absolute(written)
        elif isinstance(written, tuple) and written:
            self.ratios = tuple(_as_ratio(value, written) for value in written)
            self.broadcast = False
        else:
            self.ratios = (_as_ratio(written, written),)

    @property
    def is_absolute(self) -> bool:
        return self.absolute is not None

    @property
    def layout(self) -> Layout:
        """How a tensor of this shape is held: ``"tokens"`` (N, L, C), ``"vector"`` (N, C) or ``"map"``."""
        return "tokens" if self.is_tokens else "vector" if self.is_vector else "map"

    @property
    def rank(self) -> int | None:
        """Number of spatial dims written out (of a token sequence: of its grid), or None when one
        value stands for all (or a fixed-length sequence, which has no grid)."""
        if self.broadcast:
            return None
        values = self.absolute if self.absolute is not None else self.ratios
        return len(values) if values is not None else None

    def _expand(self, values: tuple, rank: int) -> tuple:
        if self.broadcast:
            return values * rank
        if len(values) != rank:
            raise DimsError(
                f"shape {self.written!r} has {len(values)} spatial dims where {rank} are needed",
                allowed=f"one value for every dim, or a tuple of {rank}",
            )
        return values

    def ratios_for(self, rank: int) -> tuple[Fraction, ...]:
        if self.ratios is None:
            raise ValueError("an absolute shape has no ratio")
        return self._expand(self.ratios, rank)

    def absolute_for(self, rank: int) -> tuple[int, ...]:
        if self.absolute is None:
            raise ValueError("a relative shape has no absolute size")
        return self._expand(self.absolute, rank)

    @property
    def is_vector(self) -> bool:
        """``"()"``: no spatial dims, a tensor ``(N, C)``."""
        return self.absolute == ()

    def grid(self, base_shape: Sequence[int]) -> tuple[int, ...]:
        """The grid a token sequence's tokens (after its extra ones) lie on: ``ceil(base / ratio)``."""
        if not self.is_tokens or self.ratios is None:
            raise ValueError("only a token sequence of a grid has one")
        return self._sizes(base_shape)

    def _sizes(self, base_shape: Sequence[int]) -> tuple[int, ...]:
        """Per dim of a relative shape: ``ceil(base / ratio)``, or the steps of its sizing."""
        if self.sizing is not None and len(self.sizing) == len(base_shape):
            return tuple(apply_steps(size_at(b, start), steps) for b, (start, steps) in zip(base_shape, self.sizing))
        return tuple(size_at(b, r) for b, r in zip(base_shape, self.ratios_for(len(base_shape))))

    def sizing_for(self, rank: int) -> tuple[DimSizing, ...]:
        """Per dim, (start ratio, steps): ``((r, ()), ...)`` for a shape at ``ceil(base / r)``."""
        if self.sizing is not None and len(self.sizing) == rank:
            return self.sizing
        return tuple((r, ()) for r in self.ratios_for(rank))

    def with_sizing(self, sizing: tuple[DimSizing, ...] | None) -> ShapeSpec:
        """This declaration, computing its size by ``sizing`` (None where that is ``ceil(base / ratio)``)."""
        shape = ShapeSpec(self)
        if sizing is not None and self.ratios is not None:
            if all(not steps for _, steps in sizing) and tuple(start for start, _ in sizing) == self.ratios_for(
                len(sizing)
            ):
                sizing = None
        shape.sizing = sizing if self.ratios is not None else None
        return shape

    def same_size(self, other: ShapeSpec, rank: int | None = None) -> bool:
        """Whether two shapes have the same size for every base shape: the same declaration, sized alike."""
        if not self.same_as(other, rank):
            return False
        if self.sizing is None and other.sizing is None or self.ratios is None:
            return True
        rank = rank or len(self.sizing or other.sizing or ())
        return self.sizing_for(rank) == other.sizing_for(rank)

    def size(self, base_shape: Sequence[int]) -> tuple[int, ...]:
        """The concrete spatial size of this shape for a given base shape (of tokens: ``(L,)``)."""
        rank = len(base_shape)
        if self.is_tokens:
            if self.length is not None:
                return (self.length,)
            count = self.extra
            grid = self.grid(base_shape)
            product = 1
            for size in grid:
                product *= size
            return (count + product,)
        if self.is_vector:
            return ()
        if self.absolute is not None and not self.broadcast:
            return self.absolute  # written out: its own rank, whatever the base's
        if self.is_absolute:
            return self.absolute_for(rank)
        return self._sizes(base_shape)

    def same_as(self, other: ShapeSpec, rank: int | None = None) -> bool:
        """Whether two declarations are the same (sizes that propagate differ by :meth:`same_size`)."""
        if self.is_absolute != other.is_absolute or self.is_tokens != other.is_tokens:
            return False
        if self.is_tokens:
            if (self.extra, self.length) != (other.extra, other.length):
                return False
            if self.ratios is None or other.ratios is None:
                return self.ratios is other.ratios
            rank = rank or self.rank or other.rank or 1
            try:
                return self.ratios_for(rank) == other.ratios_for(rank)
            except DimsError:
                return False
        if self.is_vector or other.is_vector:
            return self.is_vector and other.is_vector
        if rank is None:
            rank = self.rank or other.rank or 1
        try:
            if self.is_absolute:
                return self.absolute_for(rank) == other.absolute_for(rank)
            return self.ratios_for(rank) == other.ratios_for(rank)
        except DimsError:
            return False

    def _key(self) -> tuple:
        return (self.ratios, self.absolute, self.broadcast, self.is_tokens, self.extra, self.length, self.sizing)

    def __eq__(self, other: object) -> bool:
        """The same declaration: ``2`` (one value for every dim) is not ``(2, 2)``, whose rank is fixed;
        :meth:`same_as` compares what two declarations mean for a given rank."""
        if not isinstance(other, ShapeSpec):
            try:
                other = ShapeSpec(other)
            except DimsError:
                return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return repr(self.written)

    def __reduce__(self) -> tuple[Any, ...]:
        if self.sizing is not None:
            return (_sized_shape, (self.written, self.sizing))
        return (ShapeSpec, (self.written,))


def _sized_shape(written: Any, sizing: tuple[DimSizing, ...]) -> ShapeSpec:
    """Unpickle a shape that carries its sizing."""
    return ShapeSpec(written).with_sizing(sizing)


class _TokensText(str):
    """The text of a token declaration, shown as the call that wrote it: ``tokens(16, extra=1)``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def tokens(ratio: Any = None, *, extra: int = 0, length: int | None = None) -> str:
    """A token sequence ``(N, L, C)``, the shape of a line of tokens: ``(768, nv.tokens(16, extra=1))``.

    ``tokens(r)`` is a sequence of the patches of a map at ratio ``r`` of the base (``L =
    prod(ceil(base / r))``, in row-major order, as ``x.flatten(2).transpose(1, 2)`` makes them);
    a 1-d base makes it a sequence at a ratio of the base (audio frames, text). ``extra=k`` puts
    ``k`` more tokens before them (a class token, register tokens); ``tokens(length=n)`` is a
    sequence of a fixed length that lies on no grid.

    The declaration is text, ``"tokens(16, extra=1)"``, and may be written as that string too;
    what this returns is that text (a ``str``), shown as the call.

    >>> tokens(16, extra=1)
    tokens(16, extra=1)
    >>> ShapeSpec(tokens((4, 8))).size((32, 32)), ShapeSpec(tokens(length=77)).size((32, 32))
    ((32,), (77,))
    """
    text = _tokens_text(ratio, extra, length)
    _parse_tokens(text)  # checked now, where it was written
    return _TokensText(text)


def _tokens_text(ratio: Any, extra: Any, length: Any) -> str:
    arguments = []
    if ratio is not None:
        arguments.append(_ratio_text(ratio))
    if extra != 0:
        arguments.append(f"extra={extra!r}")
    if length is not None:
        arguments.append(f"length={length!r}")
    return f"tokens({', '.join(arguments)})"


def _ratio_text(ratio: Any) -> str:
    if isinstance(ratio, tuple):
        return "(" + ", ".join(_ratio_text(r) for r in ratio) + ("," if len(ratio) == 1 else "") + ")"
    if isinstance(ratio, numbers.Rational) and not isinstance(ratio, bool) and ratio.denominator == 1:
        return str(ratio.numerator)
    if _is_number(ratio):
        return repr(float(ratio))  # 1/3 reads back as the fraction it was (see _as_ratio)
    return repr(ratio)  # refused when parsed


_TOKENS_ALLOWED = (
    "tokens(ratio) for the patches of a map at a ratio of the base (a tuple for one ratio per dim),"
    " tokens(ratio, extra=k) with k >= 0 tokens before them, or tokens(length=n) for n tokens on no grid"
)


def _parse_tokens(written: str) -> tuple[Any, int, int | None]:
    """``(ratio, extra, length)`` of a token declaration's text, read as a literal call (never evaluated)."""
    try:
        call = ast.parse(written.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise DimsError(f"shape {written!r} is not a token declaration", allowed=_TOKENS_ALLOWED) from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "tokens"):
        raise DimsError(f"shape {written!r} is not a token declaration", allowed=_TOKENS_ALLOWED)
    try:
        args = [ast.literal_eval(a) for a in call.args]
        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise DimsError(f"shape {written!r}: its arguments are not literals", allowed=_TOKENS_ALLOWED) from None
    if len(args) > 1 or set(keywords) - {"extra", "length"} or None in keywords:
        raise DimsError(f"shape {written!r} takes one ratio, extra= and length=", allowed=_TOKENS_ALLOWED)
    ratio = args[0] if args else None
    extra, length = keywords.get("extra", 0), keywords.get("length")

    def whole(value: Any, low: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    if not whole(extra, 0):
        raise DimsError(f"shape {written!r}: extra={extra!r} is not an int >= 0", allowed=_TOKENS_ALLOWED)
    if (ratio is None) == (length is None):
        raise DimsError(
            f"shape {written!r} gives "
            + ("both a ratio and a length" if ratio is not None else "neither a ratio nor a length"),
            allowed=_TOKENS_ALLOWED,
        )
    if length is not None and (not whole(length, 1) or extra):
        raise DimsError(
            f"shape {written!r}: length={length!r} is not an int >= 1 (with no extra)", allowed=_TOKENS_ALLOWED
        )
    if ratio is not None:
        for value in ratio if isinstance(ratio, tuple) and ratio else (ratio,):
            try:
                _as_ratio(value, written)
            except DimsError as error:
                raise DimsError(error.reason, allowed=_TOKENS_ALLOWED) from None
    return ratio, extra, length


def _parse_absolute(written: str) -> tuple[tuple[int, ...], bool]:
    """The sizes in an absolute shape string, and whether one size stands for every dim."""
    allowed = (
        "an absolute shape written as a literal: '(1, 1)', '(7, 7, 7)', '7', '()' for vectors (N, C),"
        " or nv.tokens(ratio, extra=k) for tokens (N, L, C)"
    )
    try:
        value = ast.literal_eval(written.strip())  # a literal only: never evaluates code
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise DimsError(f"shape {written!r} is not a literal shape", allowed=allowed) from None
    if value == ():
        return (), False  # no spatial dims: a vector of channels per sample, (N, C)
    values = value if isinstance(value, tuple) else (value,)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise DimsError(f"shape {written!r} is not a tuple of positive ints", allowed=allowed)
    return tuple(values), not isinstance(value, tuple)


class Dims:
    """What a line declares of one output: ``channels`` and spatial ``shape``.

    Reads like the tuple it was written as: ``channels, shape = dims``.

    >>> d = Dims(64, 2)
    >>> d.channels, d.shape
    (64, 2)
    """

    __slots__ = ("channels", "shape")

    def __init__(self, channels: int, shape: Any) -> None:
        if isinstance(channels, numbers.Integral) and not isinstance(channels, bool):
            channels = int(channels)  # numpy's ints too
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise DimsError(
                f"channels {channels!r} is not a positive int",
                allowed="dims written as (channels, shape) with channels a positive int",
            )
        self.channels: int = channels
        self.shape: ShapeSpec = ShapeSpec(shape)

    @classmethod
    def parse(cls, written: Any) -> Dims:
        if isinstance(written, Dims):
            return written
        if not isinstance(written, tuple) or len(written) != 2:
            raise DimsError(
                f"dims {written!r} is not a (channels, shape) pair",
                allowed="(channels, shape), e.g. (64, 2) or (10, '(1, 1)'), or a Dims object",
            )
        return cls(*written)

    def same_as(self, other: Dims, rank: int | None = None) -> bool:
        return self.channels == other.channels and self.shape.same_as(other.shape, rank)

    def tensor_shape(self, base_shape: Sequence[int]) -> tuple[int, ...]:
        """The shape of a tensor of these dims after its batch dim, for a base shape: ``(C, *size)``
        for a map, ``(C,)`` for a vector, ``(L, C)`` for tokens."""
        size = self.shape.size(base_shape)
        return (*size, self.channels) if self.shape.is_tokens else (self.channels, *size)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.channels, self.shape))

    def __getitem__(self, index: int) -> Any:
        return (self.channels, self.shape)[index]

    def __len__(self) -> int:
        return 2

    def __eq__(self, other: object) -> bool:
        try:
            other = Dims.parse(other)
        except DimsError:
            return NotImplemented
        return self.channels == other.channels and self.shape == other.shape

    def __hash__(self) -> int:
        return hash((self.channels, self.shape))

    def __repr__(self) -> str:
        return f"({self.channels}, {self.shape!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Dims, (self.channels, self.shape))


def layout_of(dims: Iterable[Dims]) -> Layout:
    """The layout of a line's value from its declared dims (every output of a line has one)."""
    layouts = {d.shape.layout for d in dims}
    return "tokens" if "tokens" in layouts else "map" if "map" in layouts else "vector"


def dims_text(dims: Iterable[Dims]) -> str:
    """Declared dims as written: ``(64, 2)``; several outputs separated by commas."""
    return ", ".join(repr(d) for d in dims)


# --- arithmetic ---------------------------------------------------------------------------


def size_at(base: int, ratio: Fraction) -> int:
    """``ceil(base / ratio)`` in integer arithmetic (also works on symbolic ints)."""
    return -((-base * ratio.denominator) // ratio.numerator)


def stride_between(
    ratios_in: Iterable[Fraction], ratios_out: Iterable[Fraction], *, transposed: bool
) -> tuple[int, ...]:
    """Stride per dim between two relative shapes; raises DimsError when not an integer."""
    strides = []
    for r_in, r_out in zip(ratios_in, ratios_out):
        step = r_in / r_out if transposed else r_out / r_in
        if step.denominator != 1:
            if transposed:
                raise DimsError(
                    f"ratio {_fmt(r_in)} -> {_fmt(r_out)} needs an upsampling factor of {_fmt(step)},"
                    " which is not an integer",
                    allowed="a transposed conv upsamples by a whole factor (e.g. ratio 8 -> 4)",
                )
            if step < 1:
                raise DimsError(
                    f"ratio {_fmt(r_in)} -> {_fmt(r_out)} would upsample, which a plain conv or pool cannot do",
                    allowed="an output ratio that is a whole multiple of the input ratio;"
                    " to upsample use ConvTransposed or Interpolate",
                )
            raise DimsError(
                f"ratio {_fmt(r_in)} -> {_fmt(r_out)} needs a stride of {_fmt(step)}, which is not an integer",
                allowed="an output ratio that is a whole multiple of the input ratio (e.g. 4 -> 8)",
            )
        strides.append(int(step))
    return tuple(strides)


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def static_padding(kernel: int, dilation: int, stride: int) -> tuple[int, int] | None:
    """Padding (left, right) that gives ``ceil(n / stride)`` for every n, or None if it depends on n.

    An even total is split evenly (PyTorch's 3x3 s2 p1, 7x7 s2 p3 convention); an odd total at
    stride 1 is split floor/ceil. An odd total at stride > 1 has no single answer.
    """
    total = dilation * (kernel - 1)
    if total % 2 == 0:
        return total // 2, total // 2
    if stride == 1:
        return total // 2, total - total // 2
    return None


def same_padding(size: int, kernel: int, dilation: int, stride: int) -> tuple[int, int]:
    """Minimal padding (left, right) for an input of ``size`` to give ``ceil(size / stride)``."""
    total = max(dilation * (kernel - 1) - (size - 1) % stride, 0)
    return total // 2, total - total // 2


def conv_padding(size: int, kernel: int, dilation: int, stride: int, *, relative: bool) -> tuple[int, int]:
    """The padding (left, right) a conv line uses on an input of ``size``: between two ratios, the
    static split where there is one (PyTorch's convention), otherwise the minimal one for the size."""
    pads = static_padding(kernel, dilation, stride) if relative else None
    return pads if pads is not None else same_padding(size, kernel, dilation, stride)


def transposed_padding(
    size: int, target: int, kernel: int, dilation: int, stride: int, *, relative: bool
) -> tuple[int, int, int]:
    """``(padding, output_padding, crop)`` making a transposed conv map ``size`` to ``target``.

    The transposed conv is the adjoint of the conv line with the same kernel going the other way
    (``target`` to ``size``, padded as :func:`conv_padding` pads it), so an upsampling line puts
    values back where the matching downsampling line took them: its padding is that conv's left
    padding, and the output is completed (``output_padding``) or cut (``crop``, at the end) to
    ``target``. ``relative`` says whether the lines are both ratios.
    """
    left, _ = conv_padding(target, kernel, dilation, stride, relative=relative)
    full = (size - 1) * stride + dilation * (kernel - 1) + 1 - 2 * left
    if target < full:
        return left, 0, full - target
    return left, target - full, 0  # always < max(stride, dilation), as PyTorch requires


def stride_for_sizes(size: int, target: int) -> int | None:
    """Smallest stride s with ``ceil(size / s) == target`` (a conv between absolute sizes)."""
    if target < 1 or target > size:
        return None
    stride = -(-size // target)
    return stride if -(-size // stride) == target else None


def skipped_input(size: int, target: Any, kernel: int, dilation: int, stride: int) -> str | None:
    """Why a stride derived from sizes (not declared by ratios) would step over input its kernel never
    reads, said for an error; None where every input value is read."""
    span = dilation * (kernel - 1) + 1
    if stride <= span or size <= span:
        return None
    return (
        f"from size {size}, the declared size {target} needs stride {stride}, but a kernel {kernel} wide"
        + (f" (dilation {dilation})" if dilation > 1 else "")
        + f" would never read {stride - span} of every {stride} input values"
    )


def transposed_stride_for_sizes(size: int, target: int) -> int | None:
    """Smallest stride s with ``s * (size - 1) < target <= s * size``."""
    if target < size:
        return None
    stride = -(-target // size)
    return stride if stride * (size - 1) < target else None
