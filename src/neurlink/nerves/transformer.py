"""The transformer's blocks in lines: ``MLP`` per token and the pre-norm ``TransformerBlock``.

A block is a nerve whose parts are sub-lines tagged with timm's names (``norm1``, ``attn``, ``ls1``,
``drop_path1``, ``norm2``, ``mlp``, ...), so ``block["attn"]`` is its attention as ``net["head"]`` is a
line of a network:

>>> import torch
>>> import neurlink.nerves as nv
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((64, 8), nv.Conv2d(8)),
...         ((64, nv.tokens(8)), nv.ToTokens()),
...         [((64, nv.tokens(8)), nv.TransformerBlock(heads=4, mlp=256))] * 2,
...     ]
... )
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 16, 64])
>>> list(net[3].line_tags())
['norm1', 'attn', 'residual1', 'norm2', 'mlp', 'residual2']
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DimsError
from ..interpreter import Ops, optional_child
from ..nerve import Nerve
from ._args import Act, make_act, positive_int, probability
from .attention import SelfAttention, tokens_and_mask
from .channels import LayerNorm, LayerScale
from .drop import StochasticDepth
from .merge import Add

__all__ = ["MLP", "TransformerBlock"]


class MLP(Nerve):
    """Two linear layers per token with an activation between: ``nv.MLP(3072)`` (the hidden features),
    torchvision's ``MLPBlock`` and timm's ``Mlp``. Children ``fc1``, ``act``, ``drop1``, ``fc2``,
    ``drop2`` (the dropouts where ``dropout > 0``); the line declares the tokens (or vectors) it makes,
    their channels those of ``fc2``."""

    keeps_rank = True
    layouts = ("tokens", "vector")

    def __init__(self, hidden: int, *, act: Act = nn.GELU, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        link, target = self.input_links[0], self.target_dims[0]
        if not target.shape.same_as(link.shape, link.rank):
            raise DimsError(
                f"{name} acts on each token of line {link.index}, {link.shape!r}, but the line declares"
                f" {target.shape!r}",
                allowed=f"({target.channels}, {link.shape!r})",
            )
        hidden = positive_int("hidden", hidden, name)
        p = probability("dropout", dropout, name)
        if not isinstance(bias, bool):
            raise DimsError(f"{name}: bias={bias!r} is not a bool", allowed="bias=True or False")
        self.fc1 = nn.Linear(link.channels, hidden, bias=bias)
        self.register_module("act", make_act(act, name))
        self.register_module("drop1", nn.Dropout(p) if p else None)
        self.fc2 = nn.Linear(hidden, target.channels, bias=bias)
        self.register_module("drop2", nn.Dropout(p) if p else None)

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        x = ops.module("fc1", x)
        for name in ("act", "drop1"):
            if optional_child(self, name) is not None:
                x = ops.module(name, x)
        x = ops.module("fc2", x)
        if optional_child(self, "drop2") is not None:
            x = ops.module("drop2", x)
        return x


class TransformerBlock(Nerve):
    """A pre-norm transformer block on a line of tokens, keeping its dims (torchvision's ViT
    ``EncoderBlock``, timm's ``Block``)::

        x = x + drop_path(ls1(dropout(attn(norm1(x)))))
        x = x + drop_path(ls2(mlp(norm2(x))))

    ``heads`` and ``mlp`` (the MLP's hidden features) are required; ``eps`` is the norms'
    (``nn.LayerNorm``), ``dropout`` follows attention and each of the MLP's layers (torchvision's),
    ``attention_dropout`` drops attention weights, ``drop_path`` is stochastic depth per sample,
    ``layer_scale`` a learned factor per channel started at that value (None: none), ``causal`` masks
    later tokens. Its parts are sub-lines tagged ``norm1``, ``attn``, ``ls1``, ``drop_path1``,
    ``residual1``, ``norm2``, ``mlp``, ``ls2``, ``drop_path2``, ``residual2`` (those it has). With a
    padding mask selected too, ``nv.TransformerBlock[[-1, "mask"]](...)``, attention leaves out the
    tokens it marks (True).
    """

    keeps_rank = True
    layouts = ("tokens",)

    def __init__(
        self,
        heads: int,
        mlp: int,
        *,
        eps: float = 1e-6,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        layer_scale: float | None = None,
        causal: bool = False,
        act: Act = nn.GELU,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        tokens_and_mask(self)
        masked = len(self.input_links) == 2
        link, dims = self.input_links[0], self.target_dims[0]
        if not link.dims[0].same_as(dims, link.rank):
            raise DimsError(
                f"{name} keeps the dims of line {link.index}, {link.dims[0]!r}, but this line declares {dims!r}",
                allowed=f"{link.dims[0]!r} on this line",
            )
        p = probability("dropout", dropout, name)
        drop = probability("drop_path", drop_path, name)
        d = (dims.channels, dims.shape)
        lines: list = [
            (d, LayerNorm[0, "norm1"](eps)),
            (d, SelfAttention[[-1, 1] if masked else -1, "attn"](heads, dropout=attention_dropout, causal=causal)),
        ]
        if p:
            lines.append((d, nn.Dropout(p)))
        lines += self._branch_end(d, 1, layer_scale, drop)
        lines.append((d, Add[[0, -1], "residual1"]()))
        lines += [(d, LayerNorm[-1, "norm2"](eps)), (d, MLP[-1, "mlp"](mlp, act=act, dropout=p))]
        lines += self._branch_end(d, 2, layer_scale, drop)
        lines.append((d, Add[["residual1", -1], "residual2"]()))
        self.add(lines)

    @staticmethod
    def _branch_end(d, k: int, layer_scale: float | None, drop: float) -> list:
        lines: list = []
        if layer_scale is not None:
            lines.append((d, LayerScale[-1, f"ls{k}"](layer_scale)))
        if drop:
            lines.append((d, StochasticDepth[-1, f"drop_path{k}"](drop)))
        return lines
