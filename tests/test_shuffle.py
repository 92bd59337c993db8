"""ChannelSplit and ChannelShuffle against hand-written torch, and the definitions they refuse."""

from __future__ import annotations

import pytest
import torch

import neurlink
import neurlink.nerves as nv


def torchvision_channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision's ``channel_shuffle`` (``models/shufflenetv2.py``), for 4-d maps."""
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 12])
def test_channel_shuffle_is_torchvisions(groups: int) -> None:
    net = nv.build([((12, 1), nv.Input()), ((12, 1), nv.ChannelShuffle(groups))])
    x = torch.randn(2, 12, 5, 7)
    assert torch.equal(net(x), torchvision_channel_shuffle(x, groups))
    assert torch.equal(net(x), torchvision_channel_shuffle(x, groups))  # the flat forward


def test_channel_shuffle_on_other_layouts() -> None:
    channels = torch.arange(6.0)
    expected = [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    vector = nv.build([((6, "()"), nv.Input()), ((6, "()"), nv.ChannelShuffle(2))])
    assert vector(channels[None]).flatten().tolist() == expected
    line = nv.build([((6, 1), nv.Input()), ((6, 1), nv.Conv1d(1)), ((6, 1), nv.ChannelShuffle(2))])
    _, conv, shuffled = line(torch.randn(1, 6, 9), output_intermediate=True)
    assert torch.equal(shuffled, conv[:, [0, 3, 1, 4, 2, 5]])
    tokens = nv.build([((6, nv.tokens(length=4)), nv.Input()), ((6, nv.tokens(length=4)), nv.ChannelShuffle(2))])
    sequence = channels.expand(1, 4, 6)  # (N, L, C): channels last
    assert tokens(sequence)[0, 2].tolist() == expected


def test_channel_split_outputs_are_the_channels_in_order() -> None:
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 2), nv.Conv2d(3)),
            ((4, 2), (12, 2), nv.ChannelSplit()),
            ((12, 2), nv.Identity[nv.output(-1, 1)]()),
            ((4, 2), nv.Identity[nv.output(-2, 0)]()),
        ]
    ).eval()
    x = torch.randn(2, 3, 9, 14)
    for _ in range(2):  # the first call checks every line, then the flat forward
        values = net(x, output_intermediate=True)
        conv = values[1]
        assert isinstance(values[2], tuple) and len(values[2]) == 2
        assert torch.equal(values[2][0], conv[:, :4]) and torch.equal(values[2][1], conv[:, 4:])
        assert torch.equal(values[3], conv[:, 4:]) and torch.equal(values[4], conv[:, :4])
        assert torch.equal(net(x), conv[:, :4])
    tokens = nv.build(
        [
            ((6, nv.tokens(length=3)), nv.Input()),
            ((2, nv.tokens(length=3)), (4, nv.tokens(length=3)), nv.ChannelSplit()),
        ]
    )
    sequence = torch.randn(1, 3, 6)
    first, second = tokens(sequence)
    assert torch.equal(first, sequence[..., :2]) and torch.equal(second, sequence[..., 2:])


def shuffle_unit() -> nv.Network:
    """ShuffleNetV2's stride-1 unit written with both nerves, and a split as the network's last line."""
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 2), nv.Conv2d_BN_ReLU(3)),
            ((8, 2), (8, 2), nv.ChannelSplit()),
            ((8, 2), nv.Conv2d_BN_ReLU[nv.output(-1, 1)](3, groups=8)),
            ((16, 2), nv.Concat[[nv.output(-2, 0), -1]]()),
            ((16, 2), nv.ChannelShuffle(2)),
            ((6, 2), (10, 2), nv.ChannelSplit()),
        ]
    ).eval()


def test_the_unit_is_its_hand_written_torch() -> None:
    torch.manual_seed(0)
    net = shuffle_unit()
    conv1, conv2 = net[1], net[3]
    x = torch.randn(2, 3, 17, 10)

    def by_hand(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = conv1.act(conv1.norm(conv1.conv(x)))
        first, second = y.chunk(2, dim=1)
        second = conv2.act(conv2.norm(conv2.conv(second)))
        shuffled = torchvision_channel_shuffle(torch.cat((first, second), dim=1), 2)
        return shuffled[:, :6], shuffled[:, 6:]

    with torch.no_grad():
        expected = by_hand(x)
        for _ in range(2):
            ours = net(x)
            assert all(torch.equal(a, b) for a, b in zip(ours, expected, strict=True))


def test_the_unit_traces_exports_and_summarises() -> None:
    torch.manual_seed(0)
    net = shuffle_unit()
    x = torch.randn(1, 3, 15, 22)
    with torch.no_grad():
        expected = net(x)
        traced = torch.fx.symbolic_trace(net)
        program = torch.export.export(net, (x,))
        for result in (traced(x), program.module()(x)):
            assert all(torch.equal(a, b) for a, b in zip(result, expected, strict=True))
    table = str(neurlink.tools.summary(net, (1, 3, 32, 32)))
    assert "ChannelSplit()" in table and "ChannelShuffle(2)" in table
    assert "(1, 6, 16, 16)" in table and "(1, 10, 16, 16)" in table


def _line(nerve_dims: tuple) -> list:
    return [((3, 1), nv.Input()), ((8, 1), nv.Conv2d(1)), nerve_dims]


INVALID = [
    (((4, 1), (5, 1), nv.ChannelSplit()), neurlink.DimsError, r"line 2: .*8 channels into 4 \+ 5 = 9"),
    (((4, 1), (4, 2), nv.ChannelSplit()), neurlink.DimsError, r"line 2: .*output 1 declares 2"),
    (((8, 1), nv.ChannelSplit()), neurlink.DimsError, r"line 2: .*several outputs, but the line declares 1"),
    (((4, 1), (4, 1), nv.ChannelSplit[[0, 1]]()), neurlink.DefinitionError, r"line 2: .*takes 1 input"),
    (((8, 1), nv.ChannelShuffle(3)), neurlink.DimsError, r"line 2: .*8 channels do not divide into 3 groups"),
    (((8, 1), nv.ChannelShuffle(0)), neurlink.NerveArgumentError, r"line 2: .*groups=0 is not a positive int"),
    (((8, 1), nv.ChannelShuffle(2.0)), neurlink.NerveArgumentError, r"groups=2.0 is not a positive int"),
    (((4, 1), nv.ChannelShuffle(2)), neurlink.DimsError, r"keeps the dims of its input line 1"),
]


@pytest.mark.parametrize(("line", "error", "message"), INVALID)
def test_refused_definitions_name_the_line(line: tuple, error: type, message: str) -> None:
    with pytest.raises(error, match="(?s)" + message):
        nv.build(_line(line))


def test_a_split_line_is_selected_one_output_at_a_time() -> None:
    lines = [((8, 1), nv.Input()), ((4, 1), (4, 1), nv.ChannelSplit()), ((4, 1), nv.ChannelShuffle(2))]
    with pytest.raises(neurlink.DefinitionError, match=r"line 2: (.|\n)*line 1 has 2 outputs(.|\n)*nv.output\(1, k\)"):
        nv.build(lines)
