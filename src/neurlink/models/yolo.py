"""Ultralytics' YOLOv8 and YOLO11 detectors in the grammar, layer for layer ``ultralytics`` 8.4's
``DetectionModel("yolov8n.yaml")`` ... ``("yolo11x.yaml")``.

A detector is a backbone, a neck and a head. The neck is where declaring ratios pays: each upsample
line is an ``nv.Interpolate`` (nearest) to the ratio of the line it meets, and each ``nv.Concat``
reads that line by its tag, so the two agree at every input size (nearest from ``k`` to ``2k - 1``
cells is Ultralytics' upsample by 2 then cropped), where Ultralytics' own models need sizes that
are multiples of 32. The head, :class:`Detect`, reads the three neck lines ``p3``, ``p4`` and ``p5``
and makes one map per level, ``4 * reg_max`` box-distribution channels then one logit per class,
at the level's ratio:

>>> import torch
>>> from neurlink.models import yolov8n
>>> net = yolov8n(num_classes=3)
>>> [tuple(y.shape) for y in net.train()(torch.randn(1, 3, 97, 131))]  # training: the raw maps
[(1, 67, 13, 17), (1, 67, 7, 9), (1, 67, 4, 5)]
>>> net.eval()(torch.randn(1, 3, 97, 131)).shape  # eval: xywh in pixels, 3 probabilities; 221 + 63 + 20 cells
torch.Size([1, 7, 304])

The strides are the head lines' ratios (8, 16 and 32), read at build. :class:`Detector` is the network
that calls the lines as Ultralytics calls its model: the maps in training, decoded in eval
(:meth:`Detect.decode`); the lines themselves declare, and the first call checks, only the maps.

The width and depth of a model are a :class:`Scale` (Ultralytics' ``[depth, width, max_channels]``), a
builder argument: ``yolov8("s")`` is ``yolov8s()``, ``yolov8(Scale(0.33, 0.375, 1024))`` a model of your
own, and :meth:`Scale.channels` the one function that turns the channels written in Ultralytics' YAML
into the lines' concrete ones. Every conv is followed by BatchNorm of eps 0.001 and momentum 0.03 and
SiLU (Ultralytics' ``Conv``), the blocks are :mod:`neurlink.models.yolo_blocks`'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import fx, nn

from .. import nerves as nv
from .._registry import register_model
from ..definition_hooks import keeps_definition_file
from ..errors import DefinitionError, DimsError, NerveArgumentError, PretrainedError
from ..nerves._args import positive_int
from ._common import check_keywords
from .yolo_blocks import C2PSA, SPPF, C2f, C3k2, conv

__all__ = [
    "DFL",
    "Detect",
    "Detector",
    "Scale",
    "YOLO11_SCALES",
    "YOLOV8_SCALES",
    "yolo11",
    "yolo11l",
    "yolo11m",
    "yolo11n",
    "yolo11s",
    "yolo11x",
    "yolo11_lines",
    "yolov8",
    "yolov8l",
    "yolov8m",
    "yolov8n",
    "yolov8s",
    "yolov8x",
    "yolov8_lines",
]


# --- the head ----------------------------------------------------------------------------------


class DFL(nn.Module):
    """The integral of Distribution Focal Loss (Ultralytics' ``DFL``): each of a box's four distances is
    predicted as ``reg_max`` logits over the bins ``0 .. reg_max - 1``, and is their expectation, the
    softmax weighted by the bin values. The bin values are the weight of a frozen 1x1 conv (``conv``),
    as Ultralytics keeps them (its state_dict holds them, and its parameter counts count them).

    Takes ``(N, 4 * reg_max, anchors)``, returns ``(N, 4, anchors)``: left, top, right, bottom in cells.
    """

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.conv = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        if not self.conv.weight.is_meta:
            with torch.no_grad():
                self.conv.weight.copy_(torch.arange(reg_max, dtype=torch.float).view(1, reg_max, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, anchors = x.shape
        # (N, 4, R, A) -> bins as the conv's channels: (N, R, 4, A), softmax over the bins
        bins = x.view(batch, 4, self.reg_max, anchors).transpose(2, 1).softmax(1)
        return self.conv(bins).view(batch, 4, anchors)


class Detect(nv.Nerve):
    """Ultralytics' decoupled ``Detect`` head, one map per selected line (a level of the pyramid).

    For each level, at its line's ratio: a box branch, two 3x3 convs to ``max(16, c / 4, 4 * reg_max)``
    channels (``c`` the first level's channels) and a 1x1 conv to ``4 * reg_max`` box-distribution
    channels; and a class branch to one logit per class, of two depthwise-separable 3x3 convs (a
    depthwise 3x3 then a 1x1, YOLO11's) or, with ``depthwise=False``, of two plain 3x3 convs (YOLOv8's,
    Ultralytics' "legacy" head), to ``max(c, min(classes, 100))`` channels, then a 1x1 conv. Every conv
    but the two last is Ultralytics' ``Conv`` (BatchNorm of eps 0.001, SiLU). The two branches are
    concatenated: the line declares ``(4 * reg_max + classes, ratio)`` for each level, in the order
    selected, and the classes are what the channels leave after the box distributions.

    >>> import torch
    >>> import neurlink.nerves as nv
    >>> from neurlink.models.yolo import Detect
    >>> net = nv.build(
    ...     [
    ...         ((3, 1), nv.Input()),
    ...         ((32, 8), nv.Conv2d_BN_ReLU[-1, "p3"](3)),
    ...         ((64, 16), nv.Conv2d_BN_ReLU[-1, "p4"](3)),
    ...         ((69, 8), (69, 16), Detect[["p3", "p4"]]()),  # 4 * 16 box channels, 5 classes
    ...     ]
    ... )
    >>> [tuple(y.shape) for y in net(torch.randn(1, 3, 64, 40))]
    [(1, 69, 8, 5), (1, 69, 4, 3)]
    >>> net[3].strides, net[3].num_classes
    ((8.0, 16.0), 5)
    >>> net[3].decode(net(torch.randn(1, 3, 64, 40))).shape  # xywh and 5 class probabilities, 52 anchors
    torch.Size([1, 9, 52])

    The sub-lines are tagged with Ultralytics' names (``cv2.0.0`` ... ``cv2.2.2`` for the box branches,
    ``cv3.0.0`` or, depthwise, ``cv3.0.0.0`` ... for the class branches), which the weight mapping reads,
    and the :class:`DFL` is the child ``dfl``. The strides are the levels' ratios (``strides``; one per
    level, the same in both dims), read at build rather than found by a forward.
    """

    spatial_rank = 2

    def __init__(self, *, reg_max: int = 16, depthwise: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        levels = len(self.input_links)
        if levels == 0:
            raise DefinitionError(f"{name} reads the levels of a pyramid, but the selector gives none",
                                  allowed='a selector of the levels, e.g. Detect[["p3", "p4", "p5"]]()')  # fmt: skip
        self.expect_links(levels, outputs=levels)
        reg_max = positive_int("reg_max", reg_max, name)
        if not isinstance(depthwise, bool):
            raise NerveArgumentError(f"{name}: depthwise={depthwise!r} is not a bool",
                                     allowed="depthwise=True (YOLO11's class branch) or False (YOLOv8's)")  # fmt: skip
        box_channels = 4 * reg_max
        outputs = self.target_dims[0].channels
        if outputs <= box_channels:
            raise DimsError(
                f"{name} makes {box_channels} box channels (4 * reg_max) and one per class, but the line declares"
                f" {outputs} channels",
                allowed=f"({box_channels} + classes, ratio) for each level, e.g. ({box_channels + 80}, 8) for 80 classes",
            )
        strides = []
        for k, (link, declared) in enumerate(zip(self.input_links, self.target_dims)):
            shape = link.dims[0].shape
            if shape.layout != "map" or shape.is_absolute:
                raise DimsError(
                    f"{name} level {k} reads line {link.index} of shape {shape!r}, but boxes are decoded on a map at"
                    " a ratio of the input (its stride)",
                    allowed="lines of maps at a ratio, e.g. (256, 8)",
                )
            if declared.channels != outputs or not declared.shape.same_as(shape, 2):
                raise DimsError(
                    f"{name} level {k} is ({outputs}, {shape!r}) (line {link.index}'s ratio), but the line declares"
                    f" {declared!r} there",
                    allowed="the same channels for every level, each at the ratio of the line it reads: "
                    + ", ".join(f"({outputs}, {lk.dims[0].shape!r})" for lk in self.input_links),
                )
            ratios = shape.ratios_for(2)
            if ratios[0] != ratios[1]:
                raise DimsError(
                    f"{name} level {k} reads line {link.index} at ratio {shape!r}, but a level has one stride"
                    " (Ultralytics' anchors are square cells)",
                    allowed="lines at one ratio in both dims, e.g. 8",
                )
            strides.append(float(ratios[0]))
        self.num_classes = outputs - box_channels
        self.reg_max = reg_max
        self.depthwise = depthwise
        self.strides = tuple(strides)
        first = self.input_links[0].dims[0].channels
        box_hidden = max(16, first // 4, box_channels)
        class_hidden = max(first, min(self.num_classes, 100))
        ends = []
        for k, link in enumerate(self.input_links):
            shape, channels = link.dims[0].shape, link.dims[0].channels
            lines: list[Any] = [
                ((box_hidden, shape), conv[k, f"cv2.{k}.0"](3)),
                ((box_hidden, shape), conv[-1, f"cv2.{k}.1"](3)),
                ((box_channels, shape), nv.Conv2d[-1, f"cv2.{k}.2"](1)),
            ]
            if depthwise:
                lines += [
                    ((channels, shape), conv[k, f"cv3.{k}.0.0"](3, groups=channels)),
                    ((class_hidden, shape), conv[-1, f"cv3.{k}.0.1"](1)),
                    ((class_hidden, shape), conv[-1, f"cv3.{k}.1.0"](3, groups=class_hidden)),
                    ((class_hidden, shape), conv[-1, f"cv3.{k}.1.1"](1)),
                ]
            else:
                lines += [
                    ((class_hidden, shape), conv[k, f"cv3.{k}.0"](3)),
                    ((class_hidden, shape), conv[-1, f"cv3.{k}.1"](3)),
                ]
            lines.append(((self.num_classes, shape), nv.Conv2d[-1, f"cv3.{k}.2"](1)))
            self.add(lines)
            ends.append(self.add(((outputs, shape), nv.Concat[[f"cv2.{k}.2", f"cv3.{k}.2"]]())))
        self.add((*self.target_dims, nv.Bundle[ends]()))
        # not a line: what turns the box distributions into distances when the maps are decoded
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
        self.initialise_biases()  # a head of the user's own starts as Ultralytics' do (its class prior)

    def initialise_biases(self, image_size: int = 640) -> None:
        """Ultralytics' ``Detect.bias_init``: each box conv's bias 2.0, each class conv's
        ``log(5 / classes / cells)``, with ``cells = (image_size / stride) ** 2`` the level's cells on an
        image of ``image_size`` (a prior of about 5 objects an image, spread over the classes and cells)."""
        box = [cast(nn.Conv2d, self[f"cv2.{k}.2"].conv) for k in range(len(self.strides))]
        classes = [cast(nn.Conv2d, self[f"cv3.{k}.2"].conv) for k in range(len(self.strides))]
        if box[0].weight.is_meta:
            return  # no values to set
        with torch.no_grad():
            for k, stride in enumerate(self.strides):
                cast(torch.Tensor, box[k].bias).fill_(2.0)
                cast(torch.Tensor, classes[k].bias).fill_(math.log(5 / self.num_classes / (image_size / stride) ** 2))

    def decode(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """The maps of this head's levels as Ultralytics' eval output ``(N, 4 + classes, anchors)``: for
        every cell of every level (level by level, each row by row), its box as centre x, centre y, width
        and height in the input's pixels, then the class probabilities (the logits' sigmoid).

        A cell's anchor is its centre, ``(column + 0.5, row + 0.5)`` cells; the box's four distances
        from it (left, top, right, bottom) are the expectations of its distributions (:class:`DFL`), in
        cells, and every length is scaled by the level's stride. The anchors come from the maps' own
        sizes, so any input size decodes.
        """
        box_channels = 4 * self.reg_max
        boxes = torch.cat([m[:, :box_channels].flatten(2) for m in maps], 2)
        scores = torch.cat([m[:, box_channels:].flatten(2) for m in maps], 2)
        points = anchor_points(list(maps))
        left_top, right_bottom = self.dfl(boxes).chunk(2, 1)
        top_left, bottom_right = points - left_top, points + right_bottom
        xywh = torch.cat(((top_left + bottom_right) / 2, bottom_right - top_left), 1)
        return torch.cat((xywh * anchor_strides(list(maps), self.strides), scores.sigmoid()), 1)


@fx.wrap
def anchor_points(maps: list[torch.Tensor]) -> torch.Tensor:
    """``(2, anchors)``: x and y of every cell's centre, in cells of its own map, the maps' cells in order
    (level by level, row by row), of the maps' dtype and device (one call for ``fx``)."""
    points = []
    for m in maps:
        height, width = m.shape[2], m.shape[3]
        x = (torch.arange(width, device=m.device).to(m.dtype) + 0.5).view(1, width).expand(height, width)
        y = (torch.arange(height, device=m.device).to(m.dtype) + 0.5).view(height, 1).expand(height, width)
        points.append(torch.stack((x.reshape(-1), y.reshape(-1))))
    return torch.cat(points, 1)


