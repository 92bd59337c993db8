"""``torch.nn.functional`` plus :func:`drop_path`."""

from typing import Any

import torch
import torch.nn.functional as _torch_functional


def drop_path(
    x: torch.Tensor, drop_prob: float = 0.0, training: bool = False, scale_by_keep: bool = True
) -> torch.Tensor:
    """Stochastic depth: zero whole samples of a residual branch with probability ``drop_prob``.

    In training, each sample of the batch is kept with probability ``1 - drop_prob`` and, with
    ``scale_by_keep``, scaled by ``1 / (1 - drop_prob)`` so the expectation is unchanged.

    >>> drop_path(torch.ones(2, 3), 0.5, training=False).sum().item()
    6.0
    """
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    if scale_by_keep and keep > 0.0:
        mask.div_(keep)
    return x * mask


def __getattr__(name: str) -> Any:
    try:
        return getattr(_torch_functional, name)
    except AttributeError:
        raise AttributeError(f"module 'neurlink.nn.functional' has no attribute {name!r}") from None
