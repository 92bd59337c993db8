"""Nerves acting on the channels of each position: ``LayerNorm2d``, ``PointwiseLinear``, ``LayerScale``.

They keep the spatial shape; ``LayerNorm2d`` and ``LayerScale`` keep the channels too. With them a
ConvNeXt block is written in lines (``neurlink.models.convnext.ConvNeXtBlock``):

>>> import torch
>>> import neurlink.nerves as nv
>>> from torch import nn
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((32, 4), nv.Conv2d(4)),  # a 4x4 patchify conv, stride 4
...         ((32, 4), nv.LayerNorm2d(eps=1e-6)),  # over the channels of each position
...         ((128, 4), nv.PointwiseLinear(act=nn.GELU)),  # nn.Linear at each position
...         ((32, 4), nv.PointwiseLinear()),
...         ((32, 4), nv.LayerScale(1e-6)),  # a learned factor per channel
...     ]
... )
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 32, 8, 8])
>>> sorted(net.state_dict())[-4:]
['3.linear.weight', '4.linear.bias', '4.linear.weight', '5.scale.weight']
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DimsError, NerveArgumentError
from ..interpreter import Ops, optional_child
from ..nerve import Nerve
from ..nn.channels import LayerNorm2d as _LayerNorm2dModule
from ..nn.channels import LayerScale as _LayerScaleModule
from ._args import Act, check_shape_ranks, keeps_dims, make_act

__all__ = ["LayerNorm", "RMSNorm", "LayerNorm2d", "PointwiseLinear", "LayerScale"]

_TO_CHANNELS_LAST = (0, 2, 3, 1)
_TO_CHANNELS_FIRST = (0, 3, 1, 2)


def _bool(name: str, value: object, owner: str) -> bool:
    if not isinstance(value, bool):
        raise NerveArgumentError(f"{owner}: {name}={value!r} is not a bool", allowed=f"{name}=True or False")
    return value


def _eps(eps: object, owner: str) -> float:
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise NerveArgumentError(f"{owner}: eps={eps!r} is not a positive number", allowed="eps > 0, e.g. 1e-6")
    return float(eps)


class _ChannelNorm(Nerve):
    """A norm over the channels of each position, on any layout: tokens ``(N, L, C)`` and vectors as they
    are (the channels are their last dim), a channels-first map read channels-last and given back."""

    keeps_rank = True
    layouts = ("map", "vector", "tokens")
    _norm: type[nn.Module]

    def __init__(self, eps: float | None, elementwise_affine: bool, **extra: bool) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        if eps is not None:
            eps = _eps(eps, name)
        _bool("elementwise_affine", elementwise_affine, name)
        for key, value in extra.items():
            _bool(key, value, name)
        keeps_dims(self)
        link = self.input_links[0]
        self._channels_first = link.shape.layout == "map"
        self.norm = self._norm(self.target_dims[0].channels, eps=eps, elementwise_affine=elementwise_affine, **extra)

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        if not self._channels_first:
            return ops.module("norm", x)
        x = ops.module("norm", ops.function(torch.movedim, x, 1, -1))
        return ops.function(torch.movedim, x, -1, 1)


class LayerNorm(_ChannelNorm):
    """``nn.LayerNorm`` over the channels of each token (or position of a map, or vector): the transformer's
    norm, ``((768, nv.tokens(16, extra=1)), nv.LayerNorm(1e-6))``. ``eps``, ``elementwise_affine`` and
    ``bias`` as in torch; the line keeps its input's dims; parameters live in ``norm``."""

    _norm = nn.LayerNorm

    def __init__(self, eps: float = 1e-5, *, elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__(eps, elementwise_affine, bias=bias)


class RMSNorm(_ChannelNorm):
    """``nn.RMSNorm`` over the channels of each token (or position, or vector); ``eps=None`` is torch's
    default (the dtype's machine epsilon). Parameters live in ``norm``."""

    _norm = nn.RMSNorm

    def __init__(self, eps: float | None = None, *, elementwise_affine: bool = True) -> None:
        super().__init__(eps, elementwise_affine)


class LayerNorm2d(Nerve):
    """Layer norm over the channels of each position of a 2d line (torchvision's ``LayerNorm2d``).

    ``eps``, ``elementwise_affine`` and ``bias`` as in ``nn.LayerNorm`` (ConvNeXt uses
    ``eps=1e-6``). The line keeps the dims of the line it reads; parameters live in ``norm``,
    a :class:`neurlink.nn.LayerNorm2d`.
    """

    spatial_rank = 2

    def __init__(self, eps: float = 1e-5, *, elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
            raise NerveArgumentError(f"{name}: eps={eps!r} is not a positive number", allowed="eps > 0, e.g. 1e-6")
        _bool("elementwise_affine", elementwise_affine, name)
        _bool("bias", bias, name)
        check_shape_ranks(self, 2)
        keeps_dims(self)
        self.norm = _LayerNorm2dModule(
            self.target_dims[0].channels, eps=float(eps), elementwise_affine=elementwise_affine, bias=bias
        )

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        return ops.module("norm", x)


class PointwiseLinear(Nerve):
    """``nn.Linear`` at every position of a 2d line, then ``act``: a 1x1 conv computed channels-last.

    The map is read as ``(N, H, W, C)``, so the product is one matrix multiplication over all
    positions, as in ConvNeXt's and transformers' MLPs (on CPUs faster than a 1x1 conv there).
    It changes the channels to the declared ones and keeps the shape. Parameters live in
    ``linear``, the activation in ``act``; ``bias`` as in torch.
    """

    spatial_rank = 2

    def __init__(self, *, bias: bool = True, act: Act = None) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        _bool("bias", bias, name)
        check_shape_ranks(self, 2)
        source, target = self.input_links[0], self.target_dims[0]
        if not source.shape.same_as(target.shape, 2):
            raise DimsError(
                f"{name} keeps the shape of its input line {source.index}, {source.shape!r},"
                f" but this line declares {target.shape!r}",
                allowed=f"({target.channels}, {source.shape!r}), or a strided conv to change the shape",
            )
        self.linear = nn.Linear(source.channels, target.channels, bias=bias)
        self.register_module("act", make_act(act, name))

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        x = ops.function(torch.permute, x, _TO_CHANNELS_LAST)
        x = ops.module("linear", x)
        if optional_child(self, "act") is not None:
            x = ops.module("act", x)
        return ops.function(torch.permute, x, _TO_CHANNELS_FIRST)


class LayerScale(Nerve):
    """Each channel times a learned factor started at ``init_value`` (ConvNeXt's ``layer_scale``).

    Keeps the dims of the line it reads, of any rank; the factors live in ``scale``, a
    :class:`neurlink.nn.LayerScale` whose ``weight`` is ``(C, 1, ..., 1)``.
    """

    keeps_rank = True
    layouts = ("map", "vector", "tokens")

    def __init__(self, init_value: float = 1e-6) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        if not isinstance(init_value, (int, float)) or isinstance(init_value, bool):
            raise NerveArgumentError(f"{name}: init_value={init_value!r} is not a number", allowed="a float, e.g. 1e-6")
        keeps_dims(self)
        link = self.input_links[0]
        # channels last (tokens) or no spatial dims: one factor per channel broadcasts over the last dim
        rank = 0 if link.shape.is_tokens else link.rank if link.rank is not None else link.shape.rank
        if rank is None:
            raise DimsError(
                f"{name} cannot tell how many spatial dims line {link.index} has",
                allowed="a line whose nerve fixes its rank (a conv), or a shape written with one value per dim",
            )
        self.scale = _LayerScaleModule(self.target_dims[0].channels, init_value, rank)

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        return ops.module("scale", x)
