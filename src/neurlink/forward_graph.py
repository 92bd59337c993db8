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

__all__ = ["generate_forward", "flatten_forward", "Flattener"]


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


class Flattener:
    """Builds one flat graph for a whole network by inlining every nerve into its torch modules.

    A nerve takes part through ``Nerve.inline(flat, path, args, base_shape)``: by default it is
    one call of itself; nerves with sub-lines inline those lines, and built-in nerves emit the
    calls of their own torch modules (conv, norm, act) or functions (add, cat). No tracing is
    involved, so building stays thread-safe and cheap.
    """

    def __init__(self) -> None:
        self.graph = fx.Graph()
        self.modules: dict[str, nn.Module] = {}
        self.inlined: list[nn.Module] = []  # nerves whose own call (and hooks) the flat graph skips

    def call_module(self, module: nn.Module, path: str, args: tuple, kwargs: dict | None = None) -> fx.Node:
        name = "m_" + path.replace(".", "_")  # one attribute lookup per call at run time
        self.modules[name] = module
        return self.graph.create_node("call_module", name, args, kwargs or {}, name=f"l{name[1:]}")

    def call_function(self, function, args: tuple, kwargs: dict | None = None) -> fx.Node:
        return self.graph.call_function(function, args, kwargs)

    def lines(self, table: LineTable, owner: nn.Module, prefix: str, inputs: list, base) -> fx.Node:
        """Inline the lines of ``table`` (owned by ``owner``) given the nodes of its inputs."""
        values: dict[int, fx.Node] = {}
        for entry, node in zip(table.input_entries, inputs):
            values[entry.index] = node

        def value(ref: Ref) -> fx.Node:
            if ref.output is None:
                return values[ref.line]
            return self.call_function(operator.getitem, (values[ref.line], ref.output))

        for entry in table.entries:
            if entry.is_input:
                continue
            module = owner._modules[entry.name]
            args = tuple(value(ref) for ref in entry.refs)
            path = prefix + entry.name
            inline = getattr(module, "inline", None)
            if inline is not None:
                self.inlined.append(module)
                values[entry.index] = inline(self, path, args, base)
            else:  # a plain nn.Module line
                values[entry.index] = self.call_module(module, path, args)
        return values[len(table.entries) - 1]


# Modules whose backward does not read their own output, so it may be overwritten in place.
_OUTPUT_NOT_SAVED = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.Linear)


def flatten_forward(owner: nn.Module) -> tuple[fx.GraphModule, tuple[nn.Module, ...]]:
    """The forward of a whole network as one flat graph of torch module calls.

    Nerve wrappers and block forwards disappear, each module is reached by one attribute
    lookup, and a residual sum is taken in place where its left operand is a fresh conv or
    norm output read by nothing else (torchvision's ``out += identity``): the call overhead
    and the peak memory are those of a hand-written model. Also returns the nerves it inlined,
    whose own calls (and so their hooks) the flat graph skips.
    """
    flat = Flattener()
    table = owner._table
    given = flat.graph.placeholder("inputs")
    entries = table.input_entries
    if len(entries) == 1:
        inputs = [given]
    else:
        inputs = [flat.call_function(operator.getitem, (given, e.input_position)) for e in entries]
    base = None
    if table.uses_base_shape:
        shape = flat.call_function(getattr, (inputs[entries.index(table.base_entry)], "shape"))
        base = flat.call_function(operator.getitem, (shape, slice(2, None)))
    flat.graph.output(flat.lines(table, owner, "", inputs, base))
    for node in flat.graph.nodes:
        if node.op == "call_function" and node.target is operator.add and _fresh_output(node.args[0], flat.modules):
            node.target = operator.iadd
    graph_module = fx.GraphModule(flat.modules, flat.graph, class_name=f"{type(owner).__name__}FlatForward")
    return graph_module, tuple(flat.inlined)


def _fresh_output(node, modules: dict[str, nn.Module]) -> bool:
    return (
        isinstance(node, fx.Node)
        and node.op == "call_module"
        and len(node.users) == 1
        and isinstance(modules[node.target], _OUTPUT_NOT_SAVED)
    )
