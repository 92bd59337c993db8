"""neurlink.graph: nodes, selections, clusters; DOT and Mermaid text; rendering through Graphviz."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from networks import small  # shared with test_summary.py

import neurlink
import neurlink.nerves as nv
from neurlink import NeurlinkError

MERMAID = """\
flowchart TB
  n0(["0<br/>Input()<br/>3 x base<br/>1x3x16x16"])
  n1["1 'stem'<br/>Conv2d_BN_ReLU[-1, 'stem'](3)<br/>8 x base/2<br/>1x8x8x8"]
  n3["3<br/>Split()<br/>out 0: 4 x base/2, 1x4x8x8<br/>out 1: 4 x base/2, 1x4x8x8"]
  n4["4<br/>Concat[[output(3, 1), 'stem']]()<br/>12 x base/2<br/>1x12x8x8"]
  n5["5<br/>AvgPool2d()<br/>12 x (1, 1)<br/>1x12x1x1"]
  n6["6<br/>Conv2d(1)<br/>10 x (1, 1)<br/>1x10x1x1"]
  subgraph cluster_2["2 Residual()"]
    n2_1["2.1<br/>Conv2d_BN_ReLU(3)<br/>8 x base/2<br/>1x8x8x8"]
    n2_2["2.2<br/>Add[[0, -1]]()<br/>8 x base/2<br/>1x8x8x8"]
  end
  n0 --> n1
  n1 --> n2_1
  n1 -.->|0| n2_2
  n2_1 -->|1| n2_2
  n2_2 --> n3
  n3 -->|0 out 1| n4
  n1 -.->|1| n4
  n4 --> n5
  n5 --> n6
"""

DOT_COLLAPSED = """\
digraph neurlink {
  rankdir=TB;
  node [shape=box, style="rounded", fontname="Helvetica", fontsize=10];
  edge [fontname="Helvetica", fontsize=9];
  n0 [label="0\\nInput()\\n3 x base", shape=ellipse];
  n1 [label="1 'stem'\\nConv2d_BN_ReLU[-1, 'stem'](3)\\n8 x base/2"];
  n2 [label="2\\nResidual()\\n8 x base/2", shape=box3d, style=solid];
  n3 [label="3\\nSplit()\\nout 0: 4 x base/2\\nout 1: 4 x base/2"];
  n4 [label="4\\nConcat[[output(3, 1), 'stem']]()\\n12 x base/2"];
  n5 [label="5\\nAvgPool2d()\\n12 x (1, 1)"];
  n6 [label="6\\nConv2d(1)\\n10 x (1, 1)"];
  n0 -> n1;
  n1 -> n2;
  n2 -> n3;
  n3 -> n4 [label="0 out 1"];
  n1 -> n4 [label="1", style=dashed];
  n4 -> n5;
  n5 -> n6;
}
"""


@pytest.fixture(scope="module")
def expanded():
    return neurlink.graph(small(), (1, 3, 16, 16), depth=2)


def test_nodes_edges_and_clusters(expanded):
    assert [node.path for node in expanded.nodes] == ["0", "1", "2.1", "2.2", "3", "4", "5", "6"]
    assert [(c.path, c.nodes) for c in expanded.clusters] == [("2", ["n2_1", "n2_2"])]
    skips = [(e.source, e.target, e.label) for e in expanded.edges if e.skip]
    assert skips == [("n1", "n2_2", "0"), ("n1", "n4", "1")]  # into the block's Add, and the Concat
    assert ("n2_2", "n3") in [(e.source, e.target) for e in expanded.edges]  # out of the block: its last line


def test_mermaid(expanded):
    assert expanded.to_mermaid() == MERMAID


def test_dot_collapsed_block_without_shapes():
    assert neurlink.graph(small()).to_dot() == DOT_COLLAPSED


def test_dot_clusters_and_nested_depth(expanded):
    dot = expanded.to_dot()
    assert "subgraph cluster_2 {" in dot and 'label="2 Residual()"' in dot
    assert 'n1 -> n2_2 [label="0", style=dashed];' in dot
    assert 'n3 [label="3\\nSplit()\\nout 0: 4 x base/2, 1x4x8x8\\nout 1: 4 x base/2, 1x4x8x8"];' in dot


def test_zoo_block_clusters():
    diagram = neurlink.graph(neurlink.create_model("resnet18", num_classes=10), depth=2)
    assert len(diagram.clusters) == 8 and len(diagram.nodes) == 5 + 8 * 4
    # the second block's skip comes from the first block's last line
    assert ("n3_4", "n4_3", "0") in [(e.source, e.target, e.label) for e in diagram.edges if e.skip]


def test_text_files(expanded, tmp_path):
    assert expanded.render(tmp_path / "net.dot").read_text() == expanded.to_dot()
    assert expanded.render(tmp_path / "net.mmd").read_text() == MERMAID
    with pytest.raises(NeurlinkError, match=r"use \.svg, \.png or \.pdf"):
        expanded.render(tmp_path / "net.txt")


def test_rendered_svg_parses_and_carries_the_shapes(expanded, tmp_path, dot_program):
    path = expanded.render(tmp_path / "net.svg")
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [node.text for node in root.iter("{http://www.w3.org/2000/svg}text")]
    for shown in ("1x3x16x16", "1x8x8x8", "1x12x8x8", "8 x base/2", "12 x (1, 1)", "Conv2d_BN_ReLU(3)", "2 Residual()"):
        assert shown in texts
    png = expanded.render(tmp_path / "net.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_graphviz_says_how_to_install(expanded, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    with pytest.raises(NeurlinkError, match="install graphviz.*apt-get install graphviz"):
        expanded.render(tmp_path / "net.svg")
    assert expanded.render(tmp_path / "net.dot").exists()  # text needs no Graphviz


def test_the_readme_diagram_is_an_svg_with_the_shapes():
    svg = Path(__file__).resolve().parent.parent / "docs" / "tiny_unet.svg"  # neurlink graph examples/tiny_unet.py:...
    texts = {node.text for node in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")}
    assert {"3 'half' Residual[-1, 'half']()", "Concat[['half', -1]]()", "64 x base/2", "1x64x32x32"} <= texts


def test_levels_draw_one_row_per_ratio():
    """A small feature pyramid: with levels=True the lines of each ratio share a DOT rank (one row), so the
    top-down path is drawn beside the backbone; without it the DOT has no ranks."""
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d[-1, "c2"](3)),
            ((16, 4), nv.Conv2d[-1, "c4"](3)),
            ((16, 4), nv.Conv2d(1)),
            ((16, 2), nv.Interpolate()),
            ((24, 2), nv.Concat[[-1, "c2"]]()),
        ]
    )
    drawing = neurlink.graph(net, levels=True)
    dot = drawing.to_dot()
    assert "  {rank=same; n1 n4 n5}" in dot and "  {rank=same; n2 n3}" in dot
    assert "rank=same" not in neurlink.graph(net).to_dot()
    assert [node.level for node in drawing.nodes] == ["base", "base/2", "base/4", "base/4", "base/2", "base/2"]
