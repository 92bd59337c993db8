"""torchvision's segmentation models (FCN, DeepLabV3, LR-ASPP): the mapping of their keys.

The lines before the first head nerve (:class:`~neurlink.models.segmentation.FCNHead`,
``DeepLabHead``, ``LRASPPHead``) are the ``backbone``, mapped as a ResNet (``backbone.conv1``,
``backbone.layer1.0.conv1``) or as MobileNetV3's ``features`` (``backbone.0.0``,
``backbone.1.block.0.0``); the head feeding the line tagged ``aux`` is the ``aux_classifier``
(without that tag, the second head), the other the ``classifier``. Inside ``FCNHead`` and ``DeepLabHead`` the sub-lines are the items of
torchvision's ``Sequential`` (a conv line is its conv, norm and activation; an ASPP is one item);
ASPP and LR-ASPP record which sub-line is which branch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import nn

from ...errors import StateDictError
from ...models.mobilenet import InvertedBottleneck
from ...models.segmentation import ASPP, DeepLabHead, FCNHead, LRASPPHead
from ...nerves import ConvNd
from .._state_dict import Pair, check_complete, conv_pairs, has_state
from ._features import features_pairs
from ._resnet import resnet_pairs

_HEADS = (FCNHead, DeepLabHead, LRASPPHead)


def is_segmentation(model: nn.Module) -> bool:
    return any(isinstance(module, _HEADS) for module in model.children())


def segmentation_pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``: backbone, classifier, aux_classifier."""
    lines = list(model.named_children())
    first = next(k for k, (_, module) in enumerate(lines) if isinstance(module, _HEADS))
    backbone = lines[:first]
    if any(isinstance(module, InvertedBottleneck) for _, module in backbone):
        inner = features_pairs(model, backbone, family="MobileNetV3")
        pairs = [Pair(pair.neurlink, "backbone." + pair.reference.removeprefix("features.")) for pair in inner]
        architecture = "MobileNetV3 segmentation model"
    else:
        pairs = [Pair(pair.neurlink, f"backbone.{pair.reference}") for pair in resnet_pairs(model, backbone)]
        architecture = "ResNet segmentation model"
    heads: list[tuple[str, nn.Module]] = []
    for name, module in lines[first:]:
        if not isinstance(module, _HEADS):
            if has_state(module):
                raise StateDictError(
                    f"line {name} ({type(module).__name__}) has weights after the heads; torchvision's segmentation"
                    " models end with a classifier (and an aux_classifier)"
                )
            continue
        if len(heads) == 2:
            raise StateDictError(
                f"line {name} ({type(module).__name__}) is a third head; torchvision has a classifier and an"
                " aux_classifier"
            )
        heads.append((name, module))
    # the aux_classifier is the head that feeds the line tagged "aux" (as the zoo's builders tag it),
    # whatever the order of the lines; without that tag, the second head
    aux = _feeding(model, "aux", {name for name, _ in heads})
    if aux is not None:
        heads.sort(key=lambda head: head[0] == aux)
    for number, (name, module) in enumerate(heads):
        target = ("classifier.", "aux_classifier.")[number]
        if isinstance(module, LRASPPHead):
            pairs.extend(_lraspp_pairs(module, f"{name}.", target))
        else:
            pairs.extend(_sequential_pairs(module, f"{name}.", target))
    check_complete(model, pairs, "torchvision", architecture)
    return pairs


def _feeding(model: nn.Module, tag: str, heads: set[str]) -> str | None:
    """The head line whose output reaches the line tagged ``tag``, walking selections back from it."""
    entries: list[Any] = getattr(model, "lines", None) or []
    tagged = [entry for entry in entries if entry.tag == tag]
    if not tagged:
        return None
    todo, seen = [tagged[0].index], set()
    while todo:
        index = todo.pop()
        if index in seen:
            continue
        seen.add(index)
        if entries[index].name in heads:
            return entries[index].name
        todo.extend(ref.line for ref in entries[index].refs)
    return None


def _sequential_pairs(head: nn.Module, prefix: str, target: str) -> Iterator[Pair]:
    """FCNHead and DeepLabHead: their sub-lines counted as the items of torchvision's ``Sequential``."""
    item = 0
    for name, module in head.named_children():
        path = f"{prefix}{name}."
        if isinstance(module, ASPP):
            yield from _aspp_pairs(module, path, f"{target}{item}.")
            item += 1
        elif isinstance(module, ConvNd):
            yield from conv_pairs(module, path, f"{target}{item}", f"{target}{item + 1}")
            item += 1 + (module._modules.get("norm") is not None) + (module._modules.get("act") is not None)
        elif isinstance(module, nn.Dropout) or not has_state(module):
            item += isinstance(module, nn.Dropout)
        else:
            raise StateDictError(
                f"line {path[:-1]} ({type(module).__name__}) has weights, but torchvision's head has only convs,"
                " norms and an ASPP"
            )


def _aspp_pairs(aspp: ASPP, prefix: str, target: str) -> Iterator[Pair]:
    """Branch ``k`` is ``convs.{k}.0``/``.1``; the pooling branch ``convs.{n}.1``/``.2`` (after its
    pooling); the projection ``project.0``/``.1``."""
    for k, line in enumerate(aspp.branches):
        yield from conv_pairs(
            aspp.get_submodule(str(line)), f"{prefix}{line}.", f"{target}convs.{k}.0", f"{target}convs.{k}.1"
        )
    pooling = f"{target}convs.{len(aspp.branches)}."
    yield from conv_pairs(
        aspp.get_submodule(str(aspp.pooling)), f"{prefix}{aspp.pooling}.", f"{pooling}1", f"{pooling}2"
    )
    yield from conv_pairs(
        aspp.get_submodule(str(aspp.project)), f"{prefix}{aspp.project}.", f"{target}project.0", f"{target}project.1"
    )


def _lraspp_pairs(head: LRASPPHead, prefix: str, target: str) -> Iterator[Pair]:
    parts = {
        head.cbr: (f"{target}cbr.0", f"{target}cbr.1"),
        head.scale: (f"{target}scale.1", f"{target}scale.2"),
        head.low_classifier: (f"{target}low_classifier", ""),
        head.high_classifier: (f"{target}high_classifier", ""),
    }
    for line, (conv, norm) in parts.items():
        yield from conv_pairs(head.get_submodule(str(line)), f"{prefix}{line}.", conv, norm)
