"""ConvNeXt (tiny, small, base, large) in the grammar, layer for layer the networks of torchvision.

``ConvNeXtBlock`` is a public nerve whose sub-lines are the block as written in the paper:

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink import nn
>>> from neurlink.models.convnext import ConvNeXtBlock
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((32, 4), nv.Conv2d(4, norm=nn.LayerNorm2d, bias=True, padding="valid")),  # the stem: 4x4 patches
...         ((32, 4), ConvNeXtBlock(stochastic_depth=0.1)),
...         ((32, 4), nv.LayerNorm2d()),  # downsampling: norm, then a 2x2 conv of stride 2
...         ((64, 8), nv.Conv2d(2, padding="valid")),
...     ]
... )
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 64, 4, 4])
>>> print(net.get_submodule("2").lines_text())  # doctest: +SKIP

torchvision's 4x4 and 2x2 convs are unpadded: the builder's lines say ``padding="valid"``, so odd
sizes are floored as torchvision's are (225 -> 56) and the two are the same network at every size. The stem and the last block of each stage (``stage1`` ... ``stage4``)
are tagged.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import DimsError, NerveArgumentError
from ..nerves._args import Act, positive_int, probability
from ..nn.channels import LayerNorm2d as _LayerNorm2d
from ._common import check_keywords, init_weights
from ._published import torchvision_weights

__all__ = ["ConvNeXtBlock", "convnext_tiny", "convnext_small", "convnext_base", "convnext_large"]


class ConvNeXtBlock(nv.Nerve):
    """torchvision's ``CNBlock``: ``x + drop(scale * mlp(norm(dwconv(x))))``.

    A ``kernel_size`` depthwise conv (with bias), ``LayerNorm2d(eps)``, ``PointwiseLinear`` to
    ``expansion`` times the channels with ``act`` (GELU) and back, ``LayerScale(layer_scale)``
    (``None``: no such line), ``StochasticDepth(stochastic_depth)`` (0: no such line), and the sum.
    The block keeps its dims: downsampling happens between blocks.
    """

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    def __init__(
        self,
        layer_scale: float | None = 1e-6,
        stochastic_depth: float = 0.0,
        *,
        kernel_size: int | Sequence[int] = 7,
        expansion: int = 4,
        eps: float = 1e-6,
        act: Act = nn.GELU,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        dims_in, dims = self.input_links[0].dims[0], self.target_dims[0]
        if not dims_in.same_as(dims):
            raise DimsError(
                f"{name} keeps its dims, but reads {dims_in!r} and declares {dims!r}",
                allowed=f"{dims_in!r} on this line; change channels or shape with a conv line between blocks",
            )
        positive_int("expansion", expansion, name)
        if layer_scale is not None and (not isinstance(layer_scale, (int, float)) or isinstance(layer_scale, bool)):
            raise NerveArgumentError(
                f"{name}: layer_scale={layer_scale!r} is not a number", allowed="a float (1e-6) or None"
            )
        channels = dims.channels
        lines: list[Any] = [
            (dims, nv.Conv2d(kernel_size, groups=channels)),  # line 0 is the block's input
            (dims, nv.LayerNorm2d(eps)),
            ((expansion * channels, dims.shape), nv.PointwiseLinear(act=act)),
            (dims, nv.PointwiseLinear()),
        ]
        if layer_scale is not None:
            lines.append((dims, nv.LayerScale(layer_scale)))
        if stochastic_depth:
            lines.append((dims, nv.StochasticDepth(stochastic_depth)))
        lines.append((dims, nv.Add[[-1, 0]]()))
        self.add(lines)


def _convnext(
    builder: str, widths: tuple[int, ...], depths: tuple[int, ...], num_classes: int, keywords: dict
) -> nv.Network:
    check_keywords(builder, keywords, (ConvNeXtBlock,), ("num_classes", "stochastic_depth_prob"))
    stochastic_depth_prob = probability("stochastic_depth_prob", keywords.pop("stochastic_depth_prob"), builder)
    eps = keywords.get("eps", 1e-6)
    total, index = sum(depths), 0
    lines: list = [
        ((3, 1), nv.Input()),
        # 4x4 patches, stride 4, unpadded as torchvision's (floor(size / 4)), with bias, then the norm
        (
            (widths[0], 4),
            nv.Conv2d[-1, "stem"](4, norm=functools.partial(_LayerNorm2d, eps=eps), bias=True, padding="valid"),
        ),
    ]
    for stage, (width, depth) in enumerate(zip(widths, depths)):
        ratio = 4 * 2**stage
        if stage:  # downsampling between stages
            lines += [
                ((widths[stage - 1], ratio // 2), nv.LayerNorm2d(eps)),
                ((width, ratio), nv.Conv2d(2, padding="valid")),
            ]
        blocks = []
        for _ in range(depth):
            rate = stochastic_depth_prob * index / (total - 1.0)  # as torchvision computes it
            blocks.append(((width, ratio), ConvNeXtBlock, {**keywords, "stochastic_depth": rate}))
            index += 1
        lines += [
            (dims, block[-1, f"stage{stage + 1}"](**kw) if k == depth - 1 else block(**kw))
            for k, (dims, block, kw) in enumerate(blocks)
        ]
    lines += [
        ((widths[-1], "(1, 1)"), nv.AvgPool2d()),
        ((widths[-1], "(1, 1)"), nv.LayerNorm2d(eps)),
        ((num_classes, "(1, 1)"), nv.Conv2d(1)),  # torchvision's Linear classifier, as a 1x1 conv
    ]
    net = nv.build(lines)
    # torchvision: truncated normal (std 0.02) for every conv and Linear, the classifier included
    init = functools.partial(nn.init.trunc_normal_, std=0.02)
    init_weights(net, 0, init, init)
    return net


@register_model(weights=torchvision_weights)
def convnext_tiny(num_classes: int = 1000, *, stochastic_depth_prob: float = 0.1, **keywords: Any) -> nv.Network:
    """ConvNeXt-T (torchvision's ``convnext_tiny``): widths 96 ... 768, depths 3, 3, 9, 3.

    Keywords: ``stochastic_depth_prob`` (rising linearly to it over the blocks) and block keywords
    (``layer_scale``, ``kernel_size``, ``expansion``, ``eps``, ``act``).
    """
    keywords["stochastic_depth_prob"] = stochastic_depth_prob
    return _convnext("convnext_tiny", (96, 192, 384, 768), (3, 3, 9, 3), num_classes, keywords)


@register_model(weights=torchvision_weights)
def convnext_small(num_classes: int = 1000, *, stochastic_depth_prob: float = 0.4, **keywords: Any) -> nv.Network:
    """ConvNeXt-S (torchvision's ``convnext_small``): widths 96 ... 768, depths 3, 3, 27, 3."""
    keywords["stochastic_depth_prob"] = stochastic_depth_prob
    return _convnext("convnext_small", (96, 192, 384, 768), (3, 3, 27, 3), num_classes, keywords)


@register_model(weights=torchvision_weights)
def convnext_base(num_classes: int = 1000, *, stochastic_depth_prob: float = 0.5, **keywords: Any) -> nv.Network:
    """ConvNeXt-B (torchvision's ``convnext_base``): widths 128 ... 1024, depths 3, 3, 27, 3."""
    keywords["stochastic_depth_prob"] = stochastic_depth_prob
    return _convnext("convnext_base", (128, 256, 512, 1024), (3, 3, 27, 3), num_classes, keywords)


@register_model(weights=torchvision_weights)
def convnext_large(num_classes: int = 1000, *, stochastic_depth_prob: float = 0.5, **keywords: Any) -> nv.Network:
    """ConvNeXt-L (torchvision's ``convnext_large``): widths 192 ... 1536, depths 3, 3, 27, 3."""
    keywords["stochastic_depth_prob"] = stochastic_depth_prob
    return _convnext("convnext_large", (192, 384, 768, 1536), (3, 3, 27, 3), num_classes, keywords)
