"""Generating a line table's forward as straight-line code, once, with ``torch.fx``.

The selector graph is known when a definition is built, so the forward needs no
list cache and no selector lookup per call: each line becomes one ``call_module``
node fed by the nodes of the lines it selects, and fx's code generator frees every
intermediate right after its last use. The same graph is what ``torch.fx``,
``torch.export``, ``torch.compile`` and ONNX export see.
"""

from __future__ import annotations

import keyword
import operator
import re

from torch import fx, nn

from .table import LineTable, Ref

__all__ = ["generate_forward"]


def _node_name(table: LineTable, index: int) -> str:
    tag = table.entries[index].tag
    if tag is not None:
        name = re.sub(r"\W", "_", tag)
        if name and not name[0].isdigit() and not keyword.iskeyword(name):
            return f"{name}_line{index}"
    return f"line{index}"


def generate_forward(owner: nn.Module, table: LineTable, outputs: tuple[int, ...] | None = None) -> fx.GraphModule:
    """The forward of ``owner``'s lines as an fx GraphModule sharing ``owner``'s children.

    ``outputs=None`` returns the last line's output; otherwise a list of the given lines' outputs.
    A nested table takes its inputs as positional arguments (then ``base_shape`` if it needs it);
    a top-level one takes a tensor, or a list with one tensor per Input line.
    """
    graph = fx.Graph()
    values: dict[int, fx.Node] = {}
    base = None
    inputs = table.input_entries
    if table.nested:
        for entry in inputs:
            values[entry.index] = graph.placeholder(f"x{entry.input_position}")
        if table.uses_base_shape:
            base = graph.placeholder("base_shape")
    else:
        given = graph.placeholder("inputs")
        for entry in inputs:
            if len(inputs) == 1:
                values[entry.index] = given
            else:
                values[entry.index] = graph.create_node(
                    "call_function",
                    operator.getitem,
                    (given, entry.input_position),
                    name=_node_name(table, entry.index),
                )
        if table.uses_base_shape:
            shape = graph.call_function(getattr, (values[table.base_entry.index], "shape"))
            base = graph.create_node("call_function", operator.getitem, (shape, slice(2, None)), name="base_shape")

    def value(ref: Ref) -> fx.Node:
        if ref.output is None:
            return values[ref.line]
        return graph.call_function(operator.getitem, (values[ref.line], ref.output))

    for entry in table.entries:
        if entry.is_input:
            continue
        args = tuple(value(ref) for ref in entry.refs)
        kwargs = {"base_shape": base} if entry.uses_base_shape else {}
        values[entry.index] = graph.create_node(
            "call_module", entry.name, args, kwargs, name=_node_name(table, entry.index)
        )

    if outputs is None:
        graph.output(values[len(table.entries) - 1])
    else:
        graph.output([values[i] for i in outputs])
    return fx.GraphModule(owner, graph, class_name=f"{type(owner).__name__}Forward")
