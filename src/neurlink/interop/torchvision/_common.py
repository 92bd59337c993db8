"""What every family's key mapping shares: the pairs of keys, their checks and the error messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import StateDictError
from ...nerve import Nerve
from ...nerves import ConvNd

# Errors list this many problems, then how many more there are.
SHOWN = 8


@dataclass(frozen=True)
class Pair:
    neurlink: str
    torchvision: str
    head: bool = False  # a Linear's weight [N, C] is the 1x1 conv weight [N, C, 1, 1]


def torchvision_shape(pair: Pair, tensor: torch.Tensor) -> tuple[int, ...]:
    """The shape torchvision stores the neurlink tensor of ``pair`` in."""
    shape = tuple(tensor.shape)
    if not pair.head:
        return shape
    if len(shape) != 4 or shape[2:] != (1, 1):
        raise StateDictError(
            f"neurlink key {pair.neurlink!r} has shape {list(shape)}, but torchvision's {pair.torchvision!r}"
            " is a Linear layer: the head must be a 1x1 conv"
        )
    return shape[:2]


def conv_pairs(module: ConvNd, prefix: str, conv: str, norm: str) -> Iterator[Pair]:
    for key in module.state_dict():
        part, _, rest = key.partition(".")
        if part in ("conv", "norm"):
            yield Pair(prefix + key, f"{conv if part == 'conv' else norm}.{rest}")
        # anything else (an activation with weights) is reported by check_complete


def check_complete(model: nn.Module, pairs: list[Pair], family: str) -> None:
    mapped = {pair.neurlink for pair in pairs}
    left = [key for key in model.state_dict() if key not in mapped]
    if left:
        raise error(
            f"this {type(model).__name__} has tensors torchvision's {family} does not",
            [f"neurlink key {key!r} has no torchvision key" for key in left],
        )


def is_block(module: nn.Module) -> bool:
    """A nerve made of sub-lines: its children are named by line number (``3.1.conv.weight``)."""
    children = [name for name, _ in module.named_children()]
    return isinstance(module, Nerve) and bool(children) and all(name.isdigit() for name in children)


def has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def renamed(key: str, candidates: list[str]) -> str | None:
    """The key ``key`` was probably saved under: with a prefix (``module.``), or a close spelling."""
    prefixed = [candidate for candidate in candidates if candidate.endswith("." + key)]
    if prefixed:
        return prefixed[0]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.8)
    return close[0] if close else None


def shown(problems: list[str]) -> bool:
    """Whether the next problem will be in the message."""
    return len(problems) < SHOWN


def error(summary: str, problems: list[str]) -> StateDictError:
    listed = "\n    ".join(problems[:SHOWN])
    more = f"\n    ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    return StateDictError(f"{summary}:\n    {listed}{more}")
