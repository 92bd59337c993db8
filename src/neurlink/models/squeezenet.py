"""SqueezeNet 1.0 and 1.1 in the grammar, layer for layer the networks of torchvision.

Its block is a public nerve that reads its dims from the line: a 1x1 "squeeze" conv to
``squeeze_channels``, then two "expand" convs of it, 1x1 and 3x3, whose outputs are concatenated
to the line's channels (half each, unless ``expand1x1_channels`` says otherwise):

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.squeezenet import Fire
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((64, 2), nv.Conv2d_ReLU(3, padding="valid")),  # torchvision's unpadded 3x3 stride 2
...         ((64, 4), nv.MaxPool2d(3, padding=0, ceil_mode=True)),  # its MaxPool2d(3, 2, ceil_mode=True)
...         ((128, 4), Fire(16)),  # squeeze to 16, expand to 64 + 64
...     ]
... )
>>> [tuple(y.shape) for y in net(torch.randn(1, 3, 33, 33), output_intermediate=True)]
[(1, 3, 33, 33), (1, 64, 16, 16), (1, 64, 8, 8), (1, 128, 8, 8)]
>>> net[3].line_tags()
{'squeeze': 1, 'expand1x1': 2, 'expand3x3': 3}

The stem conv is unpadded and the pools round up (``ceil_mode``) as torchvision's do, and every size
follows from the input's as in torchvision, so the two agree at every input size torchvision takes
(from 17x17 for 1.1, 21x21 for 1.0). The classifier is torchvision's: dropout, a 1x1 conv to the
classes with a ReLU, and the global average pool; the network returns ``(N, num_classes, 1, 1)``, as
the zoo's other conv classifiers do (torchvision flattens it to ``(N, num_classes)``). The builders
tag the stem conv (``stem``) and the last Fire at each ratio (``stage1`` to ``stage3``, the last one
torchvision's ``features``).
"""

from __future__ import annotations

import functools
from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import DimsError
from ..nerves._args import Act, positive_int
from ._common import build_initialised, check_keywords, init_weights
from ._published import torchvision_weights
from .mobilenet import _dropout

__all__ = ["Fire", "squeezenet1_0", "squeezenet1_1"]


class Fire(nv.Nerve):
    """SqueezeNet's Fire module (torchvision's ``squeezenet.Fire``).

    A 1x1 conv to ``squeeze_channels`` (at the input's shape), then a 1x1 conv to
    ``expand1x1_channels`` (default: half the line's channels) and a 3x3 conv to the rest, both reading
    the squeeze conv and landing on the line's shape (strided if its ratio grows), concatenated along
    the channels. Each conv has a bias and ``act`` (torchvision: ReLU); the sub-lines are tagged
    ``squeeze``, ``expand1x1`` and ``expand3x3``, torchvision's names.
    """

    spatial_rank = 2  # its convs are 2d: the build checks the lines it reads

    def __init__(self, squeeze_channels: int, expand1x1_channels: int | None = None, *, act: Act = nn.ReLU) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        positive_int("squeeze_channels", squeeze_channels, name)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        channels = dims_out.channels
        expand1x1 = channels // 2 if expand1x1_channels is None else expand1x1_channels
        positive_int("expand1x1_channels", expand1x1, name)
        if expand1x1 >= channels:
            raise DimsError(
                f"{name}: expand1x1_channels={expand1x1} leaves none of the line's {channels} channels to the 3x3"
                " expand conv",
                allowed=f"expand1x1_channels below {channels} (the 3x3 conv makes the rest)",
            )
        conv = {} if act is nn.ReLU else {"act": act}  # print(net) stays short with torchvision's ReLU
        self.add(
            [  # line 0 is the block's input
                ((squeeze_channels, dims_in.shape), nv.Conv2d_ReLU[-1, "squeeze"](1, **conv)),
                ((expand1x1, dims_out.shape), nv.Conv2d_ReLU[-1, "expand1x1"](1, **conv)),
                ((channels - expand1x1, dims_out.shape), nv.Conv2d_ReLU["squeeze", "expand3x3"](3, **conv)),
                (dims_out, nv.Concat[["expand1x1", "expand3x3"]]()),
            ]
        )


# (output channels, squeeze channels) of each Fire, by ratio: torchvision's two versions
_FIRES = {
    "1_0": {4: ((128, 16), (128, 16), (256, 32)), 8: ((256, 32), (384, 48), (384, 48), (512, 64)), 16: ((512, 64),)},
    "1_1": {4: ((128, 16), (128, 16)), 8: ((256, 32), (256, 32)), 16: ((384, 48), (384, 48), (512, 64), (512, 64))},
}
_STEMS = {"1_0": (96, 7), "1_1": (64, 3)}  # channels, kernel of the unpadded stride-2 stem conv


def _squeezenet(builder: str, version: str, num_classes: int, dropout: float, keywords: dict[str, Any]) -> nv.Network:
    check_keywords(builder, keywords, (), ("num_classes", "dropout"))
    positive_int("num_classes", num_classes, builder)
    dropout = _dropout(dropout)
    channels, kernel = _STEMS[version]
    lines: list[Any] = [
        ((3, 1), nv.Input()),
        ((channels, 2), nv.Conv2d_ReLU[-1, "stem"](kernel, padding="valid")),
    ]
    for stage, (ratio, fires) in enumerate(_FIRES[version].items(), start=1):
        lines.append(((channels, ratio), nv.MaxPool2d(3, padding=0, ceil_mode=True)))  # MaxPool2d(3, 2, ceil_mode=True)
        for k, (channels, squeeze) in enumerate(fires):
            fire = Fire[-1, f"stage{stage}"] if k == len(fires) - 1 else Fire
            lines.append(((channels, ratio), fire(squeeze)))
    lines += [
        ((channels, ratio), nn.Dropout(dropout)),
        ((num_classes, ratio), nv.Conv2d_ReLU(1)),  # torchvision's final_conv and its ReLU
        ((num_classes, "(1, 1)"), nv.AvgPool2d()),
    ]
    return build_initialised(lines, _init, head_lines=2)


def _init(net: nv.Network) -> None:
    """torchvision's SqueezeNet init: convs He-uniform (fan_in), the final conv normal(0, 0.01), biases zero."""
    init_weights(net, 2, nn.init.kaiming_uniform_, functools.partial(nn.init.normal_, mean=0.0, std=0.01))


@register_model(weights=torchvision_weights)
def squeezenet1_0(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """SqueezeNet 1.0 (torchvision's ``squeezenet1_0``): a 7x7 stem of 96 channels, eight Fire modules.

    ``dropout`` before the classifier (torchvision's 0.5). Returns ``(N, num_classes, 1, 1)``.
    """
    return _squeezenet("squeezenet1_0", "1_0", num_classes, dropout, keywords)


@register_model(weights=torchvision_weights)
def squeezenet1_1(num_classes: int = 1000, *, dropout: float = 0.5, **keywords: Any) -> nv.Network:
    """SqueezeNet 1.1 (torchvision's ``squeezenet1_1``): a 3x3 stem of 64 channels, the pools earlier, 2.4x
    fewer MACs than 1.0 at about the same accuracy. Returns ``(N, num_classes, 1, 1)``."""
    return _squeezenet("squeezenet1_1", "1_1", num_classes, dropout, keywords)
