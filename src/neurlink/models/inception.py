"""Inception-v3 in the grammar, layer for layer torchvision's ``inception_v3``.

Its blocks are public nerves that read their dims from the line, each a few branches of the input
concatenated: ``InceptionA`` (1x1; 1x1 then 5x5; 1x1 then two 3x3; a 3x3 average pool then 1x1) and
``InceptionC`` (its 7x7 factorised into 1x7 and 7x1 convs) keep the input's shape; ``InceptionB`` and
``InceptionD`` halve it with unpadded stride-2 convs and an unpadded 3x3 max pool; ``InceptionE``
splits its 3x3 branches into a 1x3 and a 3x1 conv, both kept:

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.inception import InceptionA, InceptionB
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((192, 8), nv.Conv2d_BN_ReLU(3)),
...         ((256, 8), InceptionA(32)),  # 64 + 64 + 96 + 32 channels
...         ((736, 16), InceptionB()),  # 384 + 96 + the input's 256, unpadded: floor((n - 3) / 2) + 1
...     ]
... )
>>> [tuple(y.shape) for y in net(torch.randn(1, 3, 72, 72), outputs=[2, 3])]
[(1, 256, 9, 9), (1, 736, 4, 4)]
>>> list(net[2].line_tags())
['branch1x1', 'branch5x5_1', 'branch5x5_2', 'branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3', 'branch_pool']

The conv sub-lines are tagged with torchvision's names, which the weight mapping reads. torchvision's
geometry is written as it is: the stem's unpadded convs and pools (``padding="valid"``), the branches'
average pools counting their zero padding (``count_include_pad=True``, as ``F.avg_pool2d``), so the
network equals torchvision's at every input size it takes (75x75 and up). The builder tags every block
with torchvision's name (``Mixed_5b`` ... ``Mixed_7c``), so ``net(x, outputs=["Mixed_5d", "Mixed_6e",
"Mixed_7c"])`` is a feature pyramid at ratios 8, 16 and 32 (of sizes ``floor``-rounded from there), and
the classifier ``logits``.

**The auxiliary classifier.** With ``aux_logits=True`` (torchvision's default) an :class:`InceptionAux`
line (tagged ``aux``, after the classifier) reads ``Mixed_6e``; the network returns
``InceptionOutputs(logits, aux_logits)`` in training and the logits alone in eval, as torchvision's
(:class:`~neurlink.models.AuxLogitsNetwork`). The head's unpadded 5x5 pool (stride 3) and 5x5
conv need ``Mixed_6e`` at 17x17 or more, so in training both networks take images of 299x299 or about
that size (295 and up); in eval the head computes nothing and any size from 75 runs.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from torch import nn

from .. import nerves as nv
from .._registry import register_model
from ..errors import DimsError
from ..nerves._args import Act, Norm, positive_int
from ._common import check_keywords
from .googlenet import (
    AuxiliaryHead,
    AuxLogitsNetwork,
    TransformInput,
    _check_output,
    _vector_line,
    basic_conv_norm,
    conv_keywords,
    published_weights,
    trunc_normal_init,
)
from .mobilenet import _dropout, _keywords

__all__ = [
    "InceptionA",
    "InceptionB",
    "InceptionC",
    "InceptionD",
    "InceptionE",
    "InceptionAux",
    "InceptionOutputs",
    "inception_v3",
]

# what torchvision's Inception3 returns in training (its field names)
InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])


class _Branches(nv.Nerve):
    """The blocks' shared setup: one input, torchvision's convs (BasicConv2d) with ``norm`` and ``act``."""

    spatial_rank = 2

    def _setup(self, norm: Norm, act: Act) -> dict[str, Any]:
        self.expect_links(1)
        return conv_keywords(norm, act)


def _conv(channels: int, shape: Any, selector: Any, tag: str, kernel: Any, conv: dict[str, Any], **more: Any) -> Any:
    return ((channels, shape), nv.Conv2d_BN_ReLU[selector, tag](kernel, **conv, **more))


def _same_pool(channels: int, shape: Any) -> Any:
    """``F.avg_pool2d(x, 3, stride=1, padding=1)``: PyTorch's average counts the zero padding."""
    return ((channels, shape), nv.AvgPool2d[0](3, count_include_pad=True))


