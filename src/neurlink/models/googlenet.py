"""GoogLeNet (Inception v1) in the grammar, layer for layer torchvision's ``googlenet``.

Its block is a public nerve that reads its dims from the line: four branches of the input, a 1x1
conv, a 1x1 then a 3x3 conv, another 1x1 then 3x3 (torchvision's "5x5" branch, a 3x3 as in
torchvision), and a 3x3 max pool then a 1x1 conv, concatenated:

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.models.googlenet import Inception
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((192, 8), nv.Conv2d_BN_ReLU(3)),
...         ((256, 8), Inception(64, 96, 128, 16, 32, 32)),  # 64 + 128 + 32 + 32 channels
...     ]
... )
>>> net(torch.randn(1, 3, 64, 64)).shape
torch.Size([1, 256, 8, 8])
>>> net[2].line_tags()
{'branch1': 1, 'branch2.0': 2, 'branch2.1': 3, 'branch3.0': 4, 'branch3.1': 5, 'branch4.1': 7}

The conv sub-lines are tagged with torchvision's names, which the weight mapping reads. torchvision's
geometry is written as it is: the stem conv padded 3, the max pools between stages unpadded in ceil mode
(``nv.MaxPool2d(3, padding=0, ceil_mode=True)``), so the network equals torchvision's at every input
size (15x15 and up). Every conv is followed by BatchNorm of eps 0.001 and ReLU (torchvision's
``BasicConv2d``). The builder tags every block with torchvision's name (``inception3a`` ...
``inception5b``), so ``net(x, outputs=["inception3b", "inception4e", "inception5b"])`` is a feature
pyramid at ratios 8, 16 and 32, and the classifier ``logits``.

**Auxiliary classifiers.** With ``aux_logits=True`` (torchvision's default without weights) two
:class:`GoogLeNetAux` lines read ``inception4a`` and ``inception4d`` (tagged ``aux1`` and ``aux2``,
after the classifier). As torchvision's, the network returns ``GoogLeNetOutputs(logits, aux_logits2,
aux_logits1)`` in training and the logits alone in eval (:class:`AuxLogitsNetwork`); in eval the
auxiliary lines compute nothing and give zeros, which only ``outputs=["aux1"]`` would show.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx, nn

from .. import nerves as nv
from .._names import nameable
from .._registry import WeightsLoader, register_model
from ..errors import DimsError
from ..interpreter import Ops
from ..nerves._args import Act, Norm, keeps_dims, positive_int, probability
from ._common import check_keywords
from ._published import torchvision_weights
from .mobilenet import _dropout, _keywords

__all__ = [
    "AuxLogitsNetwork",
    "GoogLeNetAux",
    "GoogLeNetOutputs",
    "Inception",
    "TransformInput",
    "basic_conv_norm",
    "googlenet",
]


@nameable
def basic_conv_norm(channels: int) -> nn.BatchNorm2d:
    """The norm of torchvision's ``BasicConv2d`` (GoogLeNet's and Inception-v3's convs): ``nn.BatchNorm2d`` of eps
    0.001 (a named function, so that the lines print it short)."""
    return nn.BatchNorm2d(channels, eps=0.001)


# what torchvision's GoogLeNet returns in training (its field names)
GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


def conv_keywords(norm: Norm, act: Act) -> dict[str, Any]:
    """The keywords of a ``Conv2d_BN_ReLU`` line of torchvision's ``BasicConv2d`` (those that differ from its own)."""
    return {"norm": norm, **({} if act is nn.ReLU else {"act": act})}  # Conv2d_BN_ReLU's own norm has eps 1e-5


class TransformInput(nv.Nerve):
    """torchvision's ``transform_input`` of GoogLeNet and Inception-v3: an image normalised with ImageNet's
    mean and std (``(x - mean) / std``) renormalised to mean 0.5 and std 0.5, the normalisation the
    networks' published weights were trained with: channel ``c`` becomes ``x * (std[c] / 0.5) +
    (mean[c] - 0.5) / 0.5``. The line keeps its input's dims, of 3 channels.
    """

    spatial_rank = 2

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self) -> None:
        super().__init__()
        self.expect_links(1)
        keeps_dims(self)
        channels = self.target_dims[0].channels
        if channels != 3:
            raise DimsError(
                f"TransformInput renormalises the 3 channels of an RGB image, but line {self.input_links[0].index}"
                f" has {channels}",
                allowed="a line of 3 channels (an RGB image)",
            )

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        return ops.function(_renormalise, x)


