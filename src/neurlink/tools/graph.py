"""``neurlink.graph``: a network's lines as a diagram, in Graphviz DOT or Mermaid, or rendered.

Nodes are lines, labelled with their path, nerve, declared dims (channels x shape) and, given
an input size, the actual output size (a line of several outputs lists them as ``out 0``,
``out 1``, ...); edges are selections, ``out k`` where they take one output of several. An edge that does not simply come
from the previous line (a skip, or one of several inputs) is dashed and, into a line with
several inputs, numbered by position. Blocks (nerves made of lines) are clusters down to
``depth``, single boxes below it.

>>> import neurlink
>>> import neurlink.nerves as nv
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((8, 2), nv.Conv2d[-1, "c1"](3)),
...         ((8, 2), nv.Conv2d(3)),
...         ((16, 2), nv.Concat[["c1", -1]]()),
...     ]
... )
>>> print(neurlink.graph(net, (1, 3, 32, 32)).to_mermaid())
flowchart TB
  n0(["0<br/>Input()<br/>3 x base<br/>1x3x32x32"])
  n1["1 'c1'<br/>Conv2d[-1, 'c1'](3)<br/>8 x base/2<br/>1x8x16x16"]
  n2["2<br/>Conv2d(3)<br/>8 x base/2<br/>1x8x16x16"]
  n3["3<br/>Concat[['c1', -1]]()<br/>16 x base/2<br/>1x16x16x16"]
  n0 --> n1
  n1 --> n2
  n1 -.->|0| n3
  n2 -->|1| n3
<BLANKLINE>
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import NeurlinkError
from ._lines import LineInfo, is_block, nerve_text, shape_text, size_text, walk
from ._trace import InputSize, make_inputs, run_lines

__all__ = ["GraphNode", "GraphEdge", "Cluster", "LineGraph", "graph"]

_RENDERED = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
_TEXT = (".dot", ".gv", ".mmd")


@dataclass(frozen=True)
class GraphNode:
    """One line drawn as a box; ``kind`` is ``"input"``, ``"line"`` or ``"block"`` (a collapsed block)."""

    id: str
    path: str
    label: tuple[str, ...]  # the label's text lines
    kind: str
    level: str | None = None  # the ratio of a line of one output at a ratio (``base/8``), for levels=True


@dataclass(frozen=True)
class GraphEdge:
    """A selection: ``source`` feeds ``target``; ``label`` the input position / output index."""

    source: str
    target: str
    label: str
    skip: bool  # not simply the previous line


@dataclass
class Cluster:
    """An expanded block: its label, its sub-lines' node ids and its nested blocks."""

    id: str
    path: str
    label: str
    nodes: list[str] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)