class InceptionA(_Branches):
    """Inception-v3's ``InceptionA`` (Mixed_5b ... 5d), at its input's shape: a 1x1 conv to 64; a 1x1 to 48
    then a 5x5 to 64; a 1x1 to 64 then two 3x3 to 96; a 3x3 average pool then a 1x1 to ``pool_features``.
    The line declares ``224 + pool_features`` channels."""

    def __init__(self, pool_features: int, *, norm: Norm = basic_conv_norm, act: Act = nn.ReLU) -> None:
        super().__init__()
        conv = self._setup(norm, act)
        positive_int("pool_features", pool_features, type(self).__name__)
        _check_output(self, 224 + pool_features, f"64 + 64 + 96 + {pool_features}", same_shape=True)
        dims_in = self.input_links[0].dims[0]
        shape = dims_in.shape
        self.add(
            [
                _conv(64, shape, 0, "branch1x1", 1, conv),
                _conv(48, shape, 0, "branch5x5_1", 1, conv),
                _conv(64, shape, -1, "branch5x5_2", 5, conv),
                _conv(64, shape, 0, "branch3x3dbl_1", 1, conv),
                _conv(96, shape, -1, "branch3x3dbl_2", 3, conv),
                _conv(96, shape, -1, "branch3x3dbl_3", 3, conv),
                _same_pool(dims_in.channels, shape),
                _conv(pool_features, shape, -1, "branch_pool", 1, conv),
                (self.target_dims[0], nv.Concat[[1, 3, 6, 8]]()),
            ]
        )


class InceptionB(_Branches):
    """Inception-v3's ``InceptionB`` (Mixed_6a), to a larger ratio: an unpadded 3x3 conv to 384; a 1x1 to
    64, a 3x3 to 96 and an unpadded 3x3 to 96; an unpadded 3x3 max pool of the input. The convs and the pool
    are strided by the ratio the line grows by (2 in torchvision); the line declares ``480 + `` the input's
    channels."""

    def __init__(self, *, norm: Norm = basic_conv_norm, act: Act = nn.ReLU) -> None:
        super().__init__()
        conv = self._setup(norm, act)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        _check_output(self, 480 + dims_in.channels, f"384 + 96 + {dims_in.channels}", same_shape=False)
        shape_in, shape_out = dims_in.shape, dims_out.shape
        self.add(
            [
                _conv(384, shape_out, 0, "branch3x3", 3, conv, padding="valid"),
                _conv(64, shape_in, 0, "branch3x3dbl_1", 1, conv),
                _conv(96, shape_in, -1, "branch3x3dbl_2", 3, conv),
                _conv(96, shape_out, -1, "branch3x3dbl_3", 3, conv, padding="valid"),
                ((dims_in.channels, shape_out), nv.MaxPool2d[0](3, padding="valid")),
                (dims_out, nv.Concat[[1, 4, 5]]()),
            ]
        )


class InceptionC(_Branches):
    """Inception-v3's ``InceptionC`` (Mixed_6b ... 6e), at its input's shape: a 1x1 conv to 192; a 1x1 to
    ``channels_7x7``, a 1x7 and a 7x1 (to 192); a 1x1, then 7x1, 1x7, 7x1 and 1x7 (to 192); a 3x3 average
    pool then a 1x1 to 192. The line declares 768 channels."""

    def __init__(self, channels_7x7: int, *, norm: Norm = basic_conv_norm, act: Act = nn.ReLU) -> None:
        super().__init__()
        conv = self._setup(norm, act)
        c7 = positive_int("channels_7x7", channels_7x7, type(self).__name__)
        _check_output(self, 768, "192 + 192 + 192 + 192", same_shape=True)
        dims_in = self.input_links[0].dims[0]
        shape = dims_in.shape
        self.add(
            [
                _conv(192, shape, 0, "branch1x1", 1, conv),
                _conv(c7, shape, 0, "branch7x7_1", 1, conv),
                _conv(c7, shape, -1, "branch7x7_2", (1, 7), conv),
                _conv(192, shape, -1, "branch7x7_3", (7, 1), conv),
                _conv(c7, shape, 0, "branch7x7dbl_1", 1, conv),
                _conv(c7, shape, -1, "branch7x7dbl_2", (7, 1), conv),
                _conv(c7, shape, -1, "branch7x7dbl_3", (1, 7), conv),
                _conv(c7, shape, -1, "branch7x7dbl_4", (7, 1), conv),
                _conv(192, shape, -1, "branch7x7dbl_5", (1, 7), conv),
                _same_pool(dims_in.channels, shape),
                _conv(192, shape, -1, "branch_pool", 1, conv),
                (self.target_dims[0], nv.Concat[[1, 4, 9, 11]]()),
            ]
        )


