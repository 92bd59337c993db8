"""torchvision's plain ``features`` + ``classifier`` networks (AlexNet, VGG, SqueezeNet): the mapping of
their keys, derived by walking the lines.

torchvision writes them as two ``Sequential`` modules, each layer one item. Up to the first dropout or
adaptive pool, every line is items of ``features``, counted as that ``Sequential`` counts them: a conv
line is its conv, its norm where it has one and its activation, in the line's order (VGG-BN's
``features.0``, ``features.1``, ``features.2``), a pool or a plain module one item, a ``Fire`` one item
whose convs are ``features.i.squeeze``, ``.expand1x1`` and ``.expand3x3`` (the tags of its sub-lines).
An adaptive pool right after ``features`` is torchvision's ``avgpool``, outside both; every line
after it is items of ``classifier``: a dropout or an activation, a ``Linear`` line (``classifier.i``,
its weight as it is), a conv line (SqueezeNet's ``final_conv`` and its ReLU), SqueezeNet's last pool.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from ...errors import StateDictError
from ...models.squeezenet import Fire
from ...nerve import Input
from ...nerves import ConvNd, Linear
from ...nerves.pool import PoolNd
from .._state_dict import Pair, check_complete, has_state, is_block

__all__ = ["is_plain", "plain_pairs"]


def is_plain(model: nn.Module) -> bool:
    """A network with a Fire or a Linear line and no block of sub-lines but Fire modules (torchvision's
    AlexNet, VGG or SqueezeNet); the blocks of other families are theirs."""
    children = list(model.children())
    return any(isinstance(module, (Fire, Linear)) for module in children) and not any(
        is_block(module) and not isinstance(module, Fire) for module in children
    )


def plain_pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    lines = [(name, module) for name, module in model.named_children() if not isinstance(module, Input)]
    end = next((k for k, (_, module) in enumerate(lines) if _ends_features(module)), len(lines))
    family = "SqueezeNet" if any(isinstance(module, Fire) for _, module in lines) else "AlexNet or VGG"
    pairs: list[Pair] = []
    item = 0
    for name, module in lines[:end]:
        if isinstance(module, Fire):
            pairs.extend(_fire_pairs(module, f"{name}.", f"features.{item}."))
            item += 1
        else:
            item = _add_item(pairs, name, module, "features", item, family)
    head = lines[end:]
    if head and _adaptive(head[0][1]):
        head = head[1:]  # torchvision's avgpool, between features and classifier
    item = 0
    for name, module in head:
        item = _add_item(pairs, name, module, "classifier", item, family)
    check_complete(model, pairs, "torchvision", family)
    return pairs


def _ends_features(module: nn.Module) -> bool:
    return isinstance(module, nn.Dropout) or _adaptive(module)


def _adaptive(module: nn.Module) -> bool:
    return isinstance(module, PoolNd) and module.geometry is None  # a pool without a kernel


def _add_item(pairs: list[Pair], name: str, module: nn.Module, part: str, item: int, family: str) -> int:
    """Map one line as items ``{part}.{item}...`` of torchvision's ``Sequential``; the next item's index."""
    if isinstance(module, ConvNd):
        for child, part_module in module.named_children():  # conv, then norm and act in the line's order
            pairs.extend(_module_pairs(part_module, f"{name}.{child}.", f"{part}.{item}"))
            item += 1
        return item
    if isinstance(module, Linear):
        pairs.extend(_module_pairs(module.linear, f"{name}.linear.", f"{part}.{item}"))
        return item + 1
    if has_state(module):
        raise StateDictError(
            f"line {name} ({type(module).__name__}) has weights, but torchvision's {family} has only convs, norms,"
            " Fire modules and Linear layers"
        )
    return item + 1  # a pool, a dropout, an activation: one item each


def _fire_pairs(fire: Fire, prefix: str, target: str) -> Iterator[Pair]:
    for tag, index in fire.line_tags().items():
        conv = fire[index]
        if isinstance(conv, ConvNd):  # its norm, if it has one, is left for check_complete to name
            yield from _module_pairs(conv.conv, f"{prefix}{index}.conv.", f"{target}{tag}")


def _module_pairs(module: nn.Module, prefix: str, target: str) -> Iterator[Pair]:
    """A torch module's tensors as those of the reference's module ``target``, key for key."""
    for key in module.state_dict():
        yield Pair(prefix + key, f"{target}.{key}")
