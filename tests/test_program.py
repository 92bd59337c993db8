"""One program of lines and one loop that runs it: every tool that runs lines goes through
``Program.run``, so they agree on what a line reads, when a value is dropped, and which line an
error names."""

import pytest
import torch
from networks import Residual
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink.forward_graph import flatten_forward
from neurlink.program import Program, program_of


def diamond() -> nv.Network:
    return nv.build(
        [
            ((3, 1), nv.Input()),  # 0
            ((8, 2), nv.Conv2d_BN_ReLU[-1, "a"](3)),  # 1: read by 2 and 4
            ((8, 2), nv.Conv2d(3)),  # 2
            ((8, 2), nv.Conv2d(1)),  # 3
            ((8, 2), nv.Add[["a", 3]]()),  # 4: the last reader of 1 and 3
            ((8, "(1, 1)"), nv.AvgPool2d()),  # 5
            ((8, "()"), nn.Flatten()),  # 6: vectors
            ((4, "()"), nn.Linear(8, 4)),  # 7
        ]
    )


def test_a_value_is_dropped_after_its_last_reader_and_requested_outputs_are_kept():
    net = diamond()
    program = program_of(net._table)
    drops = {step.line: step.drops for step in program.steps}
    # computed by hand: 0 is last read by line 1, 1 and 3 by line 4, 2 by 3, each later line by the next
    assert drops == {1: (0,), 2: (), 3: (2,), 4: (1, 3), 5: (4,), 6: (5,), 7: (6,)}
    kept = program_of(net._table, (1, 7))
    assert {step.line: step.drops for step in kept.steps}[4] == (3,)  # line 1 is a requested output
    assert program_of(net._table) is program  # made once per table


def test_the_program_carries_each_lines_layout_and_rank_from_its_dims():
    net = diamond()
    program = program_of(net._table)
    assert program.layouts == ("map",) * 6 + ("vector", "vector")
    assert program.ranks == (2, 2, 2, 2, 2, 2, 0, 0)
    one_d = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv1d(3)), ((8, "(1,)"), nv.AvgPool1d())])
    assert program_of(one_d._table).ranks == (1, 1, 1)  # the Input's rank from the line that reads it


def test_every_tool_that_runs_lines_runs_the_one_program(monkeypatch):
    ran: list[int] = []
    original = Program.run

    def counting(self, owner, inputs, call, **keywords):
        ran.append(self.length)
        return original(self, owner, inputs, call, **keywords)

    monkeypatch.setattr(Program, "run", counting)
    net = nv.build([((8, 1), nv.Input()), ((8, 1), Residual()), ((4, 1), nv.Conv2d(1))])
    x = torch.randn(1, 8, 8, 8)
    uses = {}
    for name, use in [
        ("first call, checked", lambda: net(x)),
        ("outputs=", lambda: net(x, outputs=[1])),
        ("flat-forward writer", lambda: flatten_forward(net)),
        ("summary", lambda: neurlink.summary(net, (1, 8, 8, 8), depth=2)),
        ("a nerve called", lambda: net[1](x)),
    ]:
        ran.clear()
        use()
        uses[name] = list(ran)
    assert uses["first call, checked"] == [3, 3]  # the network's lines, then its block's
    assert uses["outputs="] == [3, 3]
    assert uses["flat-forward writer"] == [3, 3]  # the block's lines written inline
    assert uses["summary"] == [3, 3]
    assert uses["a nerve called"] == [3]


def test_a_failing_sub_line_is_named_the_same_way_by_the_forward_and_the_summary():
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    net = nv.build([((8, 1), nv.Input()), ((8, 1), Residual()), ((4, 1), nv.Conv2d(1))])
    net[1]._modules["1"] = Boom()
    x = torch.randn(1, 8, 8, 8)
    with pytest.raises(neurlink.ForwardError, match=r"^line 1 > line 1: .*\n    RuntimeError: boom"):
        net(x)
    with pytest.raises(neurlink.NeurlinkError, match=r"^line 1 > line 1: .*\n    failed on input\(s\) \(1, 8, 8, 8\)"):
        neurlink.summary(net, (1, 8, 8, 8), depth=2)


def test_a_subclass_of_a_torch_module_of_one_rank_is_held_to_that_rank():
    class MyPool(nn.MaxPool2d):
        pass

    with pytest.raises(neurlink.DimsError, match=r"(?s)MyPool is 2d, but its input line 1 is 1d.*MaxPool1d after"):
        nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv1d(3)), ((8, 4), MyPool(2))])


def test_programs_kept_for_selections_of_outputs_are_bounded() -> None:
    """A new outputs=[...] selection on every call must not grow memory without bound."""
    from neurlink.program import _KEPT_SELECTIONS

    net = nv.build([((3, 1), nv.Input()), *[((3, 1), nv.Conv2d(1)) for _ in range(60)]])
    x = torch.randn(1, 3, 4, 4)
    for k in range(1, 61):
        assert len(net(x, outputs=[k, 60])) == 2
    programs = net._table.__dict__["_programs"]
    assert len(programs) <= _KEPT_SELECTIONS + 2  # the selections, the last line's, every line's
    for k in range(1, 61):  # compiled again where forgotten: the same values
        y, last = net(x, outputs=[k, 60])
        torch.testing.assert_close(last, net(x))
