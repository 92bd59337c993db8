"""The line table: resolving selectors and building each line's module, in order.

Both the top-level network and a nerve that adds its own sub-lines own a
:class:`LineTable`. The table holds only plain data about each line (what it
selects, what it declared, which child module makes it), which is what the
forward is generated from (``forward_graph.py``) and what ``print(net)`` shows.
"""

from __future__ import annotations

import copy
import inspect
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .context import BuildContext, Link, building
from .errors import (
    DefinitionError,
    DimsError,
    LineIndexError,
    LineTagError,
    LineTypeError,
    NerveArgumentError,
    NeurlinkError,
    SelectorError,
    SelectorIndexError,
    SelectorTypeError,
    UnexpectedArgumentError,
    UnknownTagError,
    did_you_mean,
)
from .lines import PREVIOUS, NerveDef, OutputOf, _fmt, flatten, parse_line, written
from .shapes import Dims, Layout, ShapeSpec, layout_of
from .sizes import append_step, steps_text

__all__ = ["Ref", "Entry", "LineTable", "instantiate"]

_SELECTORS = (
    "omitted (the previous line), an int (>= 0 absolute, < 0 counted back), a tag, "
    "a slice whose bounds may be tags, a list of these, None (no input), or nv.output(line, k)"
)


@dataclass(frozen=True)
class Ref:
    """A selected value: line ``line``, all its outputs (``output=None``) or output ``output``."""

    line: int
    output: int | None = None


@dataclass
class Entry:
    """Everything the forward and the summaries need to know about one built line."""

    index: int
    tag: str | None
    dims: tuple[Dims, ...]
    written: str
    refs: tuple[Ref, ...] = ()
    name: str | None = None  # child module name; None for an input line
    input_position: int | None = None  # k-th input of the table
    base: bool = False  # the Input that defines the base shape
    uses_base_shape: bool = False
    spatial_rank: int | None = None  # number of spatial dims, where a nerve or a shape fixes it
    children: list[int] = field(default_factory=list)  # lines selecting this one
    dtype: torch.dtype | None = None  # an Input's declared dtype (None: the parameters' dtype)
    in_place: bool = False  # a plain module of inplace=True: it overwrites the line it reads

    @property
    def is_input(self) -> bool:
        return self.input_position is not None


def _tag_of(line) -> str | None:
    if isinstance(line, tuple) and line and isinstance(line[-1], NerveDef):
        tag = line[-1].tag
        return tag if isinstance(tag, str) else None
    return None


def _tagged_later(error: UnknownTagError, tag: str, index: int, tags: list[str | None]) -> None:
    """Say so where the tag that line ``index`` selects is a later line's (``tags``: this line's and theirs)."""
    if tag not in tags:
        return
    later = index + tags.index(tag)
    where = "this line's own tag" if later == index else f"the tag of line {later}, after line {index}"
    error.reason = f"no earlier line is tagged {tag!r}: it is {where} (a line reads only the lines before it)"
    if later != index:
        error.allowed = f"line {later} moved before line {index}, or " + (error.allowed or "a tag given earlier")


