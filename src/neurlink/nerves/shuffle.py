"""Nerves that rearrange a line's channels: ``ChannelSplit`` (one line, several outputs) and ``ChannelShuffle``.

With them ShuffleNetV2's unit is written in lines (``neurlink.models.shufflenet``): split the channels
in two, transform one half, join the halves and interleave them:

>>> import torch
>>> import neurlink.nerves as nv
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((16, 2), nv.Conv2d_BN_ReLU(3)),
...         ((8, 2), (8, 2), nv.ChannelSplit()),  # two outputs: channels 0-7 and 8-15
...         ((8, 2), nv.Conv2d_BN_ReLU[nv.output(-1, 1)](3)),  # the second half
...         ((16, 2), nv.Concat[[nv.output(-2, 0), -1]]()),
...         ((16, 2), nv.ChannelShuffle(2)),  # 0, 8, 1, 9, ...: torchvision's channel_shuffle
...     ]
... )
>>> net(torch.randn(1, 3, 32, 32)).shape
torch.Size([1, 16, 16, 16])
>>> x = torch.arange(6.0).reshape(1, 6, 1, 1)
>>> shuffle = nv.build([((6, 1), nv.Input()), ((6, 1), nv.ChannelShuffle(3))])
>>> shuffle(x).flatten().tolist()
[0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
"""

from __future__ import annotations

import torch

from ..errors import DimsError
from ..interpreter import Ops
from ..nerve import Nerve
from ._args import keeps_dims, positive_int

__all__ = ["ChannelSplit", "ChannelShuffle"]


def _channel_dim(nerve: Nerve) -> int:
    """Where the channels are: the last dim of tokens ``(N, L, C)``, dim 1 of maps and vectors."""
    return -1 if nerve.input_links[0].shape.is_tokens else 1


class ChannelSplit(Nerve):
    """The channels of one line as several outputs, in order: ``((58, 1), (58, 1), nv.ChannelSplit())``.

    Each output has the channels its dims declare, taken in order (the first 58, then the next 58;
    they may differ, ``((16, 1), (48, 1), ...)``), so the declared channels sum to the input's;
    every output keeps the input's shape. A later line selects one output with
    ``nv.output(line, k)``. The outputs are views of the input (``torch.split``); nothing is copied.
    """

    keeps_rank = True
    layouts = ("map", "vector", "tokens")

    def __init__(self) -> None:
        super().__init__()
        outputs = len(self.target_dims)
        name = type(self).__name__
        if outputs < 2:
            raise DimsError(
                f"{name} makes several outputs, but the line declares {outputs} dims",
                allowed="two or more (channels, shape) pairs before the nerve, e.g. ((8, 1), (8, 1), nv.ChannelSplit())",
            )
        self.expect_links(1, outputs=outputs)
        link = self.input_links[0]
        parts = [dims.channels for dims in self.target_dims]
        if sum(parts) != link.channels:
            raise DimsError(
                f"{name} of line {link.index}'s {link.channels} channels into {' + '.join(map(str, parts))}"
                f" = {sum(parts)}",
                allowed=f"declared channels that sum to {link.channels}",
            )
        for k, dims in enumerate(self.target_dims):
            if not dims.shape.same_as(link.shape):
                raise DimsError(
                    f"{name} keeps the shape {link.shape!r} of its input line {link.index}, but output {k}"
                    f" declares {dims.shape!r}",
                    allowed=f"{link.shape!r} for every output",
                )
        self.sizes = tuple(parts)
        self._dim = _channel_dim(self)

    def _steps(self, ops: Ops, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return ops.function(torch.split, x, self.sizes, dim=self._dim)


class ChannelShuffle(Nerve):
    """ShuffleNet's channel shuffle (torchvision's ``channel_shuffle``): the channels read as ``groups``
    rows of ``C / groups`` and taken column by column, so that each group's channels are spread over
    every group of the next grouped conv: with 2 groups of 4, ``0 1 2 3 | 4 5 6 7`` becomes
    ``0 4 1 5 2 6 3 7``.

    The line keeps its input's dims, of any rank; its channels must divide into ``groups``.
    """

    keeps_rank = True
    layouts = ("map", "vector", "tokens")

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        positive_int("groups", groups, name)
        keeps_dims(self)
        channels = self.target_dims[0].channels
        if channels % groups:
            raise DimsError(
                f"{name}({groups}): line {self.input_links[0].index}'s {channels} channels do not divide into"
                f" {groups} groups",
                allowed=f"groups dividing {channels}",
            )
        self.groups = groups
        dim = _channel_dim(self)
        # (rows, columns) in place of the channels, then the two swapped and joined again
        self._split = (dim, (groups, channels // groups))
        self._swap = (1, 2) if dim == 1 else (-2, -1)

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        x = ops.function(torch.unflatten, x, *self._split)
        x = ops.function(torch.transpose, x, *self._swap)
        return ops.function(torch.flatten, x, *self._swap)