@fx.wrap
def anchor_strides(maps: list[torch.Tensor], strides: tuple[float, ...]) -> torch.Tensor:
    """``(1, anchors)``: the stride of every cell's level (one call for ``fx``)."""
    return torch.cat([m.new_full((1, m.shape[2] * m.shape[3]), stride) for m, stride in zip(maps, strides)], 1)


class Detector(nv.Network):
    """A network whose last line is a :class:`Detect` head, called as Ultralytics calls its
    ``DetectionModel``: in training it returns the head's maps, a list ``[(N, 4 * reg_max + classes, H_s,
    W_s), ...]`` (what a loss takes; :func:`neurlink.interop.ultralytics_predictions` makes them the dict
    Ultralytics' ``v8DetectionLoss`` takes), in eval the decoded ``(N, 4 + classes, anchors)``
    (:meth:`Detect.decode`). ``outputs=[...]`` and ``output_intermediate=True`` return the lines they name,
    in either mode.

    The lines declare what they compute, the maps: the decoding is the network's, after its last line
    (a sum of grids has no shape a line could declare).
    """

    def __init__(self, lines: list[Any]) -> None:
        super().__init__(lines)
        last = self._table.entries[-1]
        if not isinstance(self[-1], Detect):
            error = DefinitionError(
                f"a Detector's last line is its Detect head, but it is {type(self[-1]).__name__}",
                allowed='a last line of the head, e.g. ((144, 8), (144, 16), (144, 32), Detect[["p3", "p4", "p5"]]())'
                " for 80 classes (4 * 16 box channels + one per class, at each level)",
            )
            error.locate(last.index, last.tag, last.written)
            raise error

    def forward(  # the same call; the maps as a list in training, decoded in eval
        self, inputs: Any, output_intermediate: bool = False, outputs: Sequence[int | str] | None = None
    ) -> Any:
        if isinstance(output_intermediate, fx.Proxy) or isinstance(outputs, fx.Proxy):
            output_intermediate, outputs = False, None  # fx.symbolic_trace makes every argument a placeholder
        if output_intermediate or outputs is not None:
            return super().forward(inputs, output_intermediate=output_intermediate, outputs=outputs)
        maps = super().forward(inputs)
        if isinstance(maps, torch.Tensor):  # a head of one level: its one map, not a tuple of them
            maps = (maps,)
        if self.training:
            return list(maps)
        return cast(Detect, self[-1]).decode(maps)

    def save_pretrained(self, directory: Any) -> None:
        """As :meth:`neurlink.Network.save_pretrained`, for a detector made by a registered builder
        (``yolov8n`` ...) or read from a definition file (``network: Detector``), which ``from_pretrained``
        builds again as a Detector."""
        if self.__dict__.get("_made_by") is None and not keeps_definition_file(self):
            raise PretrainedError(
                "save_pretrained writes a Detector as the registered builder that made it (yolov8n, ...) or as"
                " the definition file it was read from, and this one was made by yolov8()/yolo11() with a scale"
                " of its own or from lines",
                allowed="torch.save(net.state_dict(), path), then build it again the same way and load it; or"
                " write its lines in a file (net.to_file('net.yaml')) and build it with neurlink.from_file",
            )
        super().save_pretrained(directory)