class LineTable:
    """The lines of one network or nerve, built one after another."""

    def __init__(self, inputs: tuple[Link, ...] | None = None) -> None:
        # ``inputs`` is given for a nerve's own sub-lines: its lines 0.. are its inputs.
        self.nested = inputs is not None
        self.entries: list[Entry] = []
        self.tags: dict[str, int] = {}
        self._sized_lines = False  # whether a line so far has a sizing (neurlink.sizes): else every line's is None
        for position, link in enumerate(inputs or ()):
            dims = ", ".join(repr(d) for d in link.dims)
            self.entries.append(Entry(position, None, link.dims, f"({dims}, Input())", input_position=position))
            self._sized_lines = self._sized_lines or any(d.shape.sizing is not None for d in link.dims)

    # --- queries -------------------------------------------------------------------------

    @property
    def input_entries(self) -> list[Entry]:
        return [e for e in self.entries if e.is_input]

    @property
    def uses_base_shape(self) -> bool:
        return any(e.uses_base_shape for e in self.entries)

    def input_rank(self, entry: Entry) -> int | None:
        """The spatial rank of an Input line: written in its shape, or that of a line it feeds."""
        if entry.spatial_rank is not None:
            return entry.spatial_rank
        return next((r for c in entry.children if (r := self.entries[c].spatial_rank) is not None), None)

    @property
    def base_entry(self) -> Entry:
        inputs = self.input_entries
        return next((e for e in inputs if e.base), inputs[0])

    def index_of(self, name) -> int:
        """Index of a line named at call time (``outputs=[...]``): a tag, or an int (negative from the end)."""
        if isinstance(name, str):
            if name not in self.tags:
                raise LineTagError(f"no line is tagged {name!r}{did_you_mean(name, self.tags)}")
            return self.tags[name]
        if not isinstance(name, int) or isinstance(name, bool):
            kind = "a slice" if isinstance(name, slice) else f"{name!r} of type {type(name).__name__}"
            raise LineTypeError(
                f"{kind} names no line: a line is named by an int index (negative from the end) or a tag",
                allowed="net[3], net[-1], net['layer4']; every line's module: list(net), every line: net.lines",
            )
        if -len(self.entries) <= name < len(self.entries):
            return name % len(self.entries)
        raise LineIndexError(
            f"{name!r} names no line of this network ({len(self.entries)} lines); give a tag or a line index"
        )

    # --- building ------------------------------------------------------------------------

    def add(self, owner: nn.Module, lines) -> list[int]:
        """Build ``lines`` (a line or a nested list of lines) as children of ``owner``."""
        indices = []
        flat = list(flatten(lines if isinstance(lines, list) else [lines]))
        for position, line in enumerate(flat):
            index = len(self.entries)
            try:
                self.entries.append(self._build_line(owner, index, line))
            except DefinitionError as error:
                if isinstance(error, UnknownTagError) and error.tag is not None and not error.where:
                    _tagged_later(error, error.tag, index, [_tag_of(other) for other in flat[position:]])
                error.locate(index, _tag_of(line), written(line))
                raise
            indices.append(index)
        return indices

    def _build_line(self, owner: nn.Module, index: int, line) -> Entry:
        spec = parse_line(line)
        nerve = spec.nerve
        if isinstance(nerve, NerveDef) and not getattr(nerve.cls, "wraps_module", False):
            tag = self._check_tag(nerve.tag)
            if getattr(nerve.cls, "is_input", False):
                return self._input_entry(index, tag, spec)
            refs = self._resolve_top(nerve.selector, index)
            self._check_not_overwritten(refs)
            links = tuple(self._link(ref) for ref in refs)
            check_layouts(nerve.cls, links, spec.dims)
            rank = _line_rank(nerve.cls, links, spec.dims)
            dims = self._sized(links, spec.dims)
            module = instantiate(nerve, links, dims)
            sized = getattr(module, "target_dims", None)
            if isinstance(sized, list):
                dims = tuple(sized)  # a conv or pool of another geometry sizes its own output
            kind = nerve.cls
        else:
            tag, selector = None, PREVIOUS
            if isinstance(nerve, NerveDef):  # nv.Module[selector, tag](module): a plain module reading chosen lines
                tag, selector = self._check_tag(nerve.tag), nerve.selector
                nerve = nerve.cls.module_of(nerve)  # type: ignore[attr-defined]  # nv.Module's
            refs = self._resolve_top(selector, index)
            self._check_not_overwritten(refs)
            links = tuple(self._link(ref) for ref in refs)
            check_layouts(nerve, links, spec.dims)
            rank = _line_rank(nerve, links, spec.dims)
            dims = self._sized(links, spec.dims)
            kind = nerve
            # A module written in the lines is the definition's, not the network's: every line of every
            # build gets its own copy, so that two networks built from one list (a student and its teacher)
            # or a line repeated ([line] * 3) share no parameters, buffers or running statistics.
            try:
                module = copy.deepcopy(nerve)
            except Exception as error:
                raise DefinitionError(
                    f"{type(nerve).__name__} cannot be copied ({type(error).__name__}: {error}): every build copies"
                    " a module written in the lines, so that networks built from one list share no state",
                    allowed="a module that copy.deepcopy can copy (no locks, open files or non-leaf tensors as"
                    " attributes), or a nerve that makes the module when the line is built",
                ) from error
        name = str(index)
        owner.add_module(name, module)
        reads_its_rank = rank is not None and (_fixed_rank(kind) is not None or getattr(kind, "keeps_rank", False))
        for ref in refs:
            source = self.entries[ref.line]
            source.children.append(index)
            if reads_its_rank and source.spatial_rank is None:
                source.spatial_rank = rank  # e.g. an Input written with one ratio, read by a Conv2d line

        if tag is not None:
            self.tags[tag] = index
        uses_base = bool(getattr(module, "uses_base_shape", False))
        self._sized_lines = self._sized_lines or any(d.shape.sizing is not None for d in dims)
        in_place = not isinstance(kind, type) and getattr(module, "inplace", False) is True  # a plain module's
        return Entry(
            index, tag, dims, spec.written, refs, name, uses_base_shape=uses_base, spatial_rank=rank, in_place=in_place
        )

    def _check_not_overwritten(self, refs) -> None:
        """A line must not read a line that an earlier line overwrote in place (``nn.ReLU(inplace=True)``
        reading line 1 changes line 1's tensor): it would read the overwritten values, not the line's."""
        for ref in refs:
            source = self.entries[ref.line]
            for child in source.children:
                entry = self.entries[child]
                if entry.in_place:
                    raise DefinitionError(
                        f"this line reads line {source.index}, which line {entry.index} {entry.written} overwrites in"
                        f" place before it: it would read line {entry.index}'s values, not line {source.index}'s",
                        allowed=f"line {entry.index} without inplace=True, or this line reading line {entry.index}",
                    )

    def _sized(self, links: tuple[Link, ...], dims: tuple[Dims, ...]) -> tuple[Dims, ...]:
        """The declared dims, sized as the lines read compute them (``neurlink.sizes``): unchanged while
        every conv and pool so far pads "same" (each line at ``ceil(base / ratio)``)."""
        if not self._sized_lines:
            return dims
        return tuple(
            Dims(d.channels, d.shape.with_sizing(self._sizing_of(d.shape, links))) if d.shape.ratios else d
            for d in dims
        )

    def _sizing_of(self, shape: ShapeSpec, links: tuple[Link, ...]):
        """How a line at ``shape`` is sized: as the lines it reads at its own ratio (which must agree);
        a "same" stride after the first line read; or, growing (``Interpolate``, a transposed conv), as the
        last line before it at the ratio it returns to, the encoder's line it undoes."""
        read = [(link, d.shape) for link in links for d in link.dims if d.shape.ratios]
        rank = next((len(s.sizing) for _, s in read if s.sizing is not None), None)
        if rank is None:
            rank = next((len(d.shape.sizing) for e in self.entries for d in e.dims if d.shape.sizing), 1)
        ratios = _ratios(shape, rank)
        alike = [(link, s) for link, s in read if _ratios(s, rank) == ratios]
        if alike:
            sizings = {s.sizing_for(rank) for _, s in alike}
            if len(sizings) > 1:
                shown = "; ".join(
                    f"line {link.index}: " + ", ".join(steps_text(dim) for dim in s.sizing_for(rank))
                    for link, s in alike
                )
                raise DimsError(
                    f"the lines read declare ratio {shape!r}, but their sizes follow the geometry of different"
                    f" lines before them ({shown})",
                    allowed="lines of one size: the same convs and pools (padding, ceil_mode) on every path",
                )
            return sizings.pop()
        if read:
            sizing = read[0][1].sizing_for(rank)
            first = _ratios(read[0][1], rank)
            strides = [ratio / start_ratio for ratio, start_ratio in zip(ratios or (), first or ())]
            if ratios and first and all(s.denominator == 1 and s >= 1 for s in strides):
                return tuple(append_step(dim, ("ceil", int(s))) for dim, s in zip(sizing, strides))
        on_path = self._ancestors(links)  # the line it undoes is on its own input path, not a side branch
        for entry in reversed(self.entries):
            if entry.index not in on_path:
                continue
            for d in entry.dims:
                if d.shape.ratios and _ratios(d.shape, rank) == ratios:
                    return d.shape.sizing_for(rank)
        return None

    def _ancestors(self, links: tuple[Link, ...]) -> set[int]:
        """The lines that ``links`` read, directly or through the lines between."""
        seen: set[int] = set()
        stack = [link.index for link in links]
        while stack:
            index = stack.pop()
            if index in seen or not 0 <= index < len(self.entries):
                continue
            seen.add(index)
            stack.extend(ref.line for ref in self.entries[index].refs)
        return seen

    def _check_tag(self, tag) -> str | None:
        if tag is None:
            return None
        if not isinstance(tag, str) or not tag:
            # Concat[0, 1] is Python's Concat[(0, 1)]: a selector and a tag, where several lines were meant
            several = " (to read several lines, select a list: Concat[[0, 1]])" if isinstance(tag, int) else ""
            raise SelectorError(
                f"tag {tag!r} is not a non-empty string{several}",
                allowed="Nerve[selector, 'tag'](...) with a string tag, e.g. Conv2d[-1, 'c1'](3)",
            )
        if not tag.isprintable():  # an escape sequence (from a config file) would reach every terminal it is shown on
            raise SelectorError(
                f"tag {tag!r} holds characters that are not printable", allowed="a tag of printable characters"
            )
        if tag in self.tags:
            raise SelectorError(f"tag {tag!r} is already used by line {self.tags[tag]}", allowed="a tag used once")
        return tag

    def _input_entry(self, index: int, tag: str | None, spec) -> Entry:
        nerve = spec.nerve
        if self.nested:
            raise DefinitionError(
                "Input lines belong to the top level of a network",
                allowed="inside a nerve, lines 0.. are already the nerve's own inputs",
            )
        if nerve.selector is not PREVIOUS and nerve.selector is not None:
            raise SelectorError(
                f"an Input selects nothing, but {nerve.selector!r} was given",
                allowed="Input() or Input['tag']()",
            )
        _bind(nerve)
        base = nerve.kwargs.get("base_shape", nerve.args[0] if nerve.args else False)
        if not isinstance(base, bool):
            raise NerveArgumentError(f"base_shape={base!r} is not a bool", allowed="Input(base_shape=True)")
        dtype = nerve.kwargs.get("dtype", nerve.args[1] if len(nerve.args) > 1 else None)
        if dtype is not None and not isinstance(dtype, torch.dtype):
            raise NerveArgumentError(
                f"dtype={dtype!r} is not a torch.dtype", allowed="Input(dtype=torch.uint8), torch.bool, ... or None"
            )
        if len(spec.dims) != 1:
            raise DefinitionError(f"an Input has one output, but {len(spec.dims)} dims were declared")
        if base and any(e.base for e in self.entries):
            raise DefinitionError(
                f"line {self.base_entry.index} is already the base Input",
                allowed="at most one Input(base_shape=True)",
            )
        shape = spec.dims[0].shape
        if shape.is_tokens and shape.extra:
            raise DimsError(
                f"an Input of tokens declares {shape!r}, but extra tokens are made by a line of their own",
                allowed="nv.tokens(r) or nv.tokens(length=n) for an Input; nv.ClassToken() after it",
            )
        if base and not shape.is_absolute and set(shape.ratios) != {1}:
            raise DefinitionError(
                f"the base Input declares ratio {shape!r}, but ratios are relative to it",
                allowed="ratio 1 (or an absolute shape) for the base Input",
            )
        if tag is not None:
            self.tags[tag] = index
        return Entry(
            index,
            tag,
            spec.dims,
            spec.written,
            input_position=len(self.input_entries),
            base=base,
            # a sequence given as tokens lies on the 1-d grid of its length, unless its ratio says more
            spatial_rank=shape.rank if not shape.is_tokens or shape.ratios is None else shape.rank or 1,
            dtype=dtype,
        )

    # --- selectors -----------------------------------------------------------------------

    def _resolve_top(self, selector, index: int) -> tuple[Ref, ...]:
        if selector is PREVIOUS:
            if index == 0:
                raise SelectorError(
                    "line 0 has no previous line to take its input from",
                    allowed="an Input() as the first line",
                )
            return (Ref(index - 1),)
        refs = self._resolve(selector, index)
        if not refs and selector is not None:
            raise SelectorError(
                f"selector [{_fmt(selector)}] selects no line (line {index} can select lines 0..{index - 1})",
                allowed=_SELECTORS,
            )
        return tuple(refs)

    def _resolve(self, selector, index: int) -> list[Ref]:
        if selector is None:
            return []
        if isinstance(selector, bool):
            raise SelectorTypeError(f"selector {selector!r} is a bool", allowed=_SELECTORS)
        if isinstance(selector, int):
            line = selector if selector >= 0 else index + selector
            if not 0 <= line < index:
                raise SelectorIndexError(
                    f"selector {selector} points to line {line}, but line {index} can only select lines 0..{index - 1}",
                    allowed=f"an int in {-index}..{index - 1}",
                )
            return [Ref(line)]
        if isinstance(selector, str):
            if selector not in self.tags:
                unknown = UnknownTagError(
                    f"no earlier line is tagged {selector!r}{did_you_mean(selector, self.tags)}",
                    allowed="a tag given earlier as Nerve[selector, 'tag'](...)"
                    + (f"; tags so far: {', '.join(map(repr, self.tags))}" if self.tags else ""),
                )
                unknown.tag = selector  # (add says which later line has it)
                raise unknown
            return [Ref(self.tags[selector])]
        if isinstance(selector, slice):
            bounds: list[Any] = [
                self._resolve(b, index)[0].line if isinstance(b, str) else b for b in (selector.start, selector.stop)
            ]
            step = selector.step
            if not all(b is None or isinstance(b, int) and not isinstance(b, bool) for b in (*bounds, step)):
                raise SelectorError(
                    f"slice [{_fmt(selector)}] has a bound that is not an int or a tag", allowed=_SELECTORS
                )
            if step == 0:
                raise SelectorError(f"slice [{_fmt(selector)}] has step 0", allowed=_SELECTORS)
            return [Ref(line) for line in range(index)[slice(bounds[0], bounds[1], step)]]
        if isinstance(selector, list):
            return [ref for item in selector for ref in self._resolve(item, index)]
        if isinstance(selector, OutputOf):
            refs = self._resolve(selector.selector, index)
            selected = self.entries[refs[0].line]
            if selector.index >= len(selected.dims):
                raise SelectorIndexError(
                    f"{selector!r}: line {selected.index} has {len(selected.dims)} output(s)",
                    allowed=f"an output index in 0..{len(selected.dims) - 1}",
                )
            if len(selected.dims) == 1:  # the one output of a line is its value itself
                return [Ref(selected.index)]
            return [Ref(selected.index, selector.index)]
        raise SelectorTypeError(f"selector {selector!r} of type {type(selector).__name__}", allowed=_SELECTORS)

    def _link(self, ref: Ref) -> Link:
        entry = self.entries[ref.line]
        dims = entry.dims if ref.output is None else (entry.dims[ref.output],)
        return Link(ref.line, entry.tag, dims, ref.output, entry.spatial_rank)


