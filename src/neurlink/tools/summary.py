"""``neurlink.summary``: a line-by-line table of a network, declared dims beside actual shapes.

>>> import neurlink
>>> import neurlink.nerves as nv
>>> net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU[-1, "c1"](3))])
>>> s = neurlink.summary(net, (1, 3, 32, 32))
>>> s.total_params, s.total_macs  # conv 8*3*3*3 weights + norm 2*8; 8*16*16 outputs of 27 MACs
(232, 55296)
>>> print(s.rows[1])
1  c1  0  Conv2d_BN_ReLU[-1, 'c1'](3)  (8, 2)  (1, 8, 16, 16)  232  55,296
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..program import input_form, program_of
from ._lines import dims_text, nerve_text, table_of, walk
from ._trace import InputSize, make_inputs, run_lines

__all__ = ["Summary", "SummaryRow", "summary"]

_NERVE_WIDTH = 48  # longer nerves are cut in the table (the row keeps all of it)


@dataclass(frozen=True)
class SummaryRow:
    """One line of the network (``path`` ``"3.1"``: line 1 of the block of line 3)."""

    path: str
    level: int
    tag: str | None
    inputs: tuple[str, ...]  # paths of the selected lines ("2[1]": output 1 of line 2)
    nerve: str  # the nerve as written
    dims: str  # the declared dims as written
    output_shapes: tuple[tuple[int, ...], ...]  # the actual shape of each output
    params: int  # parameters of the line's module, its sub-lines included
    macs: int  # multiply-accumulates of the line, its sub-lines included
    declared_shapes: tuple[tuple[int, ...], ...] | None = None  # set when the output differs from them
    output_dims: tuple[str, ...] = ()  # the declared dims of each output, as written

    def cells(self) -> list[str]:
        """The row as table cells: line, tag, inputs, nerve, dims, output, params, MACs. What a definition
        wrote (a tag from a config file) is shown with its control characters escaped: a terminal runs
        escape sequences, which would set its title, clear it or draw rows of their own."""
        nerve = printable(self.nerve)
        nerve = nerve if len(nerve) <= _NERVE_WIDTH else nerve[: _NERVE_WIDTH - 3] + "..."
        return [
            "  " * self.level + self.path,
            printable(self.tag or ""),
            printable(", ".join(self.inputs)),
            nerve,
            printable(self.dims),
            ", ".join(str(shape) for shape in self.output_shapes)
            + (f"  MISMATCH, declared {', '.join(map(str, self.declared_shapes))}" if self.declared_shapes else ""),
            f"{self.params:,}",
            f"{self.macs:,}",
        ]

    def table_rows(self) -> list[list[str]]:
        """The row as table rows: a line of several outputs takes one per output (dims and shape),
        its line, nerve and counts on the first."""
        first = self.cells()
        if len(self.output_shapes) < 2 or len(self.output_dims) != len(self.output_shapes):
            return [first]
        declared = self.declared_shapes
        rows = []
        for k, (dims, shape) in enumerate(zip(self.output_dims, self.output_shapes)):
            output = str(shape)
            if declared is not None and (len(declared) != len(self.output_shapes) or declared[k] != shape):
                output += f"  MISMATCH, declared {declared[k] if len(declared) > k else 'no such output'}"
            rows.append(first[:4] + [dims, output] + first[6:] if k == 0 else ["", "", "", "", dims, output, "", ""])
        return rows

    def __str__(self) -> str:
        return "  ".join(cell for cell in self.cells() if cell)


def printable(text: str, keep: str = "") -> str:
    """``text`` with every character that is not printable (an ESC, a carriage return, a bidi override)
    written as its escape, as ``repr`` writes it; the characters in ``keep`` (a newline) stay."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


_HEADER = ["line", "tag", "inputs", "nerve", "dims", "output", "params", "MACs"]
_RIGHT = {6, 7}  # numbers are right-aligned


