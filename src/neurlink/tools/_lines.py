"""Walking a built network's lines, nested blocks included, for summaries and diagrams.

Every line gets a *path*: ``"3"`` for line 3 of the network, ``"3.1"`` for line 1 of the
block built by line 3. Inside a block, lines ``0..k-1`` are the block's own inputs; they are
not listed again, and a sub-line selecting one of them is shown as selecting what the block
itself selects (``"2"``), so an edge into a block starts where the value really comes from.

>>> import neurlink.nerves as nv
>>> net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU[-1, "c1"](3))])
>>> [(line.path, line.tag, nerve_text(line.entry), dims_text(line.entry.dims)) for line in walk(net)]
[('0', None, 'Input()', '(3, 1)'), ('1', 'c1', "Conv2d_BN_ReLU[-1, 'c1'](3)", '(8, 2)')]
>>> walk(net)[1].sources
(Source(path='0', output=None, position=0, skip=False),)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from torch import nn

from ..errors import NeurlinkError
from ..lines_module import LinesModule
from ..nerve import Nerve
from ..program import program_of
from ..shapes import ShapeSpec, dims_text
from ..table import Entry

__all__ = [
    "Source",
    "LineInfo",
    "walk",
    "table_of",
    "is_block",
    "input_rank",
    "nerve_text",
    "dims_text",
    "shape_text",
    "size_text",
]


@dataclass(frozen=True)
class Source:
    """One selected input of a line: the path of the line it comes from, and which output.

    ``position`` is its place among the line's inputs; ``skip`` is True when it is not simply
    the previous line of the same table (a skip or a multi-input connection).
    """

    path: str
    output: int | None
    position: int
    skip: bool

    def __str__(self) -> str:
        return self.path if self.output is None else f"{self.path}[{self.output}]"


@dataclass
class LineInfo:
    """One line of a network or of a block inside it, as a summary or a diagram shows it."""

    path: str
    level: int  # 0 for the network's own lines, 1 inside a block, ...
    entry: Entry
    module: nn.Module | None  # None for an Input line
    sources: tuple[Source, ...]
    expanded: bool = False  # a block whose own lines are listed after it
    last_child: str | None = None  # the path of an expanded block's last line: its output

    @property
    def tag(self) -> str | None:
        return self.entry.tag

    @property
    def is_input(self) -> bool:
        return self.entry.is_input


def table_of(network: nn.Module):
    """The line table of a built network; a clear error for any other module."""
    table = getattr(network, "_table", None) if isinstance(network, LinesModule) else None
    if table is None:
        raise NeurlinkError(
            f"expected a network built by nv.build (or a model of the zoo), got {type(network).__name__}"
        )
    return table


def is_block(module: nn.Module | None) -> TypeGuard[Nerve]:
    """Whether a line's module is made of lines of its own, run by the generated forward."""
    return (
        isinstance(module, Nerve)
        and getattr(module, "_table", None) is not None
        and type(module).forward is Nerve.forward  # a hand-written forward is not its table
    )


def walk(network: nn.Module, depth: int = 1) -> list[LineInfo]:
    """Every line in order, blocks expanded down to ``depth`` levels (1: the network's own lines)."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise NeurlinkError(f"depth={depth!r}: expected an int >= 1 (1 lists the network's own lines)")
    lines: list[LineInfo] = []
    _walk(network, table_of(network), "", 0, depth, (), lines)
    return lines


def _walk(owner, table, prefix: str, level: int, depth: int, outer: tuple[Source, ...], out: list) -> None:
    inputs = len(table.input_entries) if level else 0
    for entry in table.entries:
        if level and entry.is_input:
            continue  # a block's inputs are the lines its own line selects
        sources = []
        for position, ref in enumerate(entry.refs):
            skip = ref.line != entry.index - 1
            if ref.line < inputs:  # the block's k-th input: where the block's line takes it from
                given = outer[ref.line]
                output = given.output if ref.output is None else ref.output
                sources.append(Source(given.path, output, position, skip))
            else:
                sources.append(Source(f"{prefix}{ref.line}", ref.output, position, skip))
        module = owner._modules[entry.name] if entry.name is not None else None
        line = LineInfo(f"{prefix}{entry.index}", level, entry, module, tuple(sources))
        out.append(line)
        if is_block(module) and module._table is not None and level + 1 < depth:
            line.expanded = True
            line.last_child = f"{line.path}.{len(module._table.entries) - 1}"
            _walk(module, module._table, f"{line.path}.", level + 1, depth, line.sources, out)


def input_rank(network: nn.Module, entry: Entry) -> int | None:
    """The spatial rank of an Input line, as the network's program carries it."""
    return program_of(table_of(network)).ranks[entry.index]


def nerve_text(entry: Entry) -> str:
    """The nerve of a line as written: ``Conv2d_BN_ReLU[-1, 'stem'](7)``."""
    prefix = "(" + "".join(f"{d!r}, " for d in entry.dims)
    text = entry.written
    if text.startswith(prefix) and text.endswith(")"):
        return text[len(prefix) : -1]
    return text  # written in an unusual form: show all of it


def shape_text(shape: ShapeSpec) -> str:
    """A declared spatial shape in words: ``base/2``, ``base``, ``base*2``, or absolute ``(1, 1)``; tokens
    as ``tokens of base/16 + 1`` (a grid and its extra tokens) or ``77 tokens``."""
    if shape.is_tokens:
        if shape.length is not None:
            return f"{shape.length} tokens"
        grid_ratios = shape.ratios or ()
        grid = shape_text(ShapeSpec(grid_ratios[0] if shape.broadcast else tuple(grid_ratios)))
        return f"tokens of {grid}" + (f" + {shape.extra}" if shape.extra else "")
    ratios = shape.ratios
    if ratios is None:  # an absolute shape
        return str(shape.written)
    if len(ratios) == 1:
        ratio = ratios[0]
        if ratio == 1:
            return "base"
        if ratio.denominator == 1:
            return f"base/{ratio.numerator}"
        if ratio.numerator == 1:
            return f"base*{ratio.denominator}"
        return f"base/{float(ratio):g}"
    return "base/(" + ", ".join(f"{float(r):g}" for r in ratios) + ")"


def size_text(size: tuple[int, ...]) -> str:
    """A tensor size as ``1x64x56x56``."""
    return "x".join(str(n) for n in size)