# torch's modules of a fixed spatial rank, by family: what a plain module (or a subclass of one) of
# these families reads and makes, and the name of its sibling for another rank in an error.
_RANKED_FAMILIES = (
    "Conv", "ConvTranspose", "LazyConv", "LazyConvTranspose", "BatchNorm", "LazyBatchNorm", "InstanceNorm",
    "LazyInstanceNorm", "MaxPool", "AvgPool", "AdaptiveMaxPool", "AdaptiveAvgPool", "LPPool", "FractionalMaxPool",
    "MaxUnpool", "Dropout", "ConstantPad", "ReflectionPad", "ReplicationPad", "ZeroPad", "CircularPad",
)  # fmt: skip
_TORCH_RANKS: dict[type, tuple[str, int]] = {
    cls: (family, rank)
    for family in _RANKED_FAMILIES
    for rank in (1, 2, 3)
    if isinstance(cls := getattr(nn, f"{family}{rank}d", None), type)
}
_ALSO_VECTORS = (nn.BatchNorm1d, nn.LazyBatchNorm1d)  # (N, C, L) or vectors (N, C)


def _torch_family(cls: type) -> tuple[str, int] | None:
    return next((_TORCH_RANKS[klass] for klass in cls.__mro__ if klass in _TORCH_RANKS), None)


