"""Ultralytics' YOLO weights in and out of neurlink networks, and its loss's view of the head's maps.

The key mapping is derived from the lines. The lines of a network written from an Ultralytics YAML
are its rows, one for one, after the Input: line ``k`` is Ultralytics' ``model.{k - 1}``. Inside a
line, the parts are named by the tags of the nerves' sub-lines, which the zoo's YOLO nerves give
Ultralytics' names (``cv1``, ``m.0``, ``cv2.1.2``): a conv line with a norm tagged ``t`` is
Ultralytics' ``Conv`` ``t`` (``t.conv``, ``t.bn``), one without a norm its plain ``t`` (an
``nn.Conv2d``), a nerve tagged ``t`` its module ``t`` (mapped the same way, tag by tag), and a child
that is no line keeps its name (the head's ``dfl``). So a network of your own written from a YAML of
Ultralytics' blocks maps as the zoo's do.

Ultralytics is not imported: its ``DetectionModel`` is an ``nn.Module``, read through ``state_dict()``.

>>> import torch
>>> from ultralytics.nn.tasks import DetectionModel
>>> from neurlink.interop import load_ultralytics, to_ultralytics_state_dict
>>> from neurlink.models import yolov8n
>>> reference = DetectionModel("yolov8n.yaml", verbose=False).eval()
>>> net = load_ultralytics(yolov8n(), reference).eval()
>>> x = torch.randn(1, 3, 64, 96)
>>> torch.testing.assert_close(net(x), reference(x)[0], rtol=1e-5, atol=1e-4)
>>> reference.load_state_dict(to_ultralytics_state_dict(net))
<All keys matched successfully>
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

import torch
from torch import nn

from ..errors import StateDictError
from ..lines_module import LinesModule
from ..nerves import ConvNd
from ._state_dict import Pair, check_complete, export_pairs, has_state, load_pairs, require_network

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["load_ultralytics", "to_ultralytics_state_dict", "ultralytics_predictions"]

Model = TypeVar("Model", bound=nn.Module)

_LIBRARY = "Ultralytics"


def load_ultralytics(model: Model, reference: nn.Module | Mapping[str, torch.Tensor]) -> Model:
    """Load an Ultralytics ``DetectionModel`` (or its ``state_dict``) into ``model``; returns ``model``.

    Strict as :func:`~neurlink.interop.load_torchvision`: every tensor of the reference used, every
    parameter and buffer of ``model`` filled, or a :class:`~neurlink.errors.StateDictError` naming the
    first that does not fit (both keys, and both shapes), with ``model`` unchanged. A model given whole
    also has its head's strides compared with the lines' ratios.
    """
    require_network(model, "load_ultralytics")
    pairs = _pairs(model)
    if isinstance(reference, nn.Module):
        _check_strides(model, reference)
    load_pairs(model, reference, pairs, _LIBRARY)
    return model


def to_ultralytics_state_dict(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """``model``'s weights under Ultralytics' keys, for ``DetectionModel("yolov8n.yaml").load_state_dict``
    (the tensors share memory with the model's, as ``state_dict()``'s do)."""
    require_network(model, "to_ultralytics_state_dict")
    return export_pairs(model, _pairs(model), _LIBRARY)


def ultralytics_predictions(maps: Sequence[torch.Tensor], reg_max: int = 16) -> dict[str, object]:
    """The maps a :class:`~neurlink.models.yolo.Detector` returns in training as the dict Ultralytics 8.4's
    ``v8DetectionLoss`` takes: ``boxes`` ``(N, 4 * reg_max, anchors)`` and ``scores`` ``(N, classes,
    anchors)``, every level's cells in order, and ``feats``, the maps themselves (the loss reads only
    their sizes, for the anchors)."""
    box_channels = 4 * reg_max
    maps = list(maps)
    return {
        "boxes": torch.cat([m[:, :box_channels].flatten(2) for m in maps], 2),
        "scores": torch.cat([m[:, box_channels:].flatten(2) for m in maps], 2),
        "feats": maps,
    }


def _pairs(model: nn.Module) -> list[Pair]:
    entries = cast("Network", model).lines  # a neurlink network (require_network)
    if not entries or not entries[0].is_input or any(entry.is_input for entry in entries[1:]):
        raise StateDictError(
            "an Ultralytics model's layers are the rows of its YAML after one input: line k is its model.{k - 1},"
            " but this network's Input lines are "
            + ", ".join(f"line {entry.index}" for entry in entries if entry.is_input),
            allowed="a network of one Input, line 0, and a line per row of the YAML",
        )
    pairs = [
        pair
        for entry in entries[1:]
        if entry.name is not None
        for pair in _part_pairs(model.get_submodule(entry.name), f"{entry.name}.", f"model.{entry.index - 1}.")
    ]
    check_complete(model, pairs, _LIBRARY, "model of the same YAML")
    return pairs


def _part_pairs(module: nn.Module, ours: str, theirs: str) -> Iterator[Pair]:
    """A line's module (or a nerve's tagged sub-line) as the Ultralytics module ``theirs``."""
    if isinstance(module, ConvNd):
        with_norm = "norm" in module._modules and module._modules["norm"] is not None
        for key in module.state_dict():
            part, _, rest = key.partition(".")
            if part == "norm":
                yield Pair(ours + key, f"{theirs}bn.{rest}")
            elif part == "conv":  # Ultralytics' Conv holds conv and bn; a plain nn.Conv2d is the conv itself
                yield Pair(ours + key, f"{theirs}conv.{rest}" if with_norm else theirs + rest)
        return
    if isinstance(module, LinesModule) and module._table is not None:
        for tag, index in module.line_tags().items():
            yield from _part_pairs(module[index], f"{ours}{index}.", f"{theirs}{tag}.")
        lines = {entry.name for entry in module._table.entries if entry.name is not None}
        for name, child in module.named_children():  # a part that is no line keeps its name (Detect's dfl)
            if name not in lines and has_state(child):
                for key in child.state_dict():
                    yield Pair(f"{ours}{name}.{key}", f"{theirs}{name}.{key}")
    # anything else with weights is left for check_complete to name


def _check_strides(model: nn.Module, reference: nn.Module) -> None:
    """The strides Ultralytics found by a forward are the ratios the head's lines declare."""
    from ..models.yolo import Detect  # (interop sits on the zoo)

    heads = [m for m in model.modules() if isinstance(m, Detect)]
    found = getattr(reference, "stride", None)
    if len(heads) != 1 or not isinstance(found, torch.Tensor) or found.numel() != len(heads[0].strides):
        return  # nothing to compare: the state_dict's keys and shapes decide
    theirs = tuple(float(s) for s in found.tolist())
    if theirs != heads[0].strides:
        raise StateDictError(
            f"Ultralytics' model has strides {list(theirs)}, but this network's head reads lines at ratios"
            f" {list(heads[0].strides)}: the same weights would decode boxes at other scales"
        )