class InceptionD(_Branches):
    """Inception-v3's ``InceptionD`` (Mixed_7a), to a larger ratio: a 1x1 conv to 192 then an unpadded 3x3
    to 320; a 1x1 to 192, a 1x7, a 7x1 and an unpadded 3x3 (to 192); an unpadded 3x3 max pool of the input.
    The line declares ``512 + `` the input's channels."""

    def __init__(self, *, norm: Norm = basic_conv_norm, act: Act = nn.ReLU) -> None:
        super().__init__()
        conv = self._setup(norm, act)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        _check_output(self, 512 + dims_in.channels, f"320 + 192 + {dims_in.channels}", same_shape=False)
        shape_in, shape_out = dims_in.shape, dims_out.shape
        self.add(
            [
                _conv(192, shape_in, 0, "branch3x3_1", 1, conv),
                _conv(320, shape_out, -1, "branch3x3_2", 3, conv, padding="valid"),
                _conv(192, shape_in, 0, "branch7x7x3_1", 1, conv),
                _conv(192, shape_in, -1, "branch7x7x3_2", (1, 7), conv),
                _conv(192, shape_in, -1, "branch7x7x3_3", (7, 1), conv),
                _conv(192, shape_out, -1, "branch7x7x3_4", 3, conv, padding="valid"),
                ((dims_in.channels, shape_out), nv.MaxPool2d[0](3, padding="valid")),
                (dims_out, nv.Concat[[2, 6, 7]]()),
            ]
        )


class InceptionE(_Branches):
    """Inception-v3's ``InceptionE`` (Mixed_7b, 7c), at its input's shape: a 1x1 conv to 320; a 1x1 to 384
    then both a 1x3 and a 3x1 (384 each); a 1x1 to 448, a 3x3 to 384, then both a 1x3 and a 3x1; a 3x3
    average pool then a 1x1 to 192. The line declares 2048 channels."""

    def __init__(self, *, norm: Norm = basic_conv_norm, act: Act = nn.ReLU) -> None:
        super().__init__()
        conv = self._setup(norm, act)
        _check_output(self, 2048, "320 + 384 + 384 + 384 + 384 + 192", same_shape=True)
        dims_in = self.input_links[0].dims[0]
        shape = dims_in.shape
        self.add(
            [
                _conv(320, shape, 0, "branch1x1", 1, conv),
                _conv(384, shape, 0, "branch3x3_1", 1, conv),
                _conv(384, shape, 2, "branch3x3_2a", (1, 3), conv),
                _conv(384, shape, 2, "branch3x3_2b", (3, 1), conv),
                _conv(448, shape, 0, "branch3x3dbl_1", 1, conv),
                _conv(384, shape, -1, "branch3x3dbl_2", 3, conv),
                _conv(384, shape, 6, "branch3x3dbl_3a", (1, 3), conv),
                _conv(384, shape, 6, "branch3x3dbl_3b", (3, 1), conv),
                _same_pool(dims_in.channels, shape),
                _conv(192, shape, -1, "branch_pool", 1, conv),
                (self.target_dims[0], nv.Concat[[1, 3, 4, 7, 8, 10]]()),
            ]
        )


class InceptionAux(AuxiliaryHead):
    """Inception-v3's auxiliary classifier (torchvision's ``inception.InceptionAux``), to the line's classes.

    An unpadded 5x5 average pool at stride 3 (to 3 times the input's ratio), a 1x1 conv to 128 (``conv0``),
    an unpadded 5x5 conv to 768 (``conv1``), an adaptive average pool to 1x1 and a Linear layer to the
    classes (``fc``). The line declares a vector, ``(num_classes, "()")``; in eval it computes nothing
    (see GoogLeNet's ``AuxiliaryHead``).
    """

    spatial_rank = 2

    def __init__(self, *, norm: Norm = basic_conv_norm, act: Act = nn.ReLU) -> None:
        super().__init__()
        self.expect_links(1)
        _vector_line(self)
        conv = conv_keywords(norm, act)
        dims_in, classes = self.input_links[0].dims[0], self.target_dims[0].channels
        shape = dims_in.shape
        if shape.ratios is None or shape.is_tokens:
            raise DimsError(
                f"InceptionAux pools its input at stride 3, so line {self.input_links[0].index} must be a map at a"
                f" ratio, not {shape!r}",
                allowed="a line at a ratio of the base shape (Inception-v3's Mixed_6e is at 16)",
            )
        pooled: Any = shape.ratios[0] * 3 if shape.broadcast else tuple(r * 3 for r in shape.ratios)
        self.add(
            [
                ((dims_in.channels, pooled), nv.AvgPool2d(5, padding="valid")),
                _conv(128, pooled, -1, "conv0", 1, conv),
                _conv(768, pooled, -1, "conv1", 5, conv, padding="valid"),
                ((768, "(1, 1)"), nv.AvgPool2d()),
                ((classes, "()"), nv.Linear[-1, "fc"]()),
            ]
        )


# --- the network -----------------------------------------------------------------------------