def _renormalise(x: torch.Tensor) -> torch.Tensor:
    """Each channel scaled and shifted in torchvision's order of operations (so the values are its own)."""
    channels = [
        x[:, c : c + 1] * (std / 0.5) + (mean - 0.5) / 0.5
        for c, (mean, std) in enumerate(zip(TransformInput.MEAN, TransformInput.STD))
    ]
    return torch.cat(channels, 1)


class Inception(nv.Nerve):
    """GoogLeNet's block (torchvision's ``googlenet.Inception``), at its input's shape.

    Four branches of the input, concatenated in order: a 1x1 conv to ``ch1x1`` channels; a 1x1 conv to
    ``ch3x3red`` then a 3x3 to ``ch3x3``; a 1x1 conv to ``ch5x5red`` then a 3x3 to ``ch5x5`` (a 3x3, as
    torchvision's, which keeps the name of the paper's 5x5); a 3x3 max pool (stride 1, padding 1) then a
    1x1 conv to ``pool_proj``. The line declares their sum. ``norm`` and ``act`` go to every conv
    (torchvision: BatchNorm of eps 0.001, ReLU).
    """

    spatial_rank = 2

    def __init__(
        self,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        *,
        norm: Norm = basic_conv_norm,
        act: Act = nn.ReLU,
    ) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        widths = {"ch1x1": ch1x1, "ch3x3red": ch3x3red, "ch3x3": ch3x3, "ch5x5red": ch5x5red, "ch5x5": ch5x5}
        for key, value in (*widths.items(), ("pool_proj", pool_proj)):
            positive_int(key, value, name)
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        total = ch1x1 + ch3x3 + ch5x5 + pool_proj
        _check_output(self, total, f"{ch1x1} + {ch3x3} + {ch5x5} + {pool_proj}", same_shape=True)
        conv = conv_keywords(norm, act)
        shape = dims_in.shape
        self.add(
            [  # line 0 is the block's input
                ((ch1x1, shape), nv.Conv2d_BN_ReLU[0, "branch1"](1, **conv)),
                ((ch3x3red, shape), nv.Conv2d_BN_ReLU[0, "branch2.0"](1, **conv)),
                ((ch3x3, shape), nv.Conv2d_BN_ReLU[-1, "branch2.1"](3, **conv)),
                ((ch5x5red, shape), nv.Conv2d_BN_ReLU[0, "branch3.0"](1, **conv)),
                ((ch5x5, shape), nv.Conv2d_BN_ReLU[-1, "branch3.1"](3, **conv)),
                ((dims_in.channels, shape), nv.MaxPool2d[0](3, padding=1, ceil_mode=True)),
                ((pool_proj, shape), nv.Conv2d_BN_ReLU[-1, "branch4.1"](1, **conv)),
                (dims_out, nv.Concat[[1, 3, 5, 7]]()),
            ]
        )


def _check_output(nerve: nv.Nerve, channels: int, parts: str, *, same_shape: bool) -> None:
    """The line must declare the channels its branches make, and (``same_shape``) its input's shape."""
    link, declared = nerve.input_links[0], nerve.target_dims[0]
    name = type(nerve).__name__
    if declared.channels != channels:
        raise DimsError(
            f"{name}'s branches make {parts} = {channels} channels, but the line declares {declared.channels}",
            allowed=f"({channels}, {declared.shape!r}) on this line",
        )
    if same_shape and not declared.shape.same_as(link.dims[0].shape, 2):
        raise DimsError(
            f"{name} keeps the shape {link.dims[0].shape!r} of its input line {link.index}, but the line"
            f" declares {declared.shape!r}",
            allowed=f"({channels}, {link.dims[0].shape!r}) on this line",
        )


