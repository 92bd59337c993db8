"""``Linear``: a fully connected layer to a vector line ``(N, C)``, declared with the shape ``"()"``.

Its ``in_features`` are derived from the line it reads: the channels of a vector line, or
channels times the size of a line of a fixed (absolute) shape, which it flattens first, so a
classifier head is ``((10, "()"), nv.Linear())`` after a global pool:

>>> import torch
>>> import neurlink.nerves as nv
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((16, 2), nv.Conv2d_BN_ReLU(3)),
...         ((16, "(1, 1)"), nv.AvgPool2d()),
...         ((10, "()"), nv.Linear()),
...     ]
... )
>>> net(torch.randn(4, 3, 32, 32)).shape  # what F.cross_entropy(out, target) takes
torch.Size([4, 10])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import DimsError, NerveArgumentError
from ..interpreter import Ops
from ..nerve import Nerve

__all__ = ["Linear"]


class Linear(Nerve):
    """``nn.Linear`` from the selected line to a vector line ``(out_features, "()")``; ``bias`` as in torch.

    The input is a vector line, or a line of an absolute shape (``"(1, 1)"``, ``"(7, 7)"``) that is
    flattened, as ``torch.flatten(x, 1)``; its parameters live in ``linear``. On a line of tokens it
    acts on each token: the line declares the same tokens with the channels it makes.
    """

    layouts = ("map", "vector", "tokens")

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.expect_links(1)
        if not isinstance(bias, bool):
            raise NerveArgumentError(f"Linear: bias={bias!r} is not a bool", allowed="bias=True or False")
        source, target = self.input_links[0].dims[0], self.target_dims[0]
        if source.shape.is_tokens:
            if not target.shape.same_as(source.shape, self.input_links[0].rank):
                raise DimsError(
                    f"Linear acts on each token of line {self.input_links[0].index}, {source.shape!r}, but the line"
                    f" declares {target.shape!r}",
                    allowed=f"({target.channels}, {source.shape!r})",
                )
            self._flatten = False
            self.linear = nn.Linear(source.channels, target.channels, bias=bias)
            return
        if not target.shape.is_vector:
            raise DimsError(
                f"Linear makes vectors (N, C), but the line declares the shape {target.shape!r}",
                allowed=f'({target.channels}, "()")',
            )
        if not source.shape.is_absolute:
            raise DimsError(
                f"Linear flattens its input, which must have a fixed size, but line {self.input_links[0].index}"
                f" declares ratio {source.shape!r}",
                allowed=f'a vector line or one of an absolute shape first, e.g. (({source.channels}, "(1, 1)"),'
                " nv.AvgPool2d())",
            )
        sizes = source.shape.absolute if source.shape.rank is not None else None
        if sizes is None:  # one size written for every dim: the rank comes from the line
            rank = self.input_links[0].rank
            if rank is None:
                raise DimsError(
                    f"Linear cannot tell how many dims line {self.input_links[0].index}'s shape"
                    f" {source.shape!r} stands for",
                    allowed="the shape written out, e.g. '(1, 1)'",
                )
            sizes = source.shape.absolute_for(rank)
        self._flatten = not source.shape.is_vector
        self.linear = nn.Linear(source.channels * math.prod(sizes), target.channels, bias=bias)

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        if self._flatten:
            x = ops.function(torch.flatten, x, 1)
        return ops.module("linear", x)