def torch_rank(cls: type) -> int | None:
    """The spatial rank a torch module class (or a subclass of one) is made for (``BatchNorm2d``: 2), or None."""
    family = _torch_family(cls)
    return family[1] if family is not None else None


def _sibling(cls: type, rank: int) -> str | None:
    """The name of the module of ``cls``'s family made for ``rank`` (``MaxPool1d`` for ``MaxPool2d``)."""
    family = _torch_family(cls)
    if family is not None:
        sibling = getattr(nn, f"{family[0]}{rank}d", None) if rank else None
    else:  # a nerve: its module's class of the same name for that rank (nv.Conv1d beside nv.Conv2d)
        own = getattr(cls, "spatial_rank", None)
        name = cls.__name__
        stem = name[: -len(f"{own}d")] if own and name.endswith(f"{own}d") else None
        sibling = getattr(sys.modules.get(cls.__module__), f"{stem}{rank}d", None) if stem and rank else None
        if getattr(sibling, "spatial_rank", None) != rank:
            sibling = None
    return sibling.__name__ if sibling is not None else None


def _fixed_rank(kind) -> int | None:
    """The spatial rank a line's nerve (a class) or plain module (an instance) works in, if fixed."""
    cls = kind if isinstance(kind, type) else type(kind)
    rank = getattr(cls, "spatial_rank", None)
    return rank if rank is not None else torch_rank(cls)