def inception_v3_lines(
    num_classes: int, aux_logits: bool, transform_input: bool, dropout: float, norm: Norm, act: Act
) -> list[Any]:
    """The lines of torchvision's ``Inception3``; with ``aux_logits``, the auxiliary head after the classifier."""
    conv = conv_keywords(norm, act)
    block = _keywords({"norm": basic_conv_norm, "act": nn.ReLU}, norm=norm, act=act)
    lines: list[Any] = [((3, 1), nv.Input())]
    if transform_input:
        lines.append(((3, 1), TransformInput()))
    lines += [
        ((32, 2), nv.Conv2d_BN_ReLU(3, padding="valid", **conv)),  # Conv2d_1a_3x3: stride 2
        ((32, 2), nv.Conv2d_BN_ReLU(3, padding="valid", **conv)),  # Conv2d_2a_3x3
        ((64, 2), nv.Conv2d_BN_ReLU(3, **conv)),  # Conv2d_2b_3x3: padding 1
        ((64, 4), nv.MaxPool2d(3, padding="valid")),  # maxpool1
        ((80, 4), nv.Conv2d_BN_ReLU(1, **conv)),  # Conv2d_3b_1x1
        ((192, 4), nv.Conv2d_BN_ReLU(3, padding="valid", **conv)),  # Conv2d_4a_3x3
        ((192, 8), nv.MaxPool2d(3, padding="valid")),  # maxpool2
        ((256, 8), InceptionA[-1, "Mixed_5b"](32, **block)),
        ((288, 8), InceptionA[-1, "Mixed_5c"](64, **block)),
        ((288, 8), InceptionA[-1, "Mixed_5d"](64, **block)),
        ((768, 16), InceptionB[-1, "Mixed_6a"](**block)),
        ((768, 16), InceptionC[-1, "Mixed_6b"](128, **block)),
        ((768, 16), InceptionC[-1, "Mixed_6c"](160, **block)),
        ((768, 16), InceptionC[-1, "Mixed_6d"](160, **block)),
        ((768, 16), InceptionC[-1, "Mixed_6e"](192, **block)),
        ((1280, 32), InceptionD[-1, "Mixed_7a"](**block)),
        ((2048, 32), InceptionE[-1, "Mixed_7b"](**block)),
        ((2048, 32), InceptionE[-1, "Mixed_7c"](**block)),
        ((2048, "(1, 1)"), nv.AvgPool2d()),
        ((2048, "(1, 1)"), nn.Dropout(_dropout(dropout))),
        ((num_classes, "()"), nv.Linear[-1, "logits"]()),
    ]
    if aux_logits:
        lines.append(((num_classes, "()"), InceptionAux["Mixed_6e", "aux"](**block)))
    return lines


def _inception_v3(
    num_classes: int = 1000,
    *,
    aux_logits: bool = True,
    transform_input: bool = False,
    dropout: float = 0.5,
    **keywords: Any,
) -> nv.Network:
    check_keywords("inception_v3", keywords, (), ("num_classes", "aux_logits", "transform_input", "dropout",
                                                  "norm", "act"))  # fmt: skip
    lines = inception_v3_lines(
        num_classes,
        bool(aux_logits),
        bool(transform_input),
        dropout,
        keywords.get("norm", basic_conv_norm),
        keywords.get("act", nn.ReLU),
    )
    net = AuxLogitsNetwork(lines, ["logits", "aux"], InceptionOutputs) if aux_logits else nv.build(lines)
    # torchvision's init reads a ``stddev`` attribute of each conv and Linear: only the auxiliary head's fc
    # has one, 0.001 (its ``conv1.stddev = 0.01`` is set on the BasicConv2d, which the init never reads)
    aux_fc = {id(m) for head in net.modules() if isinstance(head, InceptionAux) for m in head.modules()}
    trunc_normal_init(net, lambda module: 0.001 if id(module) in aux_fc and isinstance(module, nn.Linear) else 0.1)
    return net


@register_model(weights=published_weights(_inception_v3, aux_default=True))
def inception_v3(
    num_classes: int = 1000,
    *,
    aux_logits: bool = True,
    transform_input: bool = False,
    dropout: float = 0.5,
    **keywords: Any,
) -> nv.Network:
    """Inception-v3 (torchvision's ``inception_v3``): 27.2 M parameters with the auxiliary head, 23.8 M without.

    Keywords as torchvision's ``Inception3``: ``aux_logits`` (the auxiliary classifier, returned in training as
    ``InceptionOutputs(logits, aux_logits)``), ``transform_input`` (a first :class:`~neurlink.models.TransformInput` line) and
    ``dropout`` before the classifier; and ``norm`` and ``act`` for every conv (torchvision: BatchNorm of eps
    0.001, ReLU). With ``weights=``, as torchvision's builder: ``transform_input`` unless the keywords say
    otherwise.
    """
    return _inception_v3(
        num_classes, aux_logits=aux_logits, transform_input=transform_input, dropout=dropout, **keywords
    )