# --- the scales and the networks -----------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Ultralytics' compound scaling of a YOLO family (a YAML's ``scales: n: [depth, width, max_channels]``).

    ``depth`` multiplies the repeats of each block written more than once (rounded, at least 1),
    ``width`` the channels, capped at ``max_channels`` first and rounded up to a multiple of 8;
    ``c3k``: YOLO11's ``C3k2`` blocks all of ``C3k`` blocks (Ultralytics' m, l and x).

    >>> Scale(0.33, 0.25, 1024).channels(256), Scale(0.67, 0.75, 768).channels(1024)
    (64, 576)
    >>> Scale(0.33, 0.25, 1024).repeats(6), Scale(0.33, 0.25, 1024).repeats(1)
    (2, 1)
    """

    depth: float
    width: float
    max_channels: int
    c3k: bool = False

    def channels(self, written: int) -> int:
        """The channels of a line whose YAML row says ``written``: ``ceil(min(written, max_channels) * width / 8) * 8``."""
        return math.ceil(min(written, self.max_channels) * self.width / 8) * 8

    def repeats(self, written: int) -> int:
        """The repeats of a block whose YAML row says ``written``: ``max(round(written * depth), 1)`` above 1."""
        return max(round(written * self.depth), 1) if written > 1 else written


YOLOV8_SCALES = {
    "n": Scale(0.33, 0.25, 1024),
    "s": Scale(0.33, 0.50, 1024),
    "m": Scale(0.67, 0.75, 768),
    "l": Scale(1.00, 1.00, 512),
    "x": Scale(1.00, 1.25, 512),
}
YOLO11_SCALES = {
    "n": Scale(0.50, 0.25, 1024),
    "s": Scale(0.50, 0.50, 1024),
    "m": Scale(0.50, 1.00, 512, c3k=True),
    "l": Scale(1.00, 1.00, 512, c3k=True),
    "x": Scale(1.00, 1.50, 512, c3k=True),
}


def _head(num_classes: int, reg_max: int = 16) -> int:
    return 4 * reg_max + num_classes


def yolov8_lines(scale: Scale | str, num_classes: int = 80) -> list[Any]:
    """The lines of Ultralytics' ``yolov8.yaml`` at ``scale`` (a :class:`Scale` or its letter), row for row
    (line ``k + 1`` is its row ``k``): the backbone's stages tagged ``c3``, ``c4``, ``c5`` (ratios 8, 16,
    32), the neck's top-down line ``fpn4`` and its outputs ``p3``, ``p4``, ``p5``, which the :class:`Detect`
    head reads. Build them with :class:`Detector` (``Detector(lines)``), which decodes the head's maps."""
    scale = _scale("yolov8_lines", scale, YOLOV8_SCALES)
    c, n = scale.channels, scale.repeats
    out = _head(num_classes)
    return [
        ((3, 1), nv.Input()),
        ((c(64), 2), conv(3)),
        ((c(128), 4), conv(3)),
        ((c(128), 4), C2f(n(3), shortcut=True)),
        ((c(256), 8), conv(3)),
        ((c(256), 8), C2f[-1, "c3"](n(6), shortcut=True)),
        ((c(512), 16), conv(3)),
        ((c(512), 16), C2f[-1, "c4"](n(6), shortcut=True)),
        ((c(1024), 32), conv(3)),
        ((c(1024), 32), C2f(n(3), shortcut=True)),
        ((c(1024), 32), SPPF[-1, "c5"](5)),
        # top-down: each upsample to the ratio of the line it meets
        ((c(1024), 16), nv.Interpolate()),
        ((c(1024) + c(512), 16), nv.Concat[[-1, "c4"]]()),
        ((c(512), 16), C2f[-1, "fpn4"](n(3))),
        ((c(512), 8), nv.Interpolate()),
        ((c(512) + c(256), 8), nv.Concat[[-1, "c3"]]()),
        ((c(256), 8), C2f[-1, "p3"](n(3))),
        # bottom-up
        ((c(256), 16), conv(3)),
        ((c(256) + c(512), 16), nv.Concat[[-1, "fpn4"]]()),
        ((c(512), 16), C2f[-1, "p4"](n(3))),
        ((c(512), 32), conv(3)),
        ((c(512) + c(1024), 32), nv.Concat[[-1, "c5"]]()),
        ((c(1024), 32), C2f[-1, "p5"](n(3))),
        ((out, 8), (out, 16), (out, 32), Detect[["p3", "p4", "p5"]](depthwise=False)),
    ]