_EVERY_LAYOUT: frozenset[Layout] = frozenset(("map", "vector", "tokens"))
_CHANNELS_FIRST: frozenset[Layout] = frozenset(("map", "vector"))
_WHAT = {"map": "a channels-first map (N, C, *spatial)", "vector": "vectors (N, C)", "tokens": "tokens (N, L, C)"}
# torch's modules that act on the last dim: channels of tokens and vectors, but a map's last spatial dim
_LAST_DIM = (nn.LayerNorm, nn.RMSNorm, nn.Linear, nn.LazyLinear, nn.Bilinear)


def nerve_layouts(cls: type) -> frozenset[Layout]:
    """The layouts a line's nerve or module class reads: a nerve's ``layouts``; neurlink's own nerves
    that declare none, and torch's modules of a fixed rank, read channels-first maps and vectors; any
    other class (a plain activation, a nerve of a user's own) reads any."""
    declared = getattr(cls, "layouts", None)
    if declared is not None:
        return frozenset(declared)
    if torch_rank(cls) is not None or getattr(cls, "spatial_rank", None) is not None:
        return _CHANNELS_FIRST
    if cls.__module__.startswith("neurlink.") and issubclass(cls, nn.Module) and hasattr(cls, "_finish_build"):
        return _CHANNELS_FIRST
    return _EVERY_LAYOUT


