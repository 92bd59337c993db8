"""A table of lines as one program, and the one loop that runs it.

Everything that runs a network's lines runs this loop: ``net(x)`` line by line and a nerve's
sub-lines (``interpreter.run_lines``), the writer of the flat forward (``forward_graph.py``, whose
values are fx nodes), ``neurlink.summary`` and ``neurlink.graph`` (``tools/_trace.py``, which
measures each line), and the tests' reference interpreter. They differ only in what ``call`` does
with a line's current module; which values a line reads, when a value is dropped, and how an
error names its line are decided here, once.

A program is made once per table (and per set of requested outputs) from the table's plain data,
and holds no module: the module a line runs is looked up in its owner when the line runs, so a
module swapped after the build is the one every tool calls.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import nn

from .errors import ForwardError, NeurlinkError
from .shapes import Layout, layout_of
from .table import Entry, LineTable, Ref

__all__ = ["Layout", "InputForm", "Step", "Program", "program_of", "input_form", "spatial_dims", "in_lines"]

# What an Input line takes: a map, vectors, tokens (N, L, C), or ids (N, L): a token Input of one channel
# and an integer or bool dtype (token ids for an embedding, a padding mask)
InputForm = Literal["map", "vector", "tokens", "ids"]


def input_form(entry: Entry) -> InputForm:
    """The form of the tensors an Input line takes (see :data:`InputForm`)."""
    layout = layout_of(entry.dims)
    if layout == "tokens" and entry.dims[0].channels == 1 and entry.dtype is not None:
        if not (entry.dtype.is_floating_point or entry.dtype.is_complex):
            return "ids"
    return layout


def spatial_dims(form: InputForm) -> slice:
    """Where an input's size is in its shape: a map's ``x.shape[2:]``, a sequence's length ``x.shape[1:2]``."""
    return slice(1, 2) if form in ("tokens", "ids") else slice(2, None)


@dataclass(frozen=True)
class Step:
    """One line that runs a module: its child's name, what it reads, what may be dropped after it."""

    line: int
    name: str  # the child module of the owner that makes this line
    refs: tuple[Ref, ...]  # the values it reads, in order
    drops: tuple[int, ...]  # the lines whose values nothing reads after this one
    where: tuple[int, str | None, str]  # (index, tag, written): what an error names
    entry: Entry


@dataclass(frozen=True)
class Program:
    """The lines of one table in the order they run.

    ``layouts[k]`` and ``ranks[k]`` are line ``k``'s tensor layout and number of spatial dims,
    carried from the declarations (a line whose shape is ``"()"`` holds vectors ``(N, C)``; a line's
    rank is written in its shape, fixed by its nerve, or carried from the lines it reads).
    """

    length: int
    inputs: tuple[int, ...]  # the Input lines (or a nerve's input lines), by position
    steps: tuple[Step, ...]
    outputs: tuple[int, ...] | None  # the lines whose values are the result; None: the last line's
    layouts: tuple[Layout, ...]
    ranks: tuple[int | None, ...]
    base_dims: slice  # where the base shape is in the shape of the base Input's tensor (``spatial_dims``)

    def run(
        self,
        owner: nn.Module,
        inputs,
        call: Callable[[Step, nn.Module, list[Any]], Any],
        *,
        pick: Callable[[Any, int], Any] = operator.getitem,
    ) -> list[Any]:
        """Run the lines: ``call(step, module, args)`` makes each line's value from the module
        ``owner`` holds for it now and the values it selects. Returns every line's value (those
        dropped as no later line read them are None; the result's lines are kept).

        ``pick(value, k)`` takes output ``k`` of a multi-output line (default: ``value[k]``). An
        exception leaves naming the line (``interpreter.in_lines``; a nested table's line is named
        after its owner's line as it leaves that too)."""
        values: list[Any] = [None] * self.length
        for line, x in zip(self.inputs, inputs):
            values[line] = x
        modules = cast(dict[str, nn.Module], owner._modules)  # a line's child is a module (torch allows None)
        step = None
        try:
            for step in self.steps:
                args = [
                    values[ref.line] if ref.output is None else pick(values[ref.line], ref.output) for ref in step.refs
                ]
                values[step.line] = call(step, modules[step.name], args)
                for line in step.drops:
                    values[line] = None
        except Exception as error:
            if step is None:
                raise
            located = in_lines(error, [step.where])
            if located is error:
                raise
            raise located from error
        return values

    def result(self, values: list[Any]) -> Any:
        """What the program returns: the last line's value, or the list of the requested lines' values."""
        if self.outputs is None:
            return values[-1]
        return [values[line] for line in self.outputs]


