"""Property-based tests: random definitions, valid and invalid.

A *valid* definition is generated line by line from a small model of the grammar (this file's
``Line``): each new line picks earlier lines whose declared shapes it can be made from (an integer
stride for a conv or pool, an integer upsampling for a transposed conv, anything for adaptive
pooling and Interpolate, equal dims for Add, ...). Every such network must give every line exactly
its declared size ``ceil(base / ratio)``, on several input sizes in a row.

An *invalid* definition is a valid one with one line broken (a wrong selector, an impossible
stride, bad dims, a garbage argument, ...): building it must raise a ``NeurlinkError`` and nothing
else, and the error must name that line.

``HYPOTHESIS_PROFILE=slow`` (see conftest.py) runs many more examples than the ci default.
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from fractions import Fraction

import pytest
import torch
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from networks import line_by_line
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink import NeurlinkError


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # The tensors here are tiny: torch's thread pool costs more than it saves, and on a loaded
    # machine with few cores it made these tests 20 times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the model of the grammar ------------------------------------------------------------------

CHANNELS = (1, 2, 3, 4, 6, 8)
SMALL_PRIMES = (1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61)
MAX_BASE = {1: 61, 2: 23, 3: 7}  # keeps every tensor small enough for a fast CI run
MIN_RATIO = {1: Fraction(1, 4), 2: Fraction(1, 4), 3: Fraction(1, 2)}
MAX_RATIO = Fraction(48)
MAX_ABSOLUTE = 24
TARGET_RATIOS = tuple(Fraction(r) for r in ("1/4", "1/3", "1/2", "2/3", "1", "3/2", "2", "3", "4", "5", "8", "16"))
TAG_WORDS = ("c", "skip", "class", "for", "x y", "1st", "é", "a-b", "Out", "_")

SUFFIXES = ("", "_ReLU", "_BN_ReLU", "_ReLU_BN")
CONVS = {r: tuple(getattr(nv, f"Conv{r}d{s}") for s in SUFFIXES) for r in (1, 2, 3)}
TCONVS = {r: tuple(getattr(nv, f"ConvTransposed{r}d{s}") for s in SUFFIXES) for r in (1, 2, 3)}
MAXPOOLS = {1: nv.MaxPool1d, 2: nv.MaxPool2d, 3: nv.MaxPool3d}
AVGPOOLS = {1: nv.AvgPool1d, 2: nv.AvgPool2d, 3: nv.AvgPool3d}
SKIPS = {1: nv.SkipConnect1d, 2: nv.SkipConnect2d, 3: nv.SkipConnect3d}
NORMS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
INTERPOLATE_MODES = {
    1: ("nearest", "linear", "area", "nearest-exact"),
    2: ("nearest", "bilinear", "bicubic", "area", "nearest-exact"),
    3: ("nearest", "trilinear", "area", "nearest-exact"),
}


class UserBlock(nv.Nerve):
    """A user's residual block built from sub-lines, of any rank, optionally holding another block.

    Line 0 is the block's input; the strided conv and the projection of the skip are derived.
    """

    def __init__(self, rank, kernel_size=3, hidden=4, nested=False):
        super().__init__()
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        conv = CONVS[rank]
        middle = UserBlock(rank, kernel_size, hidden) if nested else conv[2](kernel_size)
        self.add(
            [
                ((hidden, dims_in.shape), conv[1](1)),
                ((hidden, dims_out.shape), middle),
                ((dims_out.channels, dims_out.shape), conv[0][-1, "mid"](1)),
                (dims_out, SKIPS[rank][[0, "mid"]](1, norm=NORMS[rank])),
            ]
        )


OMIT = object()  # a selector left out: the previous line


@dataclass
class Line:
    """One generated line: what it declares (as exact ratios or sizes) and how it is written."""

    kind: str
    channels: int
    ratios: tuple[Fraction, ...] | None  # per spatial dim; None for an absolute shape
    sizes: tuple[int, ...] | None  # absolute sizes per spatial dim
    shape: object  # the shape as written in the line
    cls: object  # a nerve class, or an nn.Module standing in for one
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    selector: object = OMIT
    tag: str | None = None
    sources: tuple[int, ...] = ()
    repeat_group: int | None = None  # consecutive lines written once as ``[line] * k``

    @property
    def relative(self) -> bool:
        return self.ratios is not None

    def same_shape(self, other: Line) -> bool:
        return self.ratios == other.ratios and self.sizes == other.sizes

    def same_dims(self, other: Line) -> bool:
        return self.channels == other.channels and self.same_shape(other)

    def nerve(self):
        if isinstance(self.cls, nn.Module):
            return self.cls
        cls = self.cls
        if self.tag is not None and self.selector is OMIT and cls is nv.Input:
            cls = cls[self.tag]  # Input["x"]: a tag, since an Input selects nothing
        elif self.tag is not None:
            cls = cls[(-1 if self.selector is OMIT else self.selector), self.tag]
        elif self.selector is not OMIT:
            cls = cls[self.selector]
        return cls(*self.args, **self.kwargs)

    def written(self):
        return ((self.channels, self.shape), self.nerve())


@dataclass
class Definition:
    rank: int
    lines: list[Line]
    layout: list = field(default_factory=list)  # nesting of the materialized lines, see materialize()

    def materialize(self) -> list:
        """The definition as a user writes it: nested lists, and ``[line] * k`` for repeats."""
        out, k = [], 0
        groups = iter(self.layout) if self.layout else None
        while k < len(self.lines):
            line = self.lines[k]
            if line.repeat_group is not None:
                count = 1
                while k + count < len(self.lines) and self.lines[k + count].repeat_group == line.repeat_group:
                    count += 1
                out.append([line.written()] * count)
                k += count
            else:
                written = line.written()
                nest = next(groups, 0) if groups is not None else 0
                out.append([written] if nest == 1 else [[written]] if nest == 2 else written)
                k += 1
        return out

    @property
    def inputs(self) -> list[Line]:
        return [line for line in self.lines if line.kind == "input"]


class Ctx:
    def __init__(self, draw, rank: int) -> None:
        self.draw, self.rank = draw, rank
        self.lines: list[Line] = []
        self.tags: set[str] = set()
        self.groups = 0

    def new_tag(self) -> str | None:
        if not self.draw(st.integers(0, 3)) == 0:
            return None
        tag = self.draw(st.sampled_from(TAG_WORDS))
        while tag in self.tags:
            tag += f"_{len(self.lines)}"
        self.tags.add(tag)
        return tag

    def ref(self, source: int):
        """One selected line, written as an absolute index, counted back, or by tag."""
        index = len(self.lines)
        options = [source, source - index]
        if self.lines[source].tag is not None:
            options.append(self.lines[source].tag)
        return self.draw(st.sampled_from(options))

    def single_selector(self, source: int):
        if source == len(self.lines) - 1 and self.draw(st.booleans()):
            return OMIT
        return self.ref(source)

    def inputs(self) -> list[Line]:
        return [line for line in self.lines if line.kind == "input"]

    def pick(self, predicate=lambda line: True) -> int | None:
        candidates = [k for k, line in enumerate(self.lines) if predicate(line)]
        if not candidates:
            return None
        # favour recent lines: chains, with some long skips
        return self.draw(st.sampled_from(candidates[-4:] + candidates))


def scalar(draw, value: Fraction):
    if value.denominator == 1:
        return draw(st.sampled_from((int(value), float(value))))
    return float(value)  # e.g. 0.5, 1/3: read back as the simple fraction


def write_ratios(draw, ratios: tuple[Fraction, ...]):
    if len(set(ratios)) == 1 and draw(st.booleans()):
        return scalar(draw, ratios[0])
    return tuple(scalar(draw, r) for r in ratios)


def write_sizes(draw, sizes: tuple[int, ...]) -> str:
    if len(set(sizes)) == 1 and draw(st.booleans()):
        return draw(st.sampled_from((f"{sizes[0]}", f" {sizes[0]} ")))
    return "(" + ", ".join(map(str, sizes)) + ("," if len(sizes) == 1 else "") + ")"


def write_shape(draw, line_ratios, line_sizes):
    if line_ratios is not None:
        return write_ratios(draw, line_ratios)
    return write_sizes(draw, line_sizes)


def per_dim(draw, rank, values):
    """An int for every dim, or one int written for all of them."""
    if draw(st.booleans()):
        value = draw(st.sampled_from(values))
        return value, (value,) * rank
    each = tuple(draw(st.sampled_from(values)) for _ in range(rank))
    return each, each


def strided(ctx: Ctx, source: Line, transposed: bool):
    """Output ratios (or absolute sizes) an integer stride (upsampling) away from ``source``."""
    draw, rank = ctx.draw, ctx.rank
    _, steps = per_dim(draw, rank, (1, 1, 2, 3))
    if source.relative:
        if transposed:
            return tuple(r / s if r / s >= MIN_RATIO[rank] else r for r, s in zip(source.ratios, steps)), None
        return tuple(r * s if r * s <= MAX_RATIO else r for r, s in zip(source.ratios, steps)), None
    if transposed:
        sizes = []
        for n, s in zip(source.sizes, steps):
            s = s if s * n <= MAX_ABSOLUTE else 1
            sizes.append(draw(st.integers(s * (n - 1) + 1, s * n)))
        return None, tuple(sizes)
    return None, tuple(math.ceil(n / s) for n, s in zip(source.sizes, steps))


def kernel_and_dilation(ctx: Ctx, dilated: bool = True):
    kernel, _ = per_dim(ctx.draw, ctx.rank, (1, 2, 3, 4, 5, 6, 7))
    dilation = ctx.draw(st.sampled_from((1, 1, 1, 2, 3, (1, 2, 3)[: ctx.rank] if ctx.rank > 1 else 2)))
    return kernel, (dilation if dilated else 1)


def reading_every_input(source: Line, sizes, kernel, dilation):
    """Between two absolute shapes a window must read every input value at the stride the sizes derive
    (the smallest ``s`` with ``ceil(n / s) == t``), else the build refuses the line: a kernel at least
    that wide, undilated, on such lines."""
    if source.relative or sizes is None:
        return kernel, dilation
    kernels = kernel if isinstance(kernel, tuple) else (kernel,) * len(sizes)
    strides = [next(s for s in range(1, n + 1) if math.ceil(n / s) == t) for n, t in zip(source.sizes, sizes)]
    widened = tuple(max(k, s) for k, s in zip(kernels, strides))
    if widened == kernels and dilation == 1:
        return kernel, dilation
    return widened, 1


def add_line(ctx: Ctx, line: Line) -> int:
    ctx.lines.append(line)
    return len(ctx.lines) - 1


def make_conv(ctx: Ctx, transposed: bool = False) -> None:
    draw, rank = ctx.draw, ctx.rank
    j = ctx.pick()
    source = ctx.lines[j]
    if source.relative and not transposed and draw(st.integers(0, 5)) == 0:
        ratios, sizes = None, (1,) * rank  # relative -> absolute 1: stride derived per call
    else:
        ratios, sizes = strided(ctx, source, transposed)
    channels = draw(st.sampled_from(CHANNELS))
    common = [g for g in range(1, 9) if source.channels % g == 0 and channels % g == 0]
    kernel, dilation = kernel_and_dilation(ctx)
    if not transposed:
        kernel, dilation = reading_every_input(source, sizes, kernel, dilation)
    kwargs = {}
    if dilation != 1:
        kwargs["dilation"] = dilation
    groups = draw(st.sampled_from(common))
    if groups != 1:
        kwargs["groups"] = groups
    if draw(st.integers(0, 4)) == 0:
        kwargs["bias"] = draw(st.booleans())
    if not transposed and draw(st.integers(0, 5)) == 0:
        kwargs["padding_mode"] = "replicate"
    cls = draw(st.sampled_from(TCONVS[rank] if transposed else CONVS[rank]))
    if draw(st.booleans()):
        kwargs["kernel_size"] = kernel
        args = ()
    else:
        args = (kernel,)
    tag = ctx.new_tag()
    add_line(
        ctx,
        Line(
            "convT" if transposed else "conv",
            channels,
            ratios,
            sizes,
            write_shape(draw, ratios, sizes),
            cls,
            args,
            kwargs,
            ctx.single_selector(j),
            tag,
            (j,),
        ),
    )


def make_pool(ctx: Ctx) -> None:
    draw, rank = ctx.draw, ctx.rank
    j = ctx.pick()
    source = ctx.lines[j]
    kind = draw(st.sampled_from(("max", "avg")))
    cls = (MAXPOOLS if kind == "max" else AVGPOOLS)[rank]
    args, kwargs = (), {}
    if draw(st.integers(0, 2)) == 0:  # adaptive: any target that does not grow the map (a pool never does)
        if draw(st.booleans()):
            if source.relative:
                assert source.ratios is not None
                choices = [[r for r in TARGET_RATIOS[2:] if r >= ratio] or [ratio] for ratio in source.ratios]
            else:  # (from a size to a ratio the sizes are known per call only)
                choices = [list(TARGET_RATIOS[2:])] * rank
            ratios, sizes = tuple(draw(st.sampled_from(choice)) for choice in choices), None
        else:
            smallest = min(source.sizes) if source.sizes is not None else 5
            ratios, sizes = None, per_dim(draw, rank, tuple(v for v in (1, 2, 3, 5) if v <= smallest) or (1,))[1]
    else:
        if source.relative and draw(st.integers(0, 5)) == 0:
            ratios, sizes = None, (1,) * rank
        else:
            ratios, sizes = strided(ctx, source, False)
        kernel, dilation = kernel_and_dilation(ctx, dilated=kind == "max")
        kernel, dilation = reading_every_input(source, sizes, kernel, dilation)
        args = (kernel,)
        if dilation != 1:
            kwargs["dilation"] = dilation
    add_line(
        ctx,
        Line(
            "pool",
            source.channels,
            ratios,
            sizes,
            write_shape(draw, ratios, sizes),
            cls,
            args,
            kwargs,
            ctx.single_selector(j),
            ctx.new_tag(),
            (j,),
        ),
    )


def make_interpolate(ctx: Ctx) -> None:
    draw, rank = ctx.draw, ctx.rank
    j = ctx.pick()
    source = ctx.lines[j]
    if draw(st.integers(0, 3)) == 0:
        ratios, sizes = None, per_dim(draw, rank, (1, 2, 3, 4, 6))[1]
    else:
        ratios = tuple(draw(st.sampled_from([r for r in TARGET_RATIOS if r >= MIN_RATIO[rank]])) for _ in range(rank))
        sizes = None
    mode = draw(st.sampled_from(INTERPOLATE_MODES[rank]))
    kwargs = {}
    if mode in ("linear", "bilinear", "bicubic", "trilinear") and draw(st.booleans()):
        kwargs["align_corners"] = draw(st.booleans())
    add_line(
        ctx,
        Line(
            "interp",
            source.channels,
            ratios,
            sizes,
            write_shape(draw, ratios, sizes),
            nv.Interpolate,
            (mode,),
            kwargs,
            ctx.single_selector(j),
            ctx.new_tag(),
            (j,),
        ),
    )


def same_dims_line(ctx: Ctx, j: int) -> int:
    """Append a line with the dims of line ``j`` (a stride-1 conv, Identity or a plain module)."""
    draw, source = ctx.draw, ctx.lines[j]
    choice = draw(st.sampled_from(("conv", "identity", "module")))
    if choice == "module" and j != len(ctx.lines) - 1:
        choice = "conv"
    shape = write_shape(draw, source.ratios, source.sizes)
    if choice == "module":
        module = draw(st.sampled_from((nn.ReLU, nn.Tanh, nn.Identity)))()
        return add_line(ctx, Line("module", source.channels, source.ratios, source.sizes, shape, module, sources=(j,)))
    if choice == "identity":
        cls, args = nv.Identity, ()
    else:
        cls, args = draw(st.sampled_from(CONVS[ctx.rank])), (kernel_and_dilation(ctx)[0],)
    return add_line(
        ctx,
        Line(
            choice,
            source.channels,
            source.ratios,
            source.sizes,
            shape,
            cls,
            args,
            selector=ctx.single_selector(j),
            tag=ctx.new_tag(),
            sources=(j,),
        ),
    )


def make_add(ctx: Ctx) -> None:
    draw = ctx.draw
    j = ctx.pick()
    twins = [k for k, line in enumerate(ctx.lines) if k != j and line.same_dims(ctx.lines[j])]
    if not twins or draw(st.booleans()):
        twins = [same_dims_line(ctx, j)]
    sources = [j, draw(st.sampled_from(twins))]
    if draw(st.integers(0, 3)) == 0:
        sources.append(draw(st.sampled_from(sources)))
    sources = draw(st.permutations(sources))
    selector = [ctx.ref(k) for k in sources]
    line = ctx.lines[j]
    add_line(
        ctx,
        Line(
            "add",
            line.channels,
            line.ratios,
            line.sizes,
            write_shape(draw, line.ratios, line.sizes),
            nv.Add,
            selector=selector,
            tag=ctx.new_tag(),
            sources=tuple(sources),
        ),
    )


def make_concat(ctx: Ctx) -> None:
    draw, rank = ctx.draw, ctx.rank
    j = ctx.pick()
    base = ctx.lines[j]
    if draw(st.booleans()) and base.relative:
        channels = draw(st.sampled_from(CHANNELS))
        cls = draw(st.sampled_from(CONVS[rank]))
        shape = write_shape(draw, base.ratios, base.sizes)
        add_line(
            ctx,
            Line(
                "conv",
                channels,
                base.ratios,
                None,
                shape,
                cls,
                (kernel_and_dilation(ctx)[0],),
                {},
                ctx.ref(j),
                None,
                (j,),
            ),
        )
    if draw(st.booleans()):  # a slice of the last lines that share the shape
        start = len(ctx.lines) - 1
        while start > 0 and ctx.lines[start - 1].same_shape(ctx.lines[-1]) and draw(st.booleans()):
            start -= 1
        sources = list(range(start, len(ctx.lines)))
        selector = draw(st.sampled_from((slice(start, None), slice(start - len(ctx.lines), None))))
    else:
        last = ctx.lines[-1]
        same = [k for k, line in enumerate(ctx.lines) if line.same_shape(last)]
        sources = draw(st.lists(st.sampled_from(same), min_size=1, max_size=3))
        selector = [ctx.ref(k) for k in sources]
    first = ctx.lines[sources[0]]
    add_line(
        ctx,
        Line(
            "concat",
            sum(ctx.lines[k].channels for k in sources),
            first.ratios,
            first.sizes,
            write_shape(draw, first.ratios, first.sizes),
            nv.Concat,
            selector=selector,
            tag=ctx.new_tag(),
            sources=tuple(sources),
        ),
    )


def _integer_steps(a: tuple[Fraction, ...], b: tuple[Fraction, ...]) -> bool:
    """Whether every dim goes from ``a`` to ``b`` by a whole stride, or every dim by a whole upsampling."""
    down = all((y / x).denominator == 1 for x, y in zip(a, b))
    up = all((x / y).denominator == 1 for x, y in zip(a, b))
    return down or up


def make_skip(ctx: Ctx) -> None:
    draw, rank = ctx.draw, ctx.rank
    t = ctx.pick(lambda line: line.relative)
    target = ctx.lines[t]
    f = ctx.pick(lambda line: line.relative and _integer_steps(line.ratios, target.ratios))
    kwargs = {}
    if draw(st.booleans()):
        kwargs["norm"] = NORMS[rank]
    if draw(st.integers(0, 3)) == 0:
        kwargs["act"] = nn.ReLU
    add_line(
        ctx,
        Line(
            "skip",
            target.channels,
            target.ratios,
            None,
            write_ratios(draw, target.ratios),
            SKIPS[rank],
            (draw(st.sampled_from((1, 1, 2, 3))),),
            kwargs,
            [ctx.ref(f), ctx.ref(t)],
            ctx.new_tag(),
            (f, t),
        ),
    )


def make_block(ctx: Ctx) -> None:
    draw, rank = ctx.draw, ctx.rank
    j = ctx.pick(lambda line: line.relative)
    ratios, _ = strided(ctx, ctx.lines[j], False)
    channels = draw(st.sampled_from(CHANNELS))
    kwargs = {"hidden": draw(st.sampled_from((1, 2, 4)))}
    if draw(st.integers(0, 3)) == 0:
        kwargs["nested"] = True
    add_line(
        ctx,
        Line(
            "block",
            channels,
            ratios,
            None,
            write_ratios(draw, ratios),
            UserBlock,
            (rank, kernel_and_dilation(ctx)[0]),
            kwargs,
            ctx.single_selector(j),
            ctx.new_tag(),
            (j,),
        ),
    )


def make_repeat(ctx: Ctx) -> None:
    """``[line] * k``: the same same-dims conv k times, each its own module."""
    draw, last = ctx.draw, ctx.lines[-1]
    shape = write_shape(draw, last.ratios, last.sizes)
    cls, kernel = draw(st.sampled_from(CONVS[ctx.rank])), kernel_and_dilation(ctx)[0]
    ctx.groups += 1
    for _ in range(draw(st.integers(2, 3))):
        j = len(ctx.lines) - 1
        add_line(
            ctx,
            Line(
                "conv",
                last.channels,
                last.ratios,
                last.sizes,
                shape,
                cls,
                (kernel,),
                sources=(j,),
                repeat_group=ctx.groups,
            ),
        )


def make_second_input(ctx: Ctx) -> None:
    draw, rank = ctx.draw, ctx.rank
    if len(ctx.inputs()) > 1:
        return make_conv(ctx)
    ratios = tuple(draw(st.sampled_from((Fraction(1, 2), Fraction(1), Fraction(2), Fraction(3)))) for _ in range(rank))
    tag = ctx.new_tag()
    add_line(
        ctx, Line("input", draw(st.sampled_from(CHANNELS)), ratios, None, write_ratios(draw, ratios), nv.Input, tag=tag)
    )


MAKERS = {
    "conv": make_conv,
    "convT": lambda ctx: make_conv(ctx, transposed=True),
    "pool": make_pool,
    "interp": make_interpolate,
    "add": make_add,
    "concat": make_concat,
    "skip": make_skip,
    "block": make_block,
    "repeat": make_repeat,
    "input": make_second_input,
}


@st.composite
def definitions(draw, max_steps: int = 7) -> Definition:
    rank = draw(st.sampled_from((1, 2, 3)))
    ctx = Ctx(draw, rank)
    ones = (Fraction(1),) * rank
    channels = draw(st.sampled_from(CHANNELS))
    tag = ctx.new_tag()
    kwargs = {"base_shape": False} if draw(st.integers(0, 5)) == 0 else {}
    add_line(ctx, Line("input", channels, ones, None, write_ratios(draw, ones), nv.Input, (), kwargs, tag=tag))
    for kind in draw(st.lists(st.sampled_from(tuple(MAKERS)), min_size=1, max_size=max_steps)):
        MAKERS[kind](ctx)
    layout = draw(st.lists(st.sampled_from((0, 0, 0, 1, 2)), max_size=len(ctx.lines)))
    return Definition(rank, ctx.lines, layout)


def base_shapes(rank: int):
    size = st.one_of(st.sampled_from([p for p in SMALL_PRIMES if p <= MAX_BASE[rank]]), st.integers(1, MAX_BASE[rank]))
    return st.tuples(*[size] * rank)


# --- valid definitions ---------------------------------------------------------------------------


def steps_over_input(definition: Definition, base_shape) -> bool:
    """Whether a conv or pool line from a ratio to absolute size 1 gets, at this base shape, an input
    wider than its kernel: the stride it needs would step over input, which a run refuses."""
    for line in definition.lines:
        kernel = line.kwargs.get("kernel_size", line.args[0] if line.args else None)
        if line.kind not in ("conv", "pool") or line.sizes is None or kernel is None:
            continue  # (a pool without a kernel is adaptive)
        source = definition.lines[line.sources[0]]
        if not source.relative:
            continue
        rank = definition.rank
        kernels = kernel if isinstance(kernel, tuple) else (kernel,) * rank
        dilation = line.kwargs.get("dilation", 1)
        dilations = dilation if isinstance(dilation, tuple) else (dilation,) * rank
        for b, r, k, d, t in zip(base_shape, source.ratios, kernels, dilations, line.sizes):
            n, span = math.ceil(b / r), d * (k - 1) + 1
            stride = math.ceil(n / t)
            if stride > span and n > span:
                return True
    return False


def run_and_check(definition: Definition, net, base_shape) -> None:
    """Every line's output has its declared channels and exactly its declared size."""
    inputs = []
    for line in definition.inputs:
        sizes = tuple(math.ceil(b / r) for b, r in zip(base_shape, line.ratios))
        inputs.append(torch.randn(2, line.channels, *sizes))
    with torch.no_grad():
        outputs = net(inputs[0] if len(inputs) == 1 else inputs, output_intermediate=True)
    assert len(outputs) == len(net.lines) == len(definition.lines)
    for entry, line, y in zip(net.lines, definition.lines, outputs):
        declared = entry.dims[0]
        expected = (2, declared.channels, *declared.shape.size(base_shape))
        assert tuple(y.shape) == expected, f"line {entry.index} {entry.written} at base {base_shape}"
        # the model of this file agrees with the library's own reading of the line
        own = line.sizes if line.sizes is not None else tuple(math.ceil(b / r) for b, r in zip(base_shape, line.ratios))
        assert expected == (2, line.channels, *own), f"line {entry.index} {entry.written}"