@dataclass
class LineGraph:
    """What :func:`graph` returns: nodes, edges and clusters, with DOT/Mermaid export and rendering."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    clusters: list[Cluster]  # the top-level ones; each holds its nested ones
    top: list[str]  # ids of the nodes outside every cluster
    levels: bool = False  # DOT: one row per ratio (a pyramid), the lines flowing left to right

    def to_dot(self) -> str:
        """Graphviz DOT text (``dot -Tsvg``)."""
        nodes = {node.id: node for node in self.nodes}
        out = [
            "digraph neurlink {",
            "  rankdir=TB;",
            '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=10];',
            '  edge [fontname="Helvetica", fontsize=9];',
        ]

        def node_line(node_id: str, indent: str) -> str:
            node = nodes[node_id]
            shape = {"input": ", shape=ellipse", "block": ", shape=box3d, style=solid"}.get(node.kind, "")
            return f'{indent}{node.id} [label="{_dot_text(chr(10).join(node.label))}"{shape}];'

        def cluster_lines(cluster: Cluster, indent: str) -> None:
            out.append(f"{indent}subgraph {cluster.id} {{")
            out.append(f'{indent}  label="{_dot_text(cluster.label)}"; style="rounded,dashed"; fontsize=10;')
            out.extend(node_line(node_id, indent + "  ") for node_id in cluster.nodes)
            for inner in cluster.clusters:
                cluster_lines(inner, indent + "  ")
            out.append(f"{indent}}}")

        out.extend(node_line(node_id, "  ") for node_id in self.top)
        for cluster in self.clusters:
            cluster_lines(cluster, "  ")
        for edge in self.edges:
            attributes = []
            if edge.label:
                attributes.append(f'label="{_dot_text(edge.label)}"')
            if edge.skip:
                attributes.append("style=dashed")
            shown = f" [{', '.join(attributes)}]" if attributes else ""
            out.append(f"  {edge.source} -> {edge.target}{shown};")
        if self.levels:  # the lines of one ratio side by side: backbone, top-down and bottom-up paths as columns
            rows: dict[str, list[str]] = {}
            for node_id in self.top:
                level = nodes[node_id].level
                if level is not None and level != "base":
                    rows.setdefault(level, []).append(node_id)
            out.extend(f"  {{rank=same; {' '.join(row)}}}" for row in rows.values() if len(row) > 1)
        out.append("}")
        return "\n".join(out) + "\n"

    def to_mermaid(self) -> str:
        """Mermaid flowchart text (renders in GitHub markdown inside a ```mermaid fence)."""
        nodes = {node.id: node for node in self.nodes}
        out = ["flowchart TB"]

        def node_line(node_id: str, indent: str) -> str:
            node = nodes[node_id]
            text = _mermaid_text("<br/>".join(node.label))
            return f'{indent}{node.id}(["{text}"])' if node.kind == "input" else f'{indent}{node.id}["{text}"]'

        def cluster_lines(cluster: Cluster, indent: str) -> None:
            out.append(f'{indent}subgraph {cluster.id}["{_mermaid_text(cluster.label)}"]')
            out.extend(node_line(node_id, indent + "  ") for node_id in cluster.nodes)
            for inner in cluster.clusters:
                cluster_lines(inner, indent + "  ")
            out.append(f"{indent}end")

        out.extend(node_line(node_id, "  ") for node_id in self.top)
        for cluster in self.clusters:
            cluster_lines(cluster, "  ")
        for edge in self.edges:
            arrow = "-.->" if edge.skip else "-->"
            label = f"|{_mermaid_text(edge.label)}|" if edge.label else ""
            out.append(f"  {edge.source} {arrow}{label} {edge.target}")
        return "\n".join(out) + "\n"

    def render(self, path: str | Path) -> Path:
        """Write the diagram to ``path``: ``.svg``/``.png``/``.pdf`` through Graphviz' ``dot``, ``.dot``/``.mmd`` as text."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in _TEXT:
            path.write_text(self.to_mermaid() if suffix == ".mmd" else self.to_dot(), encoding="utf-8")
            return path
        if suffix not in _RENDERED:
            raise NeurlinkError(
                f"cannot write a diagram as {path.name!r}: use .svg, .png or .pdf (rendered by Graphviz),"
                " .dot (Graphviz text) or .mmd (Mermaid text)"
            )
        dot = shutil.which("dot")
        if dot is None:
            raise NeurlinkError(
                f"writing {path.name} needs the Graphviz 'dot' program, which is not installed: install graphviz"
                " (apt-get install graphviz, brew install graphviz or conda install graphviz),"
                " or write the text with a .dot or .mmd path"
            )
        done = subprocess.run(  # a fixed program given our own DOT text
            [dot, f"-T{_RENDERED[suffix]}", "-o", str(path)],
            input=self.to_dot().encode("utf-8"),
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip()
            raise NeurlinkError(f"Graphviz could not write {path}: {message}")
        return path


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def _node_id(path: str) -> str:
    return "n" + path.replace(".", "_")


def graph(
    net: nn.Module,
    input_size: InputSize | None = None,
    *,
    depth: int = 1,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    inputs: torch.Tensor | Sequence[torch.Tensor] | Mapping[str, torch.Tensor] | None = None,
    levels: bool = False,
) -> LineGraph:
    """The line graph of a built network; with ``input_size`` (or ``inputs``), actual sizes in the labels.

    ``input_size``, ``dtype``, ``device`` and ``inputs`` are those of :func:`neurlink.summary`.
    ``depth`` > 1 draws blocks as clusters of their own lines down to that depth. ``levels=True`` draws
    (in DOT) the lines of each ratio in one row, a feature pyramid as its papers draw it: the backbone
    going down the rows, a neck's top-down and bottom-up paths beside it.
    """
    lines = walk(net, depth)
    sizes = {}
    if input_size is not None or inputs is not None:
        tensors = make_inputs(net, input_size, dtype=dtype, device=device, inputs=inputs)
        sizes = {path: measured.shapes for path, measured in run_lines(net, lines, tensors).items()}
    by_path = {line.path: line for line in lines}

    def output_id(path: str) -> str:  # an expanded block's output is that of its last line
        line = by_path[path]
        return output_id(line.last_child) if line.last_child is not None else _node_id(path)  # set when expanded

    nodes, edges = [], []
    top: list[Any] = []
    clusters: list[Cluster] = []
    cluster_of: dict[str, Cluster] = {}
    for line in lines:
        parent = cluster_of.get(line.path.rpartition(".")[0]) if line.level else None
        if line.expanded:
            cluster = Cluster("cluster_" + line.path.replace(".", "_"), line.path, _header(line) + " " + _nerve(line))
            cluster_of[line.path] = cluster
            (parent.clusters if parent else clusters).append(cluster)
            continue
        kind = "input" if line.is_input else "block" if is_block(line.module) else "line"
        label = [_header(line), _nerve(line)]
        declared = [f"{dims.channels} x {shape_text(dims.shape)}" for dims in line.entry.dims]
        measured = [size_text(size) for size in sizes.get(line.path, ())]
        if len(declared) > 1 and len(measured) in (0, len(declared)):  # one row per output, numbered
            label += [f"out {k}: {text}" + (f", {measured[k]}" if measured else "") for k, text in enumerate(declared)]
        else:
            label += declared + measured
        shapes = [dims.shape for dims in line.entry.dims]
        level = shape_text(shapes[0]) if len(shapes) == 1 and shapes[0].ratios and not shapes[0].is_tokens else None
        node = GraphNode(_node_id(line.path), line.path, tuple(label), kind, level)
        nodes.append(node)
        (parent.nodes if parent else top).append(node.id)
        for source in line.sources:
            parts = [str(source.position)] if len(line.sources) > 1 else []
            if source.output is not None:
                parts.append(f"out {source.output}")
            edges.append(GraphEdge(output_id(source.path), node.id, " ".join(parts), source.skip))
    return LineGraph(nodes, edges, clusters, top, levels)


def _header(line: LineInfo) -> str:
    return line.path + (f" {line.tag!r}" if line.tag is not None else "")


def _nerve(line: LineInfo) -> str:
    text = nerve_text(line.entry)
    return text if len(text) <= 60 else text[:57] + "..."