def check_layouts(kind, links: tuple[Link, ...], dims: tuple[Dims, ...]) -> None:
    """Refuse a line whose nerve (a class) or plain module (an instance) reads a layout it does not
    work on: a conv after a token line, attention after a map line, a norm over the wrong axis."""
    cls = kind if isinstance(kind, type) else type(kind)
    name = cls.__name__
    accepted = nerve_layouts(cls)
    for link in links:
        layout = layout_of(link.dims)
        if layout in accepted:
            if layout == "map" and isinstance(kind, _LAST_DIM) and _acts_on_channels(kind, link, rank_of(link)):
                raise DimsError(
                    f"nn.{name} acts on the last dim, but line {link.index} is a channels-first map (N, C, *spatial),"
                    " whose last dim is a spatial one",
                    allowed=f"nv.{'LayerNorm' if 'Norm' in name else 'PointwiseLinear'}() for its channels,"
                    f" or a line ((C, nv.tokens(r)), nv.ToTokens()) first to make tokens (N, L, C)",
                )
            continue
        if layout == "tokens":
            allowed = (
                "a line ((C, r), nv.ToMap()) first, folding the tokens back onto their grid at ratio r,"
                " or a nerve of tokens (nv.Linear, nv.LayerNorm, nv.SelfAttention, nv.MLP)"
            )
        elif "tokens" in accepted and len(accepted) == 1:
            allowed = f"a line ((C, nv.tokens(r)), nv.ToTokens()) first, making tokens of line {link.index}'s grid"
        else:
            allowed = "a nerve of " + " or ".join(_WHAT[k] for k in sorted(accepted))
        raise DimsError(
            f"{name} works on {' or '.join(_WHAT[k] for k in sorted(accepted))},"
            f" but its input line {link.index} holds {_WHAT[layout]}",
            allowed=allowed,
        )