def yolo11_lines(scale: Scale | str, num_classes: int = 80) -> list[Any]:
    """The lines of Ultralytics' ``yolo11.yaml`` at ``scale`` (a :class:`Scale` or its letter), row for row
    (line ``k + 1`` is its row ``k``), tagged as :func:`yolov8_lines` (``c5`` is the attention block after
    SPPF)."""
    scale = _scale("yolo11_lines", scale, YOLO11_SCALES)
    c, n = scale.channels, scale.repeats
    out = _head(num_classes)
    return [
        ((3, 1), nv.Input()),
        ((c(64), 2), conv(3)),
        ((c(128), 4), conv(3)),
        ((c(256), 4), C3k2(n(2), c3k=scale.c3k, expansion=0.25)),
        ((c(256), 8), conv(3)),
        ((c(512), 8), C3k2[-1, "c3"](n(2), c3k=scale.c3k, expansion=0.25)),
        ((c(512), 16), conv(3)),
        ((c(512), 16), C3k2[-1, "c4"](n(2), c3k=True)),
        ((c(1024), 32), conv(3)),
        ((c(1024), 32), C3k2(n(2), c3k=True)),
        ((c(1024), 32), SPPF(5)),
        ((c(1024), 32), C2PSA[-1, "c5"](n(2))),
        # top-down: each upsample to the ratio of the line it meets
        ((c(1024), 16), nv.Interpolate()),
        ((c(1024) + c(512), 16), nv.Concat[[-1, "c4"]]()),
        ((c(512), 16), C3k2[-1, "fpn4"](n(2), c3k=scale.c3k)),
        ((c(512), 8), nv.Interpolate()),
        ((c(512) + c(512), 8), nv.Concat[[-1, "c3"]]()),
        ((c(256), 8), C3k2[-1, "p3"](n(2), c3k=scale.c3k)),
        # bottom-up
        ((c(256), 16), conv(3)),
        ((c(256) + c(512), 16), nv.Concat[[-1, "fpn4"]]()),
        ((c(512), 16), C3k2[-1, "p4"](n(2), c3k=scale.c3k)),
        ((c(512), 32), conv(3)),
        ((c(512) + c(1024), 32), nv.Concat[[-1, "c5"]]()),
        ((c(1024), 32), C3k2[-1, "p5"](n(2), c3k=True)),
        ((out, 8), (out, 16), (out, 32), Detect[["p3", "p4", "p5"]]()),
    ]


