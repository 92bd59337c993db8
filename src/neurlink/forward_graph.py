"""Generating a line table's forward as straight-line code, once, with ``torch.fx``.

The selector graph is known when a definition is built, so the forward needs no
list cache and no selector lookup per call: each line becomes nodes fed by the nodes
of the lines it selects, and fx's code generator frees every intermediate right after
its last use. The same graph is what ``torch.fx``, ``torch.export``, ``torch.compile``
and ONNX export see.

Two graphs are written from a table, by the same :class:`GraphWriter`:

- the *line-by-line* forward of a network or nerve (``generate_forward``): one call per line;
- the *flat* forward of a whole network (``flatten_forward``): every nerve inlined down to
  torch's own modules, which is what ``Network.forward`` runs.
"""

from __future__ import annotations

import keyword
import operator
import re

from torch import fx, nn

from .table import LineTable, Ref

__all__ = ["GraphWriter", "generate_forward", "flatten_forward"]


class GraphWriter:
    """Writes the lines of tables into one fx graph.

    With ``inline=False`` every line is one ``call_module`` of the owner's child. With
    ``inline=True`` a nerve takes part through ``Nerve.inline(writer, path, args, base_shape)``:
    nerves with sub-lines inline those lines, and built-in nerves emit the calls of their own
    torch modules (conv, norm, act) or functions (add, cat). No tracing is involved, so
    building stays thread-safe and cheap.
    """

    def __init__(self, *, inline: bool) -> None:
        self.inline = inline
        self.graph = fx.Graph()
        self.modules: dict[str, nn.Module] = {}  # flat attribute name -> module (inline only)
        self.inlined: list[nn.Module] = []  # nerves whose own call (and hooks) the graph skips

    def call_module(self, module: nn.Module, path: str, args: tuple, kwargs: dict | None = None, name=None):
        if self.inline:
            target = "m_" + path.replace(".", "_")  # one attribute lookup per call at run time
            self.modules[target] = module
            name = name or f"l{target[1:]}"
        else:
            target = path
        return self.graph.create_node("call_module", target, args, kwargs or {}, name=name)

    def call_function(self, function, args: tuple, kwargs: dict | None = None) -> fx.Node:
        return self.graph.call_function(function, args, kwargs)

    def inputs(self, table: LineTable) -> tuple[list[fx.Node], fx.Node | None]:
        """Placeholders for a table's inputs, and the base shape node if a line needs it.

        A nested table takes its inputs as positional arguments (then ``base_shape``); a
        top-level one takes a tensor, or a list with one tensor per Input line.
        """
        entries = table.input_entries
        if table.nested:
            nodes = [self.graph.placeholder(f"x{entry.input_position}") for entry in entries]
            return nodes, self.graph.placeholder("base_shape") if table.uses_base_shape else None
        given = self.graph.placeholder("inputs")
        if len(entries) == 1:
            nodes = [given]
        else:
            nodes = [
                self.graph.create_node(
                    "call_function", operator.getitem, (given, e.input_position), name=_node_name(table, e.index)
                )
                for e in entries
            ]
        base = None
        if table.uses_base_shape:
            shape = self.call_function(getattr, (nodes[entries.index(table.base_entry)], "shape"))
            base = self.graph.create_node("call_function", operator.getitem, (shape, slice(2, None)), name="base_shape")
        return nodes, base

    def lines(self, table: LineTable, owner: nn.Module, prefix: str, inputs: list, base) -> dict[int, fx.Node]:
        """Write the lines of ``table`` (owned by ``owner``); returns each line's value node."""
        values = {entry.index: node for entry, node in zip(table.input_entries, inputs)}

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
            inline = getattr(module, "inline", None) if self.inline else None
            if inline is not None:
                self.inlined.append(module)
                values[entry.index] = inline(self, path, args, base)
            else:
                kwargs = {"base_shape": base} if entry.uses_base_shape else None
                values[entry.index] = self.call_module(
                    module, path, args, kwargs, name=None if self.inline else _node_name(table, entry.index)
                )
        return values

    def last(self, table: LineTable, owner: nn.Module, prefix: str, inputs: list, base) -> fx.Node:
        """Write the lines of ``table``; returns the last line's value (a nerve's output)."""
        return self.lines(table, owner, prefix, inputs, base)[len(table.entries) - 1]


def _node_name(table: LineTable, index: int) -> str:
    tag = table.entries[index].tag
    if tag is not None:
        name = re.sub(r"\W", "_", tag)
        if name and not name[0].isdigit() and not keyword.iskeyword(name):
            return f"{name}_line{index}"
    return f"line{index}"


def generate_forward(owner: nn.Module, table: LineTable, outputs: tuple[int, ...] | None = None) -> fx.GraphModule:
    """The line-by-line forward of ``owner``'s lines, a GraphModule sharing ``owner``'s children.

    ``outputs=None`` returns the last line's output; otherwise a list of the given lines' outputs.
    """
    writer = GraphWriter(inline=False)
    values = writer.lines(table, owner, "", *writer.inputs(table))
    if outputs is None:
        writer.graph.output(values[len(table.entries) - 1])
    else:
        writer.graph.output([values[i] for i in outputs])
    return fx.GraphModule(owner, writer.graph, class_name=f"{type(owner).__name__}Forward")


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
    writer = GraphWriter(inline=True)
    writer.graph.output(writer.last(owner._table, owner, "", *writer.inputs(owner._table)))
    for node in writer.graph.nodes:
        if node.op == "call_function" and node.target is operator.add and _fresh_output(node.args[0], writer.modules):
            node.target = operator.iadd
    graph_module = fx.GraphModule(writer.modules, writer.graph, class_name=f"{type(owner).__name__}FlatForward")
    return graph_module, tuple(writer.inlined)


def _fresh_output(node, modules: dict[str, nn.Module]) -> bool:
    return (
        isinstance(node, fx.Node)
        and node.op == "call_module"
        and len(node.users) == 1
        and isinstance(modules[node.target], _OUTPUT_NOT_SAVED)
    )
