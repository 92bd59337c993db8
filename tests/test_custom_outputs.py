"""Nerves of one's own with several outputs, as docs/custom-nerves.md writes them, and the names that
messages suggest: each must exist."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

import neurlink
import neurlink.nerves as nv
from neurlink.table import _sibling


class Halves(nv.Nerve):
    """Two outputs, checked as the docs check a nerve's inputs: ``expect_links(1)``."""

    def __init__(self) -> None:
        super().__init__()
        self.expect_links(1)

    def forward(self, x):
        first, second = x.chunk(2, dim=1)  # unpacked: a tracer must not see this
        return first, second


class Sum(nv.Nerve):
    """Reads a two-output line whole: a tuple."""

    def forward(self, pair):
        return pair[0] + pair[1]


NETWORKS = {
    "picked": [((8, 1), nv.Input()), ((4, 1), (4, 1), Halves()), ((8, 1), nv.Concat[[nv.output(1, 1), nv.output(1, 0)]]())],
    "whole": [((8, 1), nv.Input()), ((4, 1), (4, 1), Halves()), ((4, 1), Sum())],
    "returned": [((8, 1), nv.Input()), ((4, 1), (4, 1), Halves())],
}  # fmt: skip


def _expected(name: str, x: torch.Tensor):
    first, second = x[:, :4], x[:, 4:]
    return {"picked": torch.cat([second, first], 1), "whole": first + second, "returned": (first, second)}[name]


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_a_two_output_nerve_of_ones_own_runs_traces_and_exports(name: str) -> None:
    net = nv.build(NETWORKS[name])
    x = torch.randn(2, 8, 5, 6)
    expected = _expected(name, x)
    for run in (net, fx.symbolic_trace(net), torch.export.export(net, (x,)).module()):
        got = run(x)
        if isinstance(expected, tuple):
            assert len(got) == 2 and all(torch.equal(a, b) for a, b in zip(got, expected))
        else:
            assert torch.equal(got, expected)


def test_outputs_of_a_forward_of_ones_own_are_checked_at_the_first_call() -> None:
    net = nv.build([((8, 1), nv.Input()), ((4, 1), (4, 1), (4, 1), Halves())])
    with pytest.raises(
        neurlink.OutputError, match=r"(?s)^line 1: .*declares 3 outputs, but its module returned a tuple of 2"
    ):
        net(torch.randn(1, 8, 3, 3))


def test_a_nerve_neurlink_runs_still_has_one_output_unless_it_says_more() -> None:
    with pytest.raises(neurlink.DimsError, match=r"(?s)^line 1: .*Conv2d makes 1 output\(s\), but the line declares 2"):
        nv.build([((8, 1), nv.Input()), ((4, 1), (4, 1), nv.Conv2d(3))])


def _ranked_classes():
    for name in dir(nv):
        cls = getattr(nv, name)
        if isinstance(cls, type) and isinstance(getattr(cls, "spatial_rank", None), int):
            yield cls
    for name in dir(nn):
        cls = getattr(nn, name)
        if isinstance(cls, type) and name[-2:] in ("1d", "2d", "3d"):
            yield cls


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_every_sibling_a_message_suggests_exists(rank: int) -> None:
    """ "LayerNorm2d is 2d, ...: use LayerNorm1d" would name a class nowhere to be found."""
    suggested = 0
    for cls in _ranked_classes():
        name = _sibling(cls, rank)
        if name is None:
            continue
        suggested += 1
        assert hasattr(nv, name) or hasattr(nn, name), (cls, name)
    assert suggested > 20
    assert _sibling(nv.LayerNorm2d, 1) is None