class AuxiliaryHead(nv.Nerve):
    """An auxiliary classifier: its sub-lines run in training only. In eval (where torchvision computes no
    auxiliary logits) the line gives zeros of its declared dims, without computing them."""

    def forward(self, x: torch.Tensor, base_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        if self.training:
            return super().forward(x, base_shape=base_shape)
        return x.new_zeros(x.shape[0], self.target_dims[0].channels)


class GoogLeNetAux(AuxiliaryHead):
    """GoogLeNet's auxiliary classifier (torchvision's ``googlenet.InceptionAux``), to the line's classes.

    An adaptive average pool to 4x4, a 1x1 conv to 128 channels (with ``norm`` and ``act``), then Linear
    layers to 1024 (tagged ``fc1``, then ReLU and dropout of ``dropout``) and to the classes (``fc2``).
    The line declares a vector, ``(num_classes, "()")``; in eval it computes nothing (see
    :class:`AuxiliaryHead`).
    """

    spatial_rank = 2

    def __init__(self, *, dropout: float = 0.7, norm: Norm = basic_conv_norm, act: Act = nn.ReLU) -> None:
        super().__init__()
        self.expect_links(1)
        _vector_line(self)
        dims_in, classes = self.input_links[0].dims[0], self.target_dims[0].channels
        self.add(
            [
                ((dims_in.channels, "(4, 4)"), nv.AvgPool2d()),
                ((128, "(4, 4)"), nv.Conv2d_BN_ReLU[-1, "conv"](1, **conv_keywords(norm, act))),
                ((1024, "()"), nv.Linear[-1, "fc1"]()),  # flattens 128 x 4 x 4
                ((1024, "()"), nn.ReLU()),
                ((1024, "()"), nn.Dropout(probability("dropout", dropout, type(self).__name__))),
                ((classes, "()"), nv.Linear[-1, "fc2"]()),
            ]
        )


def _vector_line(nerve: nv.Nerve) -> None:
    declared = nerve.target_dims[0]
    if not declared.shape.is_vector:
        raise DimsError(
            f"{type(nerve).__name__} makes logits (N, classes), but the line declares the shape {declared.shape!r}",
            allowed=f'({declared.channels}, "()")',
        )


class AuxLogitsNetwork(nv.Network):
    """A network with auxiliary classifiers, called as torchvision calls GoogLeNet and Inception3: built with
    ``outputs=[logits, aux, ...]``, it returns ``outputs_type(logits, aux, ...)`` in training and the logits
    alone in eval. ``outputs=[...]`` and ``output_intermediate=True`` return what they name, in either mode.

    The grammar has no lines that run in one mode only: the auxiliary heads are lines of
    :class:`AuxiliaryHead` nerves, which compute nothing in eval.
    """

    def __init__(self, lines: list[Any], outputs: Sequence[int | str], outputs_type: type) -> None:
        super().__init__(lines, outputs)
        self.outputs_type = outputs_type

    def forward(  # the same call; a namedtuple or the logits where Network returns the list of its outputs
        self, inputs: Any, output_intermediate: bool = False, outputs: Sequence[int | str] | None = None
    ) -> Any:
        if isinstance(output_intermediate, fx.Proxy) or isinstance(outputs, fx.Proxy):
            output_intermediate, outputs = False, None  # fx.symbolic_trace makes every argument a placeholder
        if output_intermediate or outputs is not None:
            return super().forward(inputs, output_intermediate=output_intermediate, outputs=outputs)
        values = super().forward(inputs)
        return self.outputs_type(*values) if self.training else values[0]


# --- the network -----------------------------------------------------------------------------

# torchvision's blocks: ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj; a max pool before each stage
_STAGES = {
    3: ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),
    4: (
        (192, 96, 208, 16, 48, 64),
        (160, 112, 224, 24, 64, 64),
        (128, 128, 256, 24, 64, 64),
        (112, 144, 288, 32, 64, 64),
        (256, 160, 320, 32, 128, 128),
    ),
    5: ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),
}


def googlenet_lines(
    num_classes: int, aux_logits: bool, transform_input: bool, dropout: float, dropout_aux: float, norm: Norm, act: Act
) -> list[Any]:
    """The lines of torchvision's ``GoogLeNet``; with ``aux_logits``, the two auxiliary heads after the classifier."""
    conv = conv_keywords(norm, act)
    block = _keywords({"norm": basic_conv_norm, "act": nn.ReLU}, norm=norm, act=act)
    lines: list[Any] = [((3, 1), nv.Input())]
    if transform_input:
        lines.append(((3, 1), TransformInput()))
    lines += [
        ((64, 2), nv.Conv2d_BN_ReLU(7, padding=3, **conv)),  # conv1: stride 2, padding 3
        ((64, 4), nv.MaxPool2d(3, padding=0, ceil_mode=True)),
        ((64, 4), nv.Conv2d_BN_ReLU(1, **conv)),  # conv2
        ((192, 4), nv.Conv2d_BN_ReLU(3, **conv)),  # conv3: padding 1
    ]
    ratio, channels = 4, 192
    for stage, blocks in _STAGES.items():
        ratio *= 2  # maxpool2, 3 and 4: unpadded, in ceil mode (maxpool4 is 2x2)
        lines.append(((channels, ratio), nv.MaxPool2d(2 if stage == 5 else 3, padding=0, ceil_mode=True)))
        for letter, widths in zip("abcde", blocks):
            channels = widths[0] + widths[2] + widths[4] + widths[5]
            lines.append(((channels, ratio), Inception[-1, f"inception{stage}{letter}"](*widths, **block)))
    lines += [
        ((channels, "(1, 1)"), nv.AvgPool2d()),
        ((channels, "(1, 1)"), nn.Dropout(_dropout(dropout))),
        ((num_classes, "()"), nv.Linear[-1, "logits"]()),
    ]
    if aux_logits:
        aux = {"dropout": dropout_aux, **block} if dropout_aux != 0.7 else block
        lines += [
            ((num_classes, "()"), GoogLeNetAux["inception4a", "aux1"](**aux)),
            ((num_classes, "()"), GoogLeNetAux["inception4d", "aux2"](**aux)),
        ]
    return lines


