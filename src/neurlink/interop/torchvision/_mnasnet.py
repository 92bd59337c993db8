"""torchvision's MNASNet: the mapping of its keys, derived by walking the lines.

Up to the global pooling every line is one or more items of torchvision's ``layers``, counted as its
``Sequential`` counts them: a conv line is its conv, its norm and its activation where it has one
(``layers.0``, ``layers.1``, ``layers.2``); consecutive ``MNASNetBlock`` lines declaring the same dims
are one stack, one item (``layers.8.0``, ``layers.8.1``, ...; a stack's first block changes the dims),
and inside a block the conv sub-lines are ``layers.0/1``, ``layers.3/4`` and ``layers.6/7``. After the
pooling each module is an item of ``classifier``: the dropout, then the Linear (a conv line here).

torchvision's MNASNet refuses a state_dict that does not say which version of its layout it holds
(version 2 since torchvision 0.9): :func:`mark_version` records it as ``state_dict()`` does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import torch
from torch import nn

from ...errors import StateDictError
from ...models.mnasnet import MNASNetBlock
from ...nerves import ConvNd
from ...nerves.pool import AvgPoolNd
from .._state_dict import Pair, check_complete, conv_pairs, has_state, linear_pairs

__all__ = ["is_mnasnet", "mnasnet_pairs", "mark_version"]

_VERSION = 2  # torchvision's MNASNet._version: a stem scaled by alpha (version 1 kept it at 32 and 16)


def is_mnasnet(model: nn.Module) -> bool:
    """A network of MNASNet blocks (torchvision's MNASNet)."""
    return any(isinstance(module, MNASNetBlock) for module in model.children())


def mnasnet_pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    pairs: list[Pair] = []
    lines = list(model.named_children())
    pool = max((k for k, (_, module) in enumerate(lines) if isinstance(module, AvgPoolNd)), default=len(lines))
    item, in_stack, stack_dims = -1, 0, None
    for name, module in lines[:pool]:
        where = f"line {name} ({type(module).__name__})"
        if isinstance(module, MNASNetBlock):
            dims = module.target_dims[0]
            if stack_dims is not None and dims.same_as(stack_dims):
                in_stack += 1
            else:
                item, in_stack, stack_dims = item + 1, 0, dims
            pairs.extend(_block_pairs(module, f"{name}.", f"layers.{item}.{in_stack}.layers."))
            continue
        stack_dims = None
        if isinstance(module, ConvNd):
            pairs.extend(conv_pairs(module, f"{name}.", f"layers.{item + 1}", f"layers.{item + 2}"))
            item += 2 + (module._modules.get("act") is not None)
        elif has_state(module):
            raise StateDictError(
                f"{where} has weights, but torchvision's MNASNet has only conv lines and its blocks before the pooling"
            )
    head = 0
    for name, module in lines[pool + 1 :]:
        if isinstance(module, ConvNd) and module._modules.get("norm") is None:
            pairs.extend(linear_pairs(module, f"{name}.", f"classifier.{head}"))
        elif has_state(module):
            raise StateDictError(
                f"line {name} ({type(module).__name__}) has weights, but torchvision's MNASNet classifier is a dropout"
                " and a Linear (a conv line without norm here)"
            )
        head += 1
    check_complete(model, pairs, "torchvision", "MNASNet")
    return pairs


def _block_pairs(block: MNASNetBlock, prefix: str, target: str) -> Iterator[Pair]:
    item = 0
    for name, module in block.named_children():
        if isinstance(module, ConvNd):
            yield from conv_pairs(module, f"{prefix}{name}.", f"{target}{item}", f"{target}{item + 1}")
            item += 2 + (module._modules.get("act") is not None)
        # the sum has no tensors; anything else with them is named by check_complete


def mark_version(state_dict: OrderedDict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Record in ``state_dict`` (as ``nn.Module.state_dict`` records it) that it holds MNASNet's layout of version 2."""
    state_dict._metadata = {"": {"version": _VERSION}}  # type: ignore[attr-defined]
    return state_dict