def rank_of(link: Link) -> int | None:
    return link.rank if link.rank is not None else link.shape.rank


def _acts_on_channels(module: nn.Module, link: Link, rank: int | None) -> bool:
    """Whether a last-dim module on a map line means its channels: a Linear sized for them, or a norm over
    anything but the whole map (``nn.LayerNorm([C, 7, 7])`` on a ``(C, "(7, 7)")`` line normalises it all)."""
    normalized = getattr(module, "normalized_shape", None)
    if normalized is None:
        return getattr(module, "in_features", None) == link.channels
    shape = link.shape
    whole = (link.channels, *shape.absolute_for(rank)) if shape.is_absolute and rank is not None else None
    return tuple(normalized) != whole


def _line_rank(kind, links: tuple[Link, ...], dims: tuple[Dims, ...]) -> int | None:
    """The number of spatial dims of a line: fixed by its nerve (Conv2d: 2), carried through from
    its inputs by a nerve that keeps it (Add, Concat, Identity, Interpolate), or written in its shape.
    A nerve of a fixed rank must read lines of that rank.
    """
    declared = {d.shape.rank for d in dims} - {None}
    rank = _fixed_rank(kind)
    if rank is not None:
        cls = kind if isinstance(kind, type) else type(kind)
        name = cls.__name__
        accepted = {rank, 0} if issubclass(cls, _ALSO_VECTORS) else {rank}
        for link in links:
            if link.rank is not None and link.rank not in accepted:
                if link.rank == 0:
                    raise DimsError(
                        f"{name} is {rank}d, but its input line {link.index} holds vectors (N, C)",
                        allowed="nv.Linear() or a module of vectors after a vector line",
                    )
                other = _sibling(cls, link.rank)
                raise DimsError(
                    f"{name} is {rank}d, but its input line {link.index} is {link.rank}d",
                    allowed=(f"{other} after a {link.rank}d line" if other else f"a {link.rank}d nerve")
                    + f", or {rank}d lines before {name}",
                )
            if link.rank is not None:
                rank = link.rank
    if rank is None and getattr(kind, "keeps_rank", False):
        ranks = {link.index: link.rank for link in links if link.rank is not None}
        if len(set(ranks.values())) > 1:
            raise DimsError(
                "the selected lines have different numbers of spatial dims: "
                + ", ".join(f"line {index} is {r}d" for index, r in ranks.items()),
                allowed="inputs of one spatial rank",
            )
        if ranks:
            index, rank = next(iter(ranks.items()))
            wrong = declared - {rank}
            if wrong:
                raise DimsError(
                    f"the line declares a shape with {wrong.pop()} spatial dims, but its input line {index} is {rank}d",
                    allowed=f"a shape with {rank} values, or one value for every dim",
                )
    if rank is None and len(declared) == 1:
        rank = declared.pop()
    if rank is None and any(d.shape.is_tokens and d.shape.ratios is not None for d in dims):
        # tokens lie on the grid of the tokens they are made from, whatever makes them (a plain module too)
        rank = next((link.rank for link in links if link.shape.is_tokens and link.rank is not None), None)
    return rank


_SIGNATURES: dict[type, inspect.Signature] = {}


class _Shown:
    """A default value as an argument error shows it: source-like text (see lines._fmt)."""

    def __init__(self, value: Any) -> None:
        self.text = _fmt(value)

    def __repr__(self) -> str:
        return self.text


