"""What the top-level network and a nerve with sub-lines share: a line table and its forward."""

from __future__ import annotations

from torch import nn

from .forward_graph import generate_forward
from .table import LineTable

__all__ = ["LinesModule"]


class LinesModule(nn.Module):
    """An ``nn.Module`` whose forward is generated from a :class:`LineTable`.

    The generated GraphModule shares this module's children and is kept out of
    ``_modules`` (so state_dict keys stay ``3.conv.weight``) and out of pickles
    (it is generated again when needed). A network runs its flat forward, so the line-by-line
    graph of a nerve is generated on its first call only (most never are).
    """

    _table: LineTable | None

    def _line_graph(self):
        """The line-by-line forward, generated on first use."""
        graph = self.__dict__.get("_forward_graph")
        if graph is None:
            # object.__setattr__: not a registered child, so not in state_dict, not moved twice by .to()
            graph = generate_forward(self, self._table)
            object.__setattr__(self, "_forward_graph", graph)
        return graph

    def _graph_for(self, outputs: tuple[int, ...]):
        graphs = self.__dict__.setdefault("_output_graphs", {})
        if outputs not in graphs:
            graphs[outputs] = generate_forward(self, self._table, outputs)
        return graphs[outputs]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_forward_graph", None)
        state.pop("_output_graphs", None)
        return state

    def _line_texts(self, indent: str = "  ") -> list[str]:
        rows = []
        for entry in self._table.entries:
            rows.append(f"{indent}({entry.index}): {entry.written}")
            child = self._modules.get(entry.name) if entry.name else None
            if isinstance(child, LinesModule) and child._table is not None:
                rows.extend(child._line_texts(indent + "    "))
        return rows

    def __repr__(self) -> str:
        if self._table is None:
            return super().__repr__()
        return f"{type(self).__name__}(\n" + "\n".join(self._line_texts()) + "\n)"