def adjoints_hold(net, rank: int, base_shape) -> int:
    """Every transposed conv line is the adjoint of the conv line with the same kernel going the other
    way: ``<conv x, y> == <x, convT y>``. Returns how many lines were checked."""
    checked = 0
    ones = (1,) * rank
    for module in net.modules():
        if not isinstance(module, nv.ConvNd) or not module.transposed:
            continue
        coarse, fine = module.input_links[0].dims[0], module.target_dims[0]
        options = {"dilation": module._dilation, "groups": module.conv.groups, "bias": False}
        try:
            down = nv.build(
                [
                    ((1, ones), nv.Input()),
                    ((fine.channels, fine.shape), nv.Input()),
                    (coarse, CONVS[rank][0][1](module._kernel, **options)),
                ]
            ).double()
        except neurlink.DimsError as error:  # a conv between these sizes would skip input: none to compare
            if "would never read" not in str(error):
                raise
            continue
        up = nv.build(
            [
                ((1, ones), nv.Input()),
                ((coarse.channels, coarse.shape), nv.Input()),
                (fine, TCONVS[rank][0][1](module._kernel, **options)),
            ]
        ).double()
        up.get_submodule("2.conv").weight = down.get_submodule("2.conv").weight
        base = torch.zeros(1, 1, *base_shape, dtype=torch.float64)
        x = torch.randn(1, fine.channels, *fine.shape.size(base_shape), dtype=torch.float64)
        y = torch.randn(1, coarse.channels, *coarse.shape.size(base_shape), dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close((down([base, x]) * y).sum(), (x * up([base, y])).sum(), rtol=1e-9, atol=1e-9)
        checked += 1
    return checked


def same_as_line_by_line(definition: Definition, net, base_shape) -> None:
    """``net(x)`` (its flat forward) equals calling the current modules line by line, outputs and the
    gradients of the inputs and of every parameter, bitwise in float64 and in training mode."""
    inputs = []
    for line in definition.inputs:
        sizes = tuple(math.ceil(b / r) for b, r in zip(base_shape, line.ratios))
        inputs.append(torch.randn(2, line.channels, *sizes, dtype=torch.float64, requires_grad=True))
    given = inputs[0] if len(inputs) == 1 else inputs
    results = []
    for run in (net, lambda x: line_by_line(net, x)):
        net.zero_grad()
        for x in inputs:
            x.grad = None
        out = run(given)
        assert torch.isfinite(out).all()
        out.square().sum().backward()
        results.append([out.detach()] + [t.grad for t in (*inputs, *net.parameters())])
    for got, expected in zip(*results):
        if expected is None:
            assert got is None
        else:
            torch.testing.assert_close(got, expected, rtol=0, atol=0)


@settings(max_examples=max(settings().max_examples * 3, 1))
@given(data=st.data())
def test_random_valid_definitions_land_on_their_declared_shapes(data, example_counts):
    definition = data.draw(definitions())
    lines = definition.materialize()
    note(f"definition: {lines!r}")
    net = nv.build(lines).eval()
    shapes = data.draw(st.lists(base_shapes(definition.rank), min_size=3, max_size=3))
    runs = []
    for base_shape in shapes:
        note(f"base shape {base_shape}")
        if steps_over_input(definition, base_shape):
            inputs = [torch.randn(2, line.channels, *(math.ceil(b / r) for b, r in zip(base_shape, line.ratios)))
                      for line in definition.inputs]  # fmt: skip
            with pytest.raises(neurlink.InputError, match="would never read"):
                net(inputs[0] if len(inputs) == 1 else inputs)
            example_counts["runs refused: a stride would step over input"] += 1
            continue
        run_and_check(definition, net, base_shape)
        runs.append(base_shape)
    if not runs:
        return
    same_as_line_by_line(definition, net.double().train(), runs[0])
    example_counts["transposed convs checked as adjoints"] += adjoints_hold(net, definition.rank, runs[0])
    example_counts["valid definitions built and checked"] += 1
    example_counts["valid (definition, input size) runs"] += len(runs)


def test_generator_covers_every_kind():
    """The valid-definition generator reaches every kind of line in all three ranks (a self-check)."""
    seen = Counter()

    @settings(max_examples=60, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(definitions())
    def collect(definition):
        for line in definition.lines:
            seen[line.kind] += 1
            seen[f"rank{definition.rank}"] += 1
            seen["absolute"] += line.sizes is not None
            seen["float ratio"] += line.ratios is not None and any(r.denominator != 1 for r in line.ratios)

    collect()
    for kind in (
        "conv",
        "convT",
        "pool",
        "interp",
        "add",
        "concat",
        "skip",
        "block",
        "input",
        "rank1",
        "rank2",
        "rank3",
    ):
        assert seen[kind] > 0, (kind, seen)
    assert seen["absolute"] and seen["float ratio"]


# --- invalid definitions -------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_literal_shape(text: str) -> bool:
    """This test's own oracle: does a string read as an absolute shape (a positive int or a tuple of them)?"""
    try:
        value = ast.literal_eval(text.strip())
    except Exception:
        return False
    values = value if isinstance(value, tuple) else (value,)
    return bool(values) and all(_is_int(v) and v > 0 for v in values)


def _is_ratio(value) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return value > 0 and math.isfinite(value)


# Values that can never be a channel count, a kernel size, a shape, ...: garbage a careless user passes.
GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(max_value=0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=4),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sampled_from([object(), 1j, Fraction(3, 2), slice(1, 2), nn.ReLU, "3x3", "(3, 3)"]),
)
SHAPE_GARBAGE = st.one_of(
    GARBAGE.filter(lambda v: not isinstance(v, Fraction)),  # a Fraction is a ratio
    st.sampled_from(
        [
            "__import__('os').system('echo pwned')",
            "(1, -1)",
            "(0,)",
            "(1.5, 2)",
            "[1, 1]",
            "1 + 1",
            "9" * 5000,
            "(" * 300 + ")" * 300,
            -0.0,
            (),
            (2, "x"),
            (2, -1),
            (0.0, 1),
            (float("nan"),),
        ]
    ),
).filter(lambda v: not _is_ratio(v) and not (isinstance(v, str) and _is_literal_shape(v)))
# positive floats so small that the ratio they stand for is 0 are garbage too, not only <= 0
SHAPE_GARBAGE = st.one_of(SHAPE_GARBAGE, st.floats(min_value=1e-320, max_value=4e-7))


def _bad_kernel(rank):
    def ok(value):
        if _is_int(value):
            return value >= 1
        return isinstance(value, (tuple, list)) and len(value) == rank and all(_is_int(v) and v >= 1 for v in value)

    return st.one_of(GARBAGE, st.just((3,) * (rank + 1)), st.just((0,) * rank)).filter(
        lambda v: v is not None and not ok(v)
    )


def has_kernel(line: Line) -> bool:
    """A conv, a pool with a kernel or a block: its stride is derived from its shapes."""
    return (
        line.kind in ("conv", "convT", "block")
        and not isinstance(line.cls, nn.Module)
        or (line.kind == "pool" and bool(line.args))
    )


NERVE_KINDS = ("conv", "convT", "pool", "interp", "add", "concat", "skip", "block", "identity")


def mutations(definition: Definition, m: int):
    """The names of the mutations that certainly break line ``m`` of this definition."""
    line = definition.lines[m]
    names = ["channels", "shape", "dims_form", "line_form"]
    if line.kind == "input":
        names += ["input_selector", "input_arg"]
        return names
    if line.kind in NERVE_KINDS:
        names += [
            "self_selector",
            "before_zero",
            "unknown_tag",
            "selector_type",
            "empty_selector",
            "bad_tag",
            "extra_kwarg",
        ]
        if any(other.tag for other in definition.lines[:m]):
            names.append("duplicate_tag")
    if has_kernel(line) and line.relative:
        src = definition.lines[line.sources[0]]
        if src.relative:
            names.append("impossible_stride")
    if has_kernel(line) and line.kind != "block":
        names += ["kernel", "wrong_rank"]
    if line.kind in ("conv", "convT"):
        names += ["groups", "conv_keyword"]
    if line.kind in ("pool", "interp", "add", "skip") or (line.kind == "concat"):
        names.append("channels_mismatch")
    if line.kind == "interp":
        names.append("interp_mode")
    if line.kind == "block":
        names.append("block_inside")
    if line.kind in ("add", "concat"):
        names.append("merge_arg")
    return names


def mutate(draw, definition: Definition, m: int, name: str) -> Definition:
    rank = definition.rank
    lines = [replace(line, kwargs=dict(line.kwargs)) for line in definition.lines]
    line = lines[m]
    earlier_tags = [x.tag for x in lines[:m] if x.tag is not None]
    # a mutated line is written on its own, never repeated with ``[line] * k``
    line.repeat_group = None
    if name == "channels":
        line.channels = draw(GARBAGE.filter(lambda v: not (_is_int(v) and v > 0)))
    elif name == "shape":
        line.shape = draw(SHAPE_GARBAGE)
    elif name == "dims_form":
        bad = draw(st.sampled_from([(line.channels,), (line.channels, line.shape, 1), line.channels, "8, 2", None]))
        nerve = line.nerve()
        lines[m] = BrokenLine((bad, nerve))
        return Definition(rank, lines)
    elif name == "line_form":
        nerve = line.nerve()
        dims = (line.channels, line.shape)
        cls = line.cls if not isinstance(line.cls, nn.Module) else nv.Identity
        bad = draw(
            st.sampled_from(
                [
                    (dims, cls),  # the class, not called
                    (dims, cls[-1]) if cls is not nv.Input else (dims, cls["x"]),  # selected, not called
                    (nerve, dims),  # nerve first
                    (dims,),  # no nerve
                    nerve,  # not a tuple
                    (dims, "Conv2d(3)"),  # a string for a nerve
                    {"dims": dims},
                    None,
                    (dims, 3),
                ]
            )
        )
        lines[m] = BrokenLine(bad)
        return Definition(rank, lines)
    elif name == "input_selector":
        line.selector = draw(st.sampled_from([0, -1, [0], slice(None)]))
    elif name == "input_arg":
        line.args, line.kwargs = draw(st.sampled_from([(("yes",), {}), ((), {"base_shape": 1}), ((), {"size": 3})]))
    elif name == "self_selector":
        line.selector = m + draw(st.integers(0, 5))
    elif name == "before_zero":
        line.selector = -(m + 1 + draw(st.integers(0, 5)))
    elif name == "unknown_tag":
        later = [x.tag for x in lines[m:] if x.tag is not None]
        line.selector = draw(st.sampled_from(later + ["no such tag"]))
    elif name == "selector_type":
        line.selector = draw(st.sampled_from([2.5, True, {"a": 1}, b"x", (0, 1, 2), frozenset({0}), nn.ReLU()]))
        if line.selector == (0, 1, 2):
            line.tag = None  # three items: a tuple selector, not (selector, tag)
    elif name == "empty_selector":
        line.selector = draw(st.sampled_from([[], slice(m, None), slice(0, 0), slice(None, None, 0), None]))
    elif name == "bad_tag":
        line.tag = draw(st.sampled_from([3, "", None.__class__, ("a",)]))
    elif name == "duplicate_tag":
        line.tag = draw(st.sampled_from(earlier_tags))
    elif name == "extra_kwarg":
        line.kwargs["no_such_argument"] = 1
    elif name == "impossible_stride":
        src = lines[line.sources[0]]
        dim = draw(st.integers(0, rank - 1))
        factor = draw(st.sampled_from((Fraction(3, 2), Fraction(2, 3), Fraction(5, 2))))
        if line.kind != "convT":
            factor = draw(st.sampled_from((Fraction(3, 2), Fraction(1, 2), Fraction(5, 3))))
            ratios = list(src.ratios)
            ratios[dim] = src.ratios[dim] * factor
        else:
            ratios = list(src.ratios)
            ratios[dim] = src.ratios[dim] / factor
        line.ratios = tuple(ratios)
        line.shape = tuple(float(r) if r.denominator != 1 else int(r) for r in ratios)
    elif name == "kernel":
        if line.args:
            line.args = (draw(_bad_kernel(rank)),) + line.args[1:]
        else:
            line.kwargs["kernel_size"] = draw(_bad_kernel(rank))
    elif name == "wrong_rank":
        other = draw(st.sampled_from([r for r in (1, 2, 3) if r != rank]))
        families = (CONVS, TCONVS, {r: (MAXPOOLS[r],) for r in MAXPOOLS}, {r: (AVGPOOLS[r],) for r in AVGPOOLS})
        for family in families:
            if line.cls in family[rank]:
                line.cls = family[other][family[rank].index(line.cls)]
        # written out per dim, so the rank of the line is visible at build time
        line.shape = (
            f"({', '.join(map(str, line.sizes))},)" if line.sizes else tuple(scalar(draw, r) for r in line.ratios)
        )
    elif name == "groups":
        src = lines[line.sources[0]]
        line.kwargs["groups"] = draw(
            st.sampled_from([0, -2, 2.5, "2", src.channels * line.channels + 1, src.channels * line.channels * 7 + 5])
        )
    elif name == "conv_keyword":
        key, value = draw(
            st.sampled_from(
                [
                    ("dilation", 0),
                    ("dilation", "2"),
                    ("bias", "yes"),
                    ("padding_mode", "mirror"),
                    ("norm", 3),
                    ("act", "relu"),
                    ("padding_mode", "reflect") if line.kind == "convT" else ("dilation", (1,) * (rank + 1)),
                ]
            )
        )
        line.kwargs[key] = value
    elif name == "channels_mismatch":
        line.channels = line.channels + draw(st.integers(1, 3))
    elif name == "interp_mode":
        line.args, line.kwargs = draw(
            st.sampled_from(
                [(("cubic",), {}), (("nearest",), {"align_corners": True}), ((3,), {}), (("linear", "x"), {})]
            )
        )
    elif name == "block_inside":
        key, value = draw(st.sampled_from([("hidden", 0), ("hidden", -1), ("kernel_size", 0), ("rank", 4)]))
        if key == "rank":
            line.args = (4,) + line.args[1:]
        elif key == "kernel_size":
            line.args = line.args[:1] + (0,)
        else:
            line.kwargs[key] = value
    elif name == "merge_arg":
        line.args = (draw(st.sampled_from([1, "x", None])),)
    return Definition(rank, lines)


class BrokenLine:
    """A line replaced by something that is not a line at all; written as it is."""

    def __init__(self, written) -> None:
        self.value = written
        self.tag = None
        self.repeat_group = None
        self.kind = "broken"

    def written(self):
        return self.value


MUTATIONS = (
    "channels", "shape", "dims_form", "line_form", "input_selector", "input_arg", "self_selector", "before_zero",
    "unknown_tag", "selector_type", "empty_selector", "bad_tag", "extra_kwarg", "duplicate_tag", "impossible_stride",
    "kernel", "wrong_rank", "groups", "conv_keyword", "channels_mismatch", "interp_mode", "block_inside", "merge_arg",
)  # fmt: skip


@st.composite
def invalid_definitions(draw):
    # the mutation first, so that every kind is tried about as often; then a line it applies to
    name = draw(st.sampled_from(MUTATIONS))
    for _ in range(4):
        definition = draw(definitions(max_steps=6))
        lines = [m for m in range(len(definition.lines)) if name in mutations(definition, m)]
        if lines:
            break
    if lines:
        m = draw(st.sampled_from(lines))
    else:
        m = draw(st.integers(0, len(definition.lines) - 1))
        name = draw(st.sampled_from(mutations(definition, m)))
    return mutate(draw, definition, m, name), m, name


@settings(max_examples=max(settings().max_examples * 3, 1))
@given(case=invalid_definitions())
def test_random_invalid_definitions_fail_naming_their_line(case, example_counts):
    definition, m, name = case
    lines = definition.materialize()
    note(f"mutation {name} of line {m}: {lines!r}")
    with pytest.raises(NeurlinkError) as caught:
        nv.build(lines)
    message = str(caught.value)
    # the message starts with the path of the broken line: ``line 4 ('c'): ...`` or ``line 4 > line 1: ...``
    assert re.match(rf"line {m}\b", message), message
    assert isinstance(caught.value, neurlink.DefinitionError)
    assert caught.value.where[0][0] == m
    example_counts["invalid definitions rejected naming their line"] += 1
    example_counts[f"invalid, by mutation: {name}"] += 1


@given(shape=SHAPE_GARBAGE)
def test_garbage_shapes_are_dims_errors(shape, example_counts):
    with pytest.raises(neurlink.DimsError):
        nv.ShapeSpec(shape)
    example_counts["garbage shapes rejected"] += 1


@given(text=st.text(max_size=40))
def test_any_shape_string_parses_or_is_a_dims_error(text, example_counts):
    """A shape string is read as a literal: any text gives a shape or a DimsError, never another error."""
    try:
        spec = nv.ShapeSpec(text)
    except neurlink.DimsError:
        assert not _is_literal_shape(text)
    else:
        assert _is_literal_shape(text) and spec.is_absolute
    example_counts["random shape strings read as literals or rejected"] += 1


# --- what the fuzzing found, kept as plain regression tests ------------------------------------


def test_avg_pool3d_pads_inputs_smaller_than_its_kernel():
    # torch's avg_pool3d refuses an input smaller than the kernel even when its padding covers it
    net = nv.build([((2, 1), nv.Input()), ((2, 1), nv.AvgPool3d(3)), ((2, 2), nv.AvgPool3d(3))])
    for base in [(1, 1, 1), (5, 1, 3), (2, 3, 1)]:
        outputs = net(torch.randn(1, 2, *base), output_intermediate=True)
        assert [tuple(y.shape[2:]) for y in outputs] == [e.dims[0].shape.size(base) for e in net.lines]
    x = torch.randn(1, 2, 4, 5, 6)
    torch.testing.assert_close(net(x, outputs=[1])[0], nn.AvgPool3d(3, 1, 1, count_include_pad=False)(x))


def test_transposed_conv_between_absolute_shapes_with_a_crop():
    # stride 1, even kernel between absolute sizes: one element is cropped at the end
    net = nv.build([((1, 1), nv.Input()), ((1, "(3,)"), nv.Interpolate()), ((2, "(3,)"), nv.ConvTransposed1d(2))])
    assert net(torch.randn(1, 1, 7)).shape == (1, 2, 3)


@pytest.mark.parametrize("ratio", [1e-9, 1e-300, 4e-7, (1, 1e-12)])
def test_a_ratio_too_small_to_read_is_a_dims_error(ratio):
    with pytest.raises(neurlink.DimsError, match=r"^line 1: .*\n    shape .* is too small"):
        nv.build([((1, 1), nv.Input()), ((1, ratio), nv.Interpolate())])


@pytest.mark.parametrize("ratio", [2, 0.5, (1, 2)])
def test_the_base_input_declares_ratio_1(ratio):
    # ratios are relative to the base Input's actual size, so its own ratio can only be 1
    with pytest.raises(neurlink.DefinitionError, match=r"^line 0 \('x'\): .*\n    this Input gives the base shape"):
        nv.build([((3, ratio), nv.Input["x"]()), ((4, 2), nv.Conv2d(3))])
    # another Input may be the base; then the first one is at a ratio of it
    net = nv.build([((3, ratio), nv.Input()), ((3, 1), nv.Input(base_shape=True)), ((3, ratio), nv.Identity[0]())])
    sizes = nv.ShapeSpec(ratio).size((6, 7))
    assert net([torch.randn(1, 3, *sizes), torch.randn(1, 3, 6, 7)]).shape == (1, 3, *sizes)