def _scale(family: str, scale: Scale | str, scales: dict[str, Scale]) -> Scale:
    if isinstance(scale, Scale):
        return scale
    if isinstance(scale, str) and scale in scales:
        return scales[scale]
    raise NerveArgumentError(
        f"{family}: scale={scale!r} is not a scale", allowed=f"one of {', '.join(map(repr, scales))} or a Scale(...)"
    )


def _detector(family: str, scale: Scale | str, scales: dict[str, Scale], num_classes: int) -> Detector:
    """The network of the family's lines, initialised as Ultralytics initialises its ``DetectionModel``:
    PyTorch's default init of every conv, the norms' (``yolo_norm``), the head's biases (``Detect``'s).
    A named scale is the registered builder's network (``yolov8("s")`` is ``yolov8s()``), and saves as it."""
    lines = (yolov8_lines if family == "yolov8" else yolo11_lines)(scale, _classes(family, num_classes))
    net = Detector(lines)
    name = next((f"{family}{letter}" for letter, known in scales.items() if scale in (letter, known)), None)
    if name is not None:  # what save_pretrained records: the builder from_pretrained calls
        object.__setattr__(net, "_made_by", (name, {"num_classes": num_classes}, __name__))
    return net


def yolov8(scale: Scale | str = "n", num_classes: int = 80) -> Detector:
    """YOLOv8 at ``scale`` (``"n"``, ``"s"``, ``"m"``, ``"l"``, ``"x"`` or a :class:`Scale`) with
    ``num_classes`` classes: Ultralytics' ``DetectionModel("yolov8{scale}.yaml", nc=num_classes)``."""
    return _detector("yolov8", _scale("yolov8", scale, YOLOV8_SCALES), YOLOV8_SCALES, num_classes)


