"""DenseNet-121, 161, 169 and 201 in the grammar, layer for layer the networks of torchvision.

A dense block's layers each read every feature map before them: the block's input and each earlier
layer's new ``growth_rate`` channels. ``DenseLayer`` reads the lines its selector names (concatenated)
and declares the channels it adds; ``DenseBlock`` chains them and declares the concatenation of all,
``in_channels + num_layers * growth_rate``; ``Transition`` halves the channels with a 1x1 conv and the
size with an unpadded 2x2 average pool, which rounds odd sizes down as torchvision's does:

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.densenet import DenseBlock, DenseLayer, Transition
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((16, 2), nv.Conv2d_BN_ReLU(3)),
...         ((16 + 3 * 8, 2), DenseBlock(3, 8)),  # three layers of growth 8: 16 + 24 channels
...         ((20, 4), Transition()),  # 1x1 conv to 20, 2x2 pool: floor(n / 2)
...         ((8, 4), DenseLayer()),  # one layer on its own: the 8 channels it adds
...         ((28, 4), nv.Concat[[-2, -1]]()),
...     ]
... )
>>> [tuple(y.shape) for y in net(torch.randn(1, 3, 33, 33), output_intermediate=True)]
[(1, 3, 33, 33), (1, 16, 17, 17), (1, 40, 17, 17), (1, 20, 8, 8), (1, 8, 8, 8), (1, 28, 8, 8)]
>>> net[2].line_tags()
{'denselayer1': 1, 'denselayer2': 2, 'denselayer3': 3}
>>> net[2]["denselayer3"].input_links[0].index, len(net[2]["denselayer3"].input_links)  # lines 0, 1, 2
(0, 3)

Every layer is pre-activation, as torchvision's: BatchNorm and ReLU before each conv, so the norms'
channels are those of the lines read (plain ``nn.BatchNorm2d`` lines, sized inside the nerves from
their input links). The stem (7x7 conv stride 2 and a 3x3 max pool stride 2, both padded by ``k // 2``)
pads as the grammar pads, the transitions' pools are ``padding="valid"``, so the two agree at every
input size torchvision takes. The head is torchvision's: the last norm and ReLU, the global average
pool and a ``Linear`` classifier; the network returns ``(N, num_classes)``. The builders tag the stem
conv (``stem``) and each dense block (``stage1`` ... ``stage4``, at ratios 4 to 32).

``memory_efficient`` (torchvision's checkpointing of each layer's bottleneck) is accepted and
changes nothing: it never changes the parameters or the outputs, only what a backward recomputes.
To trade compute for memory, wrap the ``DenseLayer`` modules with
``torch.distributed.algorithms._checkpoint.checkpoint_wrapper.apply_activation_checkpointing``, which
the network's forward follows (it calls the current modules).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import DimsError, NerveArgumentError
from ..nerves._args import positive_int, probability
from ._common import build_initialised, check_keywords, init_weights
from ._published import torchvision_weights

__all__ = ["DenseLayer", "DenseBlock", "Transition", "densenet121", "densenet161", "densenet169", "densenet201"]


def _flag(name: str, value: object, owner: str) -> bool:
    if not isinstance(value, bool):
        raise NerveArgumentError(f"{owner}: {name}={value!r} is not a bool", allowed=f"{name}=True or False")
    return value


def _norm_relu(channels: int, shape: Any) -> list[Any]:
    """A pre-activation: BatchNorm of the line's ``channels``, then ReLU (in place, as torchvision's)."""
    return [((channels, shape), nn.BatchNorm2d(channels)), ((channels, shape), nn.ReLU(inplace=True))]


class DenseLayer(nv.Nerve):
    """DenseNet's layer (torchvision's ``_DenseLayer``): the new ``growth_rate`` channels of its line.

    The lines it reads (one or several, at one shape) are concatenated, then BatchNorm, ReLU, a 1x1
    conv to ``bn_size * growth_rate`` channels (``growth_rate`` is the line's channels), BatchNorm,
    ReLU and a 3x3 conv to the line's channels, with ``nn.Dropout(drop_rate)`` after it where
    ``drop_rate > 0``. The convs have no bias and are tagged ``conv1`` and ``conv2``.
    """

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    def __init__(self, bn_size: int = 4, drop_rate: float = 0.0, *, memory_efficient: bool = False) -> None:
        super().__init__()
        self.expect_links()
        name = type(self).__name__
        positive_int("bn_size", bn_size, name)
        drop_rate = probability("drop_rate", drop_rate, name)
        _flag("memory_efficient", memory_efficient, name)
        if not self.input_links:
            raise DimsError(f"{name} reads at least one line", allowed="a selector choosing the lines it concatenates")
        shape = self.input_links[0].dims[0].shape
        channels = sum(link.dims[0].channels for link in self.input_links)
        dims_out = self.target_dims[0]
        hidden = bn_size * dims_out.channels
        lines: list[Any] = []
        if len(self.input_links) > 1:  # torchvision's torch.cat of every earlier feature map
            lines.append(((channels, shape), nv.Concat[list(range(len(self.input_links)))]()))
        lines += [
            *_norm_relu(channels, shape),  # norm1, relu1
            ((hidden, shape), nv.Conv2d[-1, "conv1"](1, bias=False)),
            *_norm_relu(hidden, shape),  # norm2, relu2
            (dims_out, nv.Conv2d[-1, "conv2"](3, bias=False)),
        ]
        if drop_rate > 0:
            lines.append((dims_out, nn.Dropout(drop_rate)))
        self.add(lines)


class DenseBlock(nv.Nerve):
    """DenseNet's block (torchvision's ``_DenseBlock``): ``num_layers`` :class:`DenseLayer` of
    ``growth_rate`` channels, each reading the block's input and every layer before it, then the
    concatenation of them all.

    The line declares that concatenation, ``in_channels + num_layers * growth_rate`` channels at its
    input's shape. The layers are tagged ``denselayer1`` ... (torchvision's names); ``bn_size``,
    ``drop_rate`` and ``memory_efficient`` go to each.
    """

    spatial_rank = 2

    def __init__(
        self,
        num_layers: int,
        growth_rate: int,
        *,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        positive_int("num_layers", num_layers, name)
        positive_int("growth_rate", growth_rate, name)
        positive_int("bn_size", bn_size, name)  # checked here too, so that the error names the block's line
        drop_rate = probability("drop_rate", drop_rate, name)
        _flag("memory_efficient", memory_efficient, name)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        expected = dims_in.channels + num_layers * growth_rate
        if dims_out.channels != expected:
            raise NerveArgumentError(
                f"{name}: {num_layers} layers of growth_rate={growth_rate} on {dims_in.channels} input channels make"
                f" {dims_in.channels} + {num_layers} * {growth_rate} = {expected} channels, but the line declares"
                f" {dims_out.channels}",
                allowed=f"({expected}, ...) on this line, or num_layers and growth_rate that add"
                f" {dims_out.channels - dims_in.channels} channels",
            )
        if not dims_out.shape.same_as(dims_in.shape, self.input_links[0].rank):
            raise DimsError(
                f"{name} keeps the shape of its input line {self.input_links[0].index}, {dims_in.shape!r}, but this"
                f" line declares {dims_out.shape!r}",
                allowed=f"({dims_out.channels}, {dims_in.shape!r}) on this line; a Transition changes the size",
            )
        layer = {"bn_size": bn_size, "drop_rate": drop_rate}
        if memory_efficient:
            layer["memory_efficient"] = memory_efficient
        lines: list[Any] = [
            ((growth_rate, dims_in.shape), DenseLayer[0:k, f"denselayer{k}"](**layer))  # line 0 is the input
            for k in range(1, num_layers + 1)
        ]
        lines.append((dims_out, nv.Concat[0 : num_layers + 1]()))
        self.add(lines)


class Transition(nv.Nerve):
    """DenseNet's transition (torchvision's ``_Transition``): BatchNorm and ReLU of the input, a 1x1
    conv to the line's channels (no bias, tagged ``conv``) and an unpadded 2x2 average pool to the
    line's shape (tagged ``pool``; ``nn.AvgPool2d(2, 2)``: stride 2 where the line's ratio is twice
    its input's, odd sizes rounded down)."""

    spatial_rank = 2

    def __init__(self) -> None:
        super().__init__()
        self.expect_links(1)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        self.add(
            [
                *_norm_relu(dims_in.channels, dims_in.shape),
                ((dims_out.channels, dims_in.shape), nv.Conv2d[-1, "conv"](1, bias=False)),
                (dims_out, nv.AvgPool2d[-1, "pool"](2, padding="valid")),
            ]
        )