@dataclass(frozen=True)
class Summary:
    """What :func:`summary` returns: the rows, the totals, and ``str()`` as a table."""

    rows: tuple[SummaryRow, ...]
    input_sizes: tuple[tuple[int, ...], ...]
    total_params: int
    trainable_params: int
    total_macs: int  # for the whole batch
    activation_bytes: int  # bytes of every output of the network's own lines, inputs included
    param_bytes: int

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def table(self) -> str:
        """The rows and the totals as plain text."""
        body = [cells for row in self.rows for cells in row.table_rows()]
        cells = [_HEADER] + body
        widths = [max(len(row[k]) for row in cells) for k in range(len(_HEADER))]
        keep = [k for k in range(len(_HEADER)) if any(row[k] for row in cells[1:])]  # no empty columns

        def render(row: list[str]) -> str:
            parts = [row[k].rjust(widths[k]) if k in _RIGHT else row[k].ljust(widths[k]) for k in keep]
            return "  ".join(parts).rstrip()

        rule = "  ".join("-" * widths[k] for k in keep)
        sizes = ", ".join(str(size) for size in self.input_sizes)
        totals = [
            ("Total params", f"{self.total_params:,}"),
            ("Trainable params", f"{self.trainable_params:,}"),
            ("Non-trainable params", f"{self.non_trainable_params:,}"),
            ("Total MACs", f"{_si(self.total_macs)} ({self.total_macs:,})"),
            ("Input size", sizes),
            ("Activation memory", f"{_bytes(self.activation_bytes)} (outputs of the network's own lines)"),
            ("Parameter memory", _bytes(self.param_bytes)),
        ]
        lines = [render(_HEADER), rule] + [render(row) for row in body] + [rule]
        lines += [f"{name + ':':<22}{value}" for name, value in totals]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return self.table()


def _si(count: int) -> str:
    for factor, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= factor:
            return f"{count / factor:.2f} {unit}"
    return str(count)


def _bytes(count: int) -> str:
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if count >= factor:
            return f"{count / factor:.2f} {unit}"
    return f"{count} B"


def summary(
    net: nn.Module,
    input_size: InputSize = (1, 3, 224, 224),
    *,
    depth: int = 1,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    inputs: torch.Tensor | Sequence[torch.Tensor] | Mapping[str, torch.Tensor] | None = None,
) -> Summary:
    """Summarize a built network line by line, measured in one forward on random inputs.

    ``input_size`` is one size ``(N, C, *spatial)`` or a list of sizes, one per Input line;
    or give the tensors themselves as ``inputs``. ``dtype`` and ``device`` (of the inputs)
    default to those of the network's parameters; a network on the ``meta`` device is
    measured without memory or compute. ``depth`` > 1 lists the lines of nested blocks
    (``3.1`` is line 1 of the block of line 3) under their block's row.

    MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) for the
    whole batch: convolutions and matrix products, not norms, activations or pooling. A line
    whose output differs from its declared dims is marked ``MISMATCH`` with the declared shapes.
    """
    lines = walk(net, depth)
    tensors = make_inputs(net, input_size, dtype=dtype, device=device, inputs=inputs)
    measured = run_lines(net, lines, tensors)
    table = table_of(net)
    base_shape = tuple(tensors[table.base_entry.input_position].shape[program_of(table).base_dims])
    rows = []
    for line in lines:
        result = measured[line.path]
        batch = tensors[0].shape[0]
        ids = line.entry.is_input and input_form(line.entry) == "ids"  # (N, L): no channel dim
        declared = tuple((batch, *d.tensor_shape(base_shape)[: 1 if ids else None]) for d in line.entry.dims)
        params = sum(p.numel() for p in line.module.parameters()) if line.module is not None else 0
        row = SummaryRow(
            path=line.path,
            level=line.level,
            tag=line.tag,
            inputs=tuple(str(source) for source in line.sources),
            nerve=nerve_text(line.entry),
            dims=dims_text(line.entry.dims),
            output_dims=tuple(dims_text((d,)) for d in line.entry.dims),
            output_shapes=result.shapes,
            params=params,
            macs=result.macs,
            declared_shapes=declared if declared != result.shapes else None,
        )
        rows.append(row)
    parameters = list(net.parameters())
    return Summary(
        rows=tuple(rows),
        input_sizes=tuple(tuple(x.shape) for x in tensors),
        total_params=sum(p.numel() for p in parameters),
        trainable_params=sum(p.numel() for p in parameters if p.requires_grad),
        total_macs=sum(measured[line.path].macs for line in lines if line.level == 0),
        activation_bytes=sum(measured[line.path].nbytes for line in lines if line.level == 0),
        param_bytes=sum(p.numel() * p.element_size() for p in parameters),
    )