# programs kept per table: the last line's, every line's (the tools'), and the most recent selections of
# outputs=[...]; a caller making a new selection each call (3,000 of them on a 2,001-line network kept
# 322 MB) makes the oldest ones be compiled again, which costs one pass over the lines
_KEPT_SELECTIONS = 32


def program_of(table: LineTable, outputs: tuple[int, ...] | None = None) -> Program:
    """The program of ``table`` returning ``outputs`` (None: the last line), made once per table and outputs
    (of the selections, the most recent few are kept)."""
    cache: dict = table.__dict__.setdefault("_programs", {})
    program = cache.pop(outputs, None)  # popped and put back: the dict's order is the order of use
    if program is None:
        program = _compile(table, outputs)
        selections = [key for key in cache if key is not None and len(key) != len(table.entries)]
        for key in selections[: max(0, len(selections) + 1 - _KEPT_SELECTIONS)]:
            del cache[key]
    cache[outputs] = program
    return program


def _compile(table: LineTable, outputs: tuple[int, ...] | None) -> Program:
    entries = table.entries
    keep = set(outputs or ()) | {len(entries) - 1}
    last_reader = {ref.line: entry.index for entry in entries for ref in entry.refs}
    drops: list[list[int]] = [[] for _ in entries]
    for line, reader in last_reader.items():
        if line not in keep:
            drops[reader].append(line)
    steps = tuple(
        Step(e.index, e.name, e.refs, tuple(drops[e.index]), (e.index, e.tag, e.written), e)
        for e in entries
        if e.name is not None
    )
    inputs = tuple(e.index for e in sorted(table.input_entries, key=lambda e: cast(int, e.input_position)))
    ranks = tuple(table.input_rank(e) if e.is_input else e.spatial_rank for e in entries)
    layouts = tuple(_layout(entry, rank) for entry, rank in zip(entries, ranks))
    base_dims = spatial_dims(input_form(table.base_entry)) if table.input_entries else slice(2, None)
    return Program(len(entries), inputs, steps, outputs, layouts, ranks, base_dims)


def _layout(entry: Entry, rank: int | None) -> Layout:
    """A line's layout from its declared dims: tokens ``(N, L, C)`` where an output's shape is
    ``nv.tokens(...)``, vectors ``(N, C)`` where every output's shape is ``"()"`` (or its rank is 0),
    channels-first maps ``(N, C, *spatial)`` otherwise."""
    layout = layout_of(entry.dims)
    if layout == "map" and rank == 0:
        return "vector"
    return layout


def in_lines(error: Exception, where) -> Exception:
    """``error`` as it leaves the lines ``where`` ((index, tag, written), outermost first).

    A neurlink error records the lines. A plain ``RuntimeError`` (torch's error for a shape or
    dtype mistake) is wrapped in a :class:`ForwardError` that names them, chaining the original.
    Any other exception keeps its type, since code may catch it by type (out of memory, a
    checkpoint's early stop, a tracer's own errors), and gets a note naming the lines; so does every
    exception under ``torch.compile`` or ``torch.export``.
    """
    if isinstance(error, NeurlinkError):
        for item in reversed(where):
            error.locate(*item)
        return error
    if type(error) is not RuntimeError or torch.compiler.is_compiling():
        _note(error, where)
        return error
    wrapped = ForwardError(f"{type(error).__name__}: {error}")
    for item in reversed(where):
        wrapped.locate(*item)
    wrapped.__cause__ = error
    return wrapped


def _note(error: Exception, where) -> None:
    """Name the lines in one note of ``error`` (Python 3.11+), extended as it leaves outer lines."""
    if not where or not hasattr(error, "add_note"):
        return
    previous = getattr(error, "_neurlink_where", [])
    path = list(where) + previous
    note = "raised in neurlink " + " > ".join(f"line {index}" for index, _, _ in path) + f": {path[-1][2]}"
    try:
        error._neurlink_where = path  # type: ignore[attr-defined]  # our own note on any exception
    except AttributeError:  # an exception type with __slots__
        pass
    notes = getattr(error, "__notes__", [])
    if previous and notes and notes[-1].startswith("raised in neurlink "):
        notes[-1] = note
    else:
        error.add_note(note)