def _densenet(
    builder: str,
    growth_rate: int,
    block_config: tuple[int, ...],
    num_init_features: int,
    num_classes: int,
    keywords: dict[str, Any],
) -> nv.Network:
    check_keywords(builder, keywords, (), ("num_classes", "bn_size", "drop_rate", "memory_efficient"))
    positive_int("num_classes", num_classes, builder)
    layer = {key: keywords[key] for key in ("bn_size", "drop_rate", "memory_efficient") if key in keywords}
    channels, ratio = num_init_features, 4
    lines: list[Any] = [
        ((3, 1), nv.Input()),
        ((channels, 2), nv.Conv2d_BN_ReLU[-1, "stem"](7)),  # conv0, norm0, relu0: 7x7 stride 2 padding 3
        ((channels, ratio), nv.MaxPool2d(3)),  # pool0: 3x3 stride 2 padding 1
    ]
    for stage, layers in enumerate(block_config, start=1):
        channels += layers * growth_rate
        lines.append(((channels, ratio), DenseBlock[-1, f"stage{stage}"](layers, growth_rate, **layer)))
        if stage < len(block_config):
            channels //= 2
            ratio *= 2
            lines.append(((channels, ratio), Transition()))
    lines += [
        *_norm_relu(channels, ratio),  # norm5, then torchvision's F.relu in its forward
        ((channels, "(1, 1)"), nv.AvgPool2d()),
        ((num_classes, "()"), nv.Linear()),  # classifier, flattening the pooled line
    ]
    return build_initialised(lines, _init, head_lines=1)


