"""Batch norm as a line of its own: ``BatchNorm1d/2d/3d`` and ``BatchNorm1d/2d/3d_ReLU``.

A pre-activation block (ResNet-v2, DenseNet) normalises and activates *before* each conv, so the norm
is a line, not the tail of a conv's. Its channels come from the line it reads, as a conv's in_channels
do; torch's keywords pass through:

>>> import torch
>>> import neurlink.nerves as nv
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((16, 2), nv.Conv2d(3)),
...         ((16, 2), nv.BatchNorm2d_ReLU()),  # nn.BatchNorm2d(16) -> nn.ReLU
...         ((32, 2), nv.Conv2d(3)),
...         ((32, 2), nv.BatchNorm2d(eps=1e-3, momentum=0.01)),
...     ]
... )
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 32, 16, 16])
>>> [key for key in net.state_dict() if key.startswith("2.")]
['2.norm.weight', '2.norm.bias', '2.norm.running_mean', '2.norm.running_var', '2.norm.num_batches_tracked']
>>> type(net[2].norm).__name__, net[2].norm.num_features, net[2].act
('BatchNorm2d', 16, ReLU(inplace=True))
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
from torch import nn

from ..errors import DimsError, NerveArgumentError
from ..interpreter import Ops, optional_child
from ..nerve import Nerve
from ._args import DEFAULT, Act, check_shape_ranks, keeps_dims, make_act

__all__ = [
    "BatchNormNd",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "BatchNorm1d_ReLU",
    "BatchNorm2d_ReLU",
    "BatchNorm3d_ReLU",
]

_BATCH_NORM: dict[int, type[nn.Module]] = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def _flag(name: str, value: object, owner: str) -> bool:
    if not isinstance(value, bool):
        raise NerveArgumentError(f"{owner}: {name}={value!r} is not a bool", allowed=f"{name}=True or False")
    return value


class BatchNormNd(Nerve):
    """``nn.BatchNormNd`` over the channels of the line read, then ``act``: a norm line of its own.

    The line keeps the dims of the line it reads (its channels are the norm's ``num_features``).
    ``eps``, ``momentum`` (None: a cumulative average), ``affine`` and ``track_running_stats`` are
    torch's; ``act`` is a module class (``nn.ReLU``, made in place), a module, or None. The norm lives
    in ``norm`` (``state_dict`` keys ``norm.weight``, ``norm.bias``, ``norm.running_mean``,
    ``norm.running_var``, ``norm.num_batches_tracked``), the activation in ``act``.
    ``BatchNorm1d`` reads ``(N, C, L)`` lines and vectors ``(N, C)``, as torch's does.
    """

    spatial_rank: ClassVar[int | None] = 2
    default_act: ClassVar[type[nn.Module] | None] = None

    @classmethod
    def shown_defaults(cls) -> dict[str, Any]:
        """What ``act=DEFAULT`` means for this class (shown in argument errors)."""
        return {"act": cls.default_act}

    def __init__(
        self,
        *,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        act: Act = DEFAULT,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        rank = self._rank()
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
            raise NerveArgumentError(f"{name}: eps={eps!r} is not a positive number", allowed="eps > 0, e.g. 1e-5")
        if momentum is not None and (
            not isinstance(momentum, (int, float)) or isinstance(momentum, bool) or not 0 <= momentum <= 1
        ):
            raise NerveArgumentError(
                f"{name}: momentum={momentum!r} is not a number in [0, 1] or None",
                allowed="0 <= momentum <= 1 (torch's default 0.1), or None for a cumulative average",
            )
        _flag("affine", affine, name)
        _flag("track_running_stats", track_running_stats, name)
        keeps_dims(self)
        self.norm = _BATCH_NORM[rank](
            self.target_dims[0].channels,
            eps=float(eps),
            momentum=None if momentum is None else float(momentum),
            affine=affine,
            track_running_stats=track_running_stats,
        )
        self.register_module("act", make_act(self.default_act if act is DEFAULT else act, name))

    def _rank(self) -> int:
        rank = cast(int, self.spatial_rank)  # each class of its own rank; BatchNorm1d's is its input's
        check_shape_ranks(self, rank)
        return rank

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        x = ops.module("norm", x)
        if optional_child(self, "act") is not None:
            x = ops.module("act", x)
        return x


class BatchNorm1d(BatchNormNd):
    """``nn.BatchNorm1d`` as a line: over ``(N, C, L)`` lines or vectors ``(N, C)`` (see :class:`BatchNormNd`)."""

    # like torch's BatchNorm1d it reads vectors too: its rank is its input's, 1 or none (checked below)
    spatial_rank = None
    keeps_rank = True
    layouts = ("map", "vector")

    def _rank(self) -> int:
        link = self.input_links[0]
        rank = link.rank if link.rank is not None else link.shape.rank
        if rank not in (None, 0, 1):
            raise DimsError(
                f"{type(self).__name__} reads (N, C, L) lines or vectors (N, C), but its input line {link.index}"
                f" is {rank}d",
                allowed=f"nv.BatchNorm{rank}d() after a {rank}d line" if rank in (2, 3) else "a 1d line or vectors",
            )
        return 1


class BatchNorm2d(BatchNormNd):
    """``nn.BatchNorm2d`` as a line (see :class:`BatchNormNd`)."""

    spatial_rank = 2


class BatchNorm3d(BatchNormNd):
    """``nn.BatchNorm3d`` as a line (see :class:`BatchNormNd`)."""

    spatial_rank = 3


class BatchNorm1d_ReLU(BatchNorm1d):
    """BatchNorm1d -> ReLU (pass ``act=`` for another activation)."""

    default_act = nn.ReLU


class BatchNorm2d_ReLU(BatchNorm2d):
    """BatchNorm2d -> ReLU: a pre-activation block's norm and activation (pass ``act=`` for another)."""

    default_act = nn.ReLU


class BatchNorm3d_ReLU(BatchNorm3d):
    """BatchNorm3d -> ReLU (pass ``act=`` for another activation)."""

    default_act = nn.ReLU
