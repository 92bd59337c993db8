"""``StochasticDepth``: drops a residual branch for whole samples while training.

>>> import torch
>>> import neurlink.nerves as nv
>>> net = nv.build([((8, 1), nv.Input()), ((8, 1), nv.Conv2d(3)), ((8, 1), nv.StochasticDepth(0.2))])
>>> net.train()(torch.randn(4, 8, 5, 5)).shape  # some samples zeroed, the others scaled by 1 / 0.8
torch.Size([4, 8, 5, 5])
"""

from __future__ import annotations

import torch

from ..interpreter import Ops
from ..nerve import Nerve
from ..nn.drop_path import DropPath
from ._args import keeps_dims, probability

__all__ = ["StochasticDepth"]


class StochasticDepth(Nerve):
    """torchvision's ``StochasticDepth(p, "row")``: in training, each sample is zeroed with
    probability ``p`` and the others divided by ``1 - p``; in eval mode the line passes its input.

    Put it on the branch before the sum of a residual block. It keeps the dims of the line it
    reads (of any rank); the module is ``drop``, a :class:`neurlink.nn.DropPath`, which follows
    the train/eval mode itself.
    """

    keeps_rank = True
    layouts = ("map", "vector", "tokens")

    def __init__(self, p: float) -> None:
        super().__init__()
        self.expect_links(1)
        keeps_dims(self)
        self.drop = DropPath(probability("p", p, type(self).__name__))

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        return ops.module("drop", x)