def _init(net: nv.Network) -> None:
    """torchvision's DenseNet init: convs ``kaiming_normal_`` (fan_in, std ``sqrt(2 / fan_in)``), norms at
    weight 1 and bias 0, the classifier's weight PyTorch's default and its bias 0."""
    init_weights(net, 1, nn.init.kaiming_normal_, lambda weight: None)


@register_model(weights=torchvision_weights)
def densenet121(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """DenseNet-121 (torchvision's ``densenet121``): growth rate 32, blocks of 6, 12, 24 and 16 layers, a
    stem of 64 channels. Returns ``(N, num_classes)``.

    Keywords: ``bn_size`` (4: each layer's bottleneck is ``bn_size * 32`` channels), ``drop_rate`` (0:
    the dropout after each layer) and ``memory_efficient`` (accepted, changes nothing; see the module).
    """
    return _densenet("densenet121", 32, (6, 12, 24, 16), 64, num_classes, keywords)


@register_model(weights=torchvision_weights)
def densenet161(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """DenseNet-161 (torchvision's ``densenet161``): growth rate 48, blocks of 6, 12, 36 and 24 layers, a
    stem of 96 channels."""
    return _densenet("densenet161", 48, (6, 12, 36, 24), 96, num_classes, keywords)


@register_model(weights=torchvision_weights)
def densenet169(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """DenseNet-169 (torchvision's ``densenet169``): growth rate 32, blocks of 6, 12, 32 and 32 layers."""
    return _densenet("densenet169", 32, (6, 12, 32, 32), 64, num_classes, keywords)


@register_model(weights=torchvision_weights)
def densenet201(num_classes: int = 1000, **keywords: Any) -> nv.Network:
    """DenseNet-201 (torchvision's ``densenet201``): growth rate 32, blocks of 6, 12, 48 and 32 layers."""
    return _densenet("densenet201", 32, (6, 12, 48, 32), 64, num_classes, keywords)