def _bind(nerve: NerveDef) -> None:
    """Check the arguments against the nerve's ``__init__`` before making anything."""
    cls = nerve.cls
    signature = _SIGNATURES.get(cls)
    if signature is None:
        signature = _SIGNATURES[cls] = inspect.signature(cls.__init__)
    try:
        signature.bind(None, *nerve.args, **nerve.kwargs)
    except TypeError as error:
        # as a call is written: the names and defaults (act=ReLU, not <class ...> or a sentinel), no type hints
        meanings = cls.shown_defaults() if hasattr(cls, "shown_defaults") else {}
        params = [
            p.replace(
                annotation=p.empty, default=p.default if p.default is p.empty else _Shown(meanings.get(name, p.default))
            )
            for name, p in signature.parameters.items()
            if name != "self"
        ]
        shown = str(signature.replace(parameters=params, return_annotation=inspect.Signature.empty))[1:-1]
        reason = f"{cls.__name__}: {error}"
        notes = []
        derived = {"in_channels", "out_channels", "stride", "output_padding"} & set(nerve.kwargs)
        if derived and getattr(cls, "spatial_rank", None) is not None:
            notes.append(
                f"{', '.join(sorted(derived))} come{'s' if len(derived) == 1 else ''} from the dims the lines"
                " declare: the stride is the ratio between the line read and this one, e.g. (64, 2) after (3, 1)"
                " is stride 2"
            )
        elif "positional" in str(error) and getattr(cls, "spatial_rank", None) is not None:
            if "kernel_size" in signature.parameters:
                notes.append(
                    "channels, stride and padding come from the line's dims: give the kernel size, then keywords"
                )
            else:
                notes.append("channels come from the line's dims: give keywords")
        notes += _torch_twin(nerve)
        if notes:
            reason += f" ({'; '.join(notes)})"
        raise UnexpectedArgumentError(reason, allowed=f"{cls.__name__}({shown})") from None


def _torch_twin(nerve: NerveDef) -> list[str]:
    """For a nerve named as a torch.nn class (``BatchNorm2d``, ``Conv2d``) given what that class takes
    (``BatchNorm2d(8)``): the note that torch's module is written another way; none otherwise."""
    name = nerve.cls.__name__
    twin = getattr(nn, name, None)
    if not (isinstance(twin, type) and issubclass(twin, nn.Module)) or twin is nerve.cls:
        return []
    try:
        inspect.signature(twin).bind(*nerve.args, **nerve.kwargs)
    except (TypeError, ValueError):
        return []  # not torch's arguments either
    call = ", ".join([_fmt(a) for a in nerve.args] + [f"{k}={_fmt(v)}" for k, v in nerve.kwargs.items()])
    return [f"torch's module is nn.{name}({call}): in a file write nn.{name}(...), in Python torch.nn.{name}(...)"]


def _initialized(error: AttributeError) -> bool:
    """False where the nerve raising ``error`` had not run ``Nerve.__init__`` yet."""
    obj = getattr(error, "obj", None)  # the object an attribute was missing on (Python 3.10+)
    if isinstance(obj, nn.Module) and "_modules" not in obj.__dict__:
        return False
    return "before Module.__init__() call" not in str(error)


def instantiate(nerve: NerveDef, links: tuple[Link, ...], dims: tuple[Dims, ...]) -> nn.Module:
    """Construct the module of a deferred nerve for the given inputs and declared dims."""
    _bind(nerve)
    cls = nerve.cls
    with building(BuildContext(links, dims)):
        try:
            module = type.__call__(cls, *nerve.args, **nerve.kwargs)  # past NerveMeta: really construct
        except DefinitionError:
            raise
        except NeurlinkError as error:
            raise DefinitionError(str(error)) from error
        except Exception as error:
            allowed = None
            if isinstance(error, AttributeError) and not _initialized(error):
                # what a nerve's own attributes (target_dims, ...) or submodules need comes from Nerve.__init__
                allowed = "a Nerve subclass calls super().__init__() first in its __init__"
            raise DefinitionError(
                f"{cls.__name__}(...) raised {type(error).__name__}: {error}", allowed=allowed
            ) from error
    if "_modules" not in module.__dict__ or "target_dims" not in module.__dict__:
        raise DefinitionError(
            f"{cls.__name__}.__init__ did not call super().__init__()",
            allowed="a Nerve subclass calls super().__init__() first in its __init__",
        )
    module._finish_build()
    object.__setattr__(module, "_built", True)  # its arguments are fixed from here (Nerve.__setattr__)
    return module


def _ratios(shape: ShapeSpec, rank: int):
    """A shape's ratios for ``rank`` spatial dims, or None where it has another rank."""
    try:
        return shape.ratios_for(rank)
    except DimsError:
        return None
