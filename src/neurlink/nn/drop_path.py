"""``DropPath``: stochastic depth as a module."""

import torch
from torch import nn

from .functional import drop_path


class DropPath(nn.Module):
    """Drops whole samples of a residual branch with probability ``drop_prob`` while training.

    >>> DropPath(0.2).eval()(torch.ones(4, 8)).sum().item()
    32.0
    """

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        if not 0.0 <= drop_prob <= 1.0:
            raise ValueError(f"drop_prob={drop_prob!r} must be in [0, 1]")  # 1: the branch is always dropped
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"
