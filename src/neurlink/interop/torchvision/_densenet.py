"""torchvision's DenseNet: the mapping of its keys, derived by walking the lines.

Everything up to the classifier is torchvision's ``features``: the conv line before the first block is
``conv0`` and ``norm0``; the ``DenseBlock`` lines are ``denseblock1``, ``denseblock2``, ... and the
``Transition`` lines ``transition1``, ...; a BatchNorm line after the last block is ``norm5`` (as
torchvision names it whatever the number of blocks); the ``Linear`` line is the ``classifier``. Inside a
layer or a transition, the norm sub-lines are ``norm1``, ``norm2`` (a transition's ``norm``) in order,
and the conv sub-lines are tagged with torchvision's names.

torchvision's published DenseNet files predate dots being refused in module names: their layers' keys
are ``denselayer1.norm.1.weight`` where the models have ``denselayer1.norm1.weight``. torchvision renames
them when it loads its files; so does :func:`current_keys`, which ``load_torchvision`` applies.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping

import torch
from torch import nn

from ...errors import StateDictError
from ...models.densenet import DenseBlock, DenseLayer, Transition
from ...nerves import ConvNd, Linear
from .._state_dict import Pair, check_complete, child_pairs, conv_pairs, has_state

__all__ = ["is_densenet", "densenet_pairs", "current_keys"]

# torchvision's own pattern (densenet._load_state_dict): 'denselayerN.norm.1.weight' of the old files
_LEGACY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def is_densenet(model: nn.Module) -> bool:
    """A network of dense blocks (torchvision's DenseNet)."""
    return any(isinstance(module, (DenseBlock, Transition)) for module in model.children())


def current_keys(state_dict: Mapping[str, torch.Tensor] | nn.Module) -> Mapping[str, torch.Tensor] | nn.Module:
    """``state_dict`` with the keys of torchvision's published files renamed as torchvision renames them."""
    if not isinstance(state_dict, Mapping) or not any(_LEGACY.match(key) for key in state_dict):
        return state_dict
    renamed: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, tensor in state_dict.items():
        legacy = _LEGACY.match(key)
        renamed[legacy.group(1) + legacy.group(2) if legacy else key] = tensor
    return renamed


def densenet_pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    pairs: list[Pair] = []
    stem = head = last_norm = None
    blocks = transitions = 0
    for name, module in model.named_children():
        if not has_state(module):  # Input, pooling, activations
            continue
        where = f"line {name} ({type(module).__name__})"
        if head is not None:
            raise StateDictError(f"{where} has weights after the classifier (line {head}); torchvision's is last")
        if last_norm is not None and not isinstance(module, Linear):
            raise StateDictError(
                f"{where} has weights after norm5 (line {last_norm}); torchvision's classifier follows"
            )
        if isinstance(module, ConvNd) and stem is None and not blocks:
            stem = name
            pairs.extend(conv_pairs(module, f"{name}.", "features.conv0", "features.norm0"))
        elif isinstance(module, DenseBlock) and stem is not None:
            blocks += 1
            pairs.extend(_block_pairs(module, f"{name}.", f"features.denseblock{blocks}."))
        elif isinstance(module, Transition) and blocks > transitions:
            transitions += 1
            pairs.extend(_parts(module, f"{name}.", f"features.transition{transitions}.", ("norm",)))
        elif isinstance(module, nn.BatchNorm2d) and blocks and blocks > transitions:
            last_norm = name
            pairs.extend(Pair(f"{name}.{key}", f"features.norm5.{key}") for key in module.state_dict())
        elif isinstance(module, Linear) and last_norm is not None:
            head = name
            pairs.extend(child_pairs(module, f"{name}.", "classifier"))
        else:
            raise StateDictError(
                f"{where} has weights, but torchvision's DenseNet has here only a stem conv, dense blocks each"
                " followed by a transition, and after the last one norm5 and the classifier"
            )
    check_complete(model, pairs, "torchvision", "DenseNet")
    return pairs


def _block_pairs(block: DenseBlock, prefix: str, target: str) -> Iterator[Pair]:
    for tag, index in block.line_tags().items():
        layer = block[index]
        if isinstance(layer, DenseLayer):
            yield from _parts(layer, f"{prefix}{index}.", f"{target}{tag}.", ("norm1", "norm2"))
        # a sub-line of another type keeps its tensors unmapped, for check_complete to name


def _parts(nerve: nn.Module, prefix: str, target: str, norms: tuple[str, ...]) -> Iterator[Pair]:
    """A layer's or transition's norm sub-lines as ``norms`` (in order), its convs by their tags."""
    tags = {index: tag for tag, index in nerve.line_tags().items()}  # type: ignore[operator]
    seen = 0
    for name, module in nerve.named_children():
        if isinstance(module, nn.BatchNorm2d) and seen < len(norms):
            yield from (Pair(f"{prefix}{name}.{key}", f"{target}{norms[seen]}.{key}") for key in module.state_dict())
            seen += 1
        elif isinstance(module, ConvNd) and int(name) in tags:
            yield from child_pairs(module, f"{prefix}{name}.", f"{target}{tags[int(name)]}")  # its conv alone