def yolo11(scale: Scale | str = "n", num_classes: int = 80) -> Detector:
    """YOLO11 at ``scale`` (``"n"``, ``"s"``, ``"m"``, ``"l"``, ``"x"`` or a :class:`Scale`) with
    ``num_classes`` classes: Ultralytics' ``DetectionModel("yolo11{scale}.yaml", nc=num_classes)``."""
    return _detector("yolo11", _scale("yolo11", scale, YOLO11_SCALES), YOLO11_SCALES, num_classes)


def _classes(family: str, num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise NerveArgumentError(f"{family}: num_classes={num_classes!r} is not a positive int",
                                 allowed="num_classes >= 1 (80: COCO's)")  # fmt: skip
    return num_classes


def _builder(family: str, letter: str, keywords: dict[str, Any], num_classes: int) -> Detector:
    check_keywords(f"{family}{letter}", keywords, (), ("num_classes",))
    make = yolov8 if family == "yolov8" else yolo11
    return make(letter, num_classes)


@register_model
def yolov8n(num_classes: int = 80, **keywords: Any) -> Detector:
    """YOLOv8n (Ultralytics' ``yolov8n.yaml``): 3.2 M parameters at 80 classes."""
    return _builder("yolov8", "n", keywords, num_classes)


@register_model
def yolov8s(num_classes: int = 80, **keywords: Any) -> Detector:
    """YOLOv8s (Ultralytics' ``yolov8s.yaml``): 11.2 M parameters at 80 classes."""
    return _builder("yolov8", "s", keywords, num_classes)


@register_model
def yolov8m(num_classes: int = 80, **keywords: Any) -> Detector:
    """YOLOv8m (Ultralytics' ``yolov8m.yaml``): 25.9 M parameters at 80 classes."""
    return _builder("yolov8", "m", keywords, num_classes)


@register_model
def yolov8l(num_classes: int = 80, **keywords: Any) -> Detector:
    """YOLOv8l (Ultralytics' ``yolov8l.yaml``): 43.7 M parameters at 80 classes."""
    return _builder("yolov8", "l", keywords, num_classes)


@register_model
def yolov8x(num_classes: int = 80, **keywords: Any) -> Detector:
    """YOLOv8x (Ultralytics' ``yolov8x.yaml``): 68.2 M parameters at 80 classes."""
    return _builder("yolov8", "x", keywords, num_classes)


@register_model
def yolo11n(num_classes: int = 80, **keywords: Any) -> Detector:
    """YOLO11n (Ultralytics' ``yolo11n.yaml``): 2.6 M parameters at 80 classes."""
    return _builder("yolo11", "n", keywords, num_classes)


@register_model
def yolo11s(num_classes: int = 80, **keywords: Any) -> Detector:
    """YOLO11s (Ultralytics' ``yolo11s.yaml``): 9.5 M parameters at 80 classes."""
    return _builder("yolo11", "s", keywords, num_classes)


@register_model
def yolo11m(num_classes: int = 80, **keywords: Any) -> Detector:
    """YOLO11m (Ultralytics' ``yolo11m.yaml``): 20.1 M parameters at 80 classes."""
    return _builder("yolo11", "m", keywords, num_classes)


@register_model
def yolo11l(num_classes: int = 80, **keywords: Any) -> Detector:
    """YOLO11l (Ultralytics' ``yolo11l.yaml``): 25.4 M parameters at 80 classes."""
    return _builder("yolo11", "l", keywords, num_classes)


@register_model
def yolo11x(num_classes: int = 80, **keywords: Any) -> Detector:
    """YOLO11x (Ultralytics' ``yolo11x.yaml``): 57.0 M parameters at 80 classes."""
    return _builder("yolo11", "x", keywords, num_classes)