def trunc_normal_init(net: nn.Module, std: Callable[[nn.Module], float]) -> None:
    """torchvision's GoogLeNet and Inception-v3 init: every conv's and Linear's weight truncated normal (mean 0,
    ``std(module)``, cut at -2 and 2), their biases and the norms at PyTorch's defaults."""
    if next(net.parameters()).is_meta:
        return  # no values to set
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, mean=0.0, std=std(module), a=-2, b=2)


def published_weights(make: Callable[..., nv.Network], aux_default: bool) -> WeightsLoader:
    """The loader of torchvision's published weights for a builder of auxiliary heads, as torchvision's own
    builders load them: ``transform_input`` on unless the keywords say otherwise, and the auxiliary heads (which
    the file always holds) kept only with ``aux_logits`` (``aux_default`` where the keywords leave it out:
    GoogLeNet's drop them, Inception-v3's keep them). ``make(**keywords)`` builds the network."""

    def load(network: nn.Module, name: str, weights: Any, keywords: dict) -> nn.Module:
        settings = {"transform_input": True, "aux_logits": aux_default, **keywords}
        built = {"transform_input": False, "aux_logits": True, **keywords}  # the builder's defaults
        full = network
        if built["transform_input"] != settings["transform_input"] or not built["aux_logits"]:
            full = make(**{**settings, "aux_logits": True})
        torchvision_weights(full, name, weights, keywords)  # every key of the file, strictly
        if settings["aux_logits"]:
            result = full
        else:  # the same lines without the auxiliary heads, which come last: the same keys, fewer of them
            result = make(**settings)
            loaded = full.state_dict()
            result.load_state_dict({key: loaded[key] for key in result.state_dict()})
        made_by = network.__dict__.get("_made_by")
        if result is not network and made_by is not None:  # what save_pretrained rebuilds: these settings
            object.__setattr__(result, "_made_by", (made_by[0], settings, made_by[2]))
        return result

    return load


def _googlenet(
    num_classes: int = 1000,
    *,
    aux_logits: bool = True,
    transform_input: bool = False,
    dropout: float = 0.2,
    dropout_aux: float = 0.7,
    **keywords: Any,
) -> nv.Network:
    check_keywords("googlenet", keywords, (), ("num_classes", "aux_logits", "transform_input", "dropout",
                                               "dropout_aux", "norm", "act"))  # fmt: skip
    lines = googlenet_lines(
        num_classes,
        bool(aux_logits),
        bool(transform_input),
        dropout,
        dropout_aux,
        keywords.get("norm", basic_conv_norm),
        keywords.get("act", nn.ReLU),
    )
    net = AuxLogitsNetwork(lines, ["logits", "aux2", "aux1"], GoogLeNetOutputs) if aux_logits else nv.build(lines)
    trunc_normal_init(net, lambda module: 0.01)
    return net


@register_model(weights=published_weights(_googlenet, aux_default=False))
def googlenet(
    num_classes: int = 1000,
    *,
    aux_logits: bool = True,
    transform_input: bool = False,
    dropout: float = 0.2,
    dropout_aux: float = 0.7,
    **keywords: Any,
) -> nv.Network:
    """GoogLeNet (torchvision's ``googlenet``): 13.0 M parameters with the auxiliary heads, 6.6 M without.

    Keywords as torchvision's ``GoogLeNet``: ``aux_logits`` (the two auxiliary classifiers, returned in
    training as ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``), ``transform_input`` (a first
    :class:`TransformInput` line), ``dropout`` before the classifier and ``dropout_aux`` in the auxiliary
    heads; and ``norm`` and ``act`` for every conv (torchvision: BatchNorm of eps 0.001, ReLU). With
    ``weights=``, as torchvision's builder: ``transform_input`` and no auxiliary heads unless the keywords
    ask for them (the published heads are untrained).
    """
    return _googlenet(
        num_classes,
        aux_logits=aux_logits,
        transform_input=transform_input,
        dropout=dropout,
        dropout_aux=dropout_aux,
        **keywords,
    )
