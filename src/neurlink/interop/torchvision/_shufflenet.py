"""torchvision's ShuffleNetV2: the mapping of its keys, derived by walking the lines.

The conv line before the first unit is the stem (``conv1.0``, ``conv1.1``); every
``ShuffleInvertedResidual`` line is a unit, consecutive units declaring the same dims one stage
(``stage2.0``, ``stage2.1``, ...; a stage's first unit changes the dims), the stages numbered from 2
as torchvision numbers them; inside a unit, a conv sub-line tagged ``branch2.3`` is torchvision's
``branch2.3`` and its norm the next item, ``branch2.4``; the conv line after the units is ``conv5``
(``conv5.0``, ``conv5.1``) and the one after the pooling the classifier ``fc``.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from ...errors import StateDictError
from ...models.shufflenet import ShuffleInvertedResidual
from ...nerves import ConvNd
from ...nerves.pool import AvgPoolNd
from .._state_dict import Pair, check_complete, conv_pairs, has_state, linear_pairs

__all__ = ["is_shufflenet", "shufflenet_pairs"]


def is_shufflenet(model: nn.Module) -> bool:
    """A network of ShuffleNetV2 units (torchvision's ShuffleNetV2)."""
    return any(isinstance(module, ShuffleInvertedResidual) for module in model.children())


def shufflenet_pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    pairs: list[Pair] = []
    stem = conv5 = head = None
    pooled = False
    stage, unit, stage_dims = 1, -1, None
    for name, module in model.named_children():
        if isinstance(module, AvgPoolNd):
            pooled = True
        if not has_state(module):  # Input, pooling, activations
            continue
        where = f"line {name} ({type(module).__name__})"
        if head is not None:
            raise StateDictError(f"{where} has weights after the classifier (line {head}); torchvision's fc is last")
        if isinstance(module, ShuffleInvertedResidual) and stem is not None and conv5 is None:
            dims = module.target_dims[0]
            if stage_dims is not None and dims.same_as(stage_dims):
                unit += 1
            else:
                stage, unit, stage_dims = stage + 1, 0, dims
            pairs.extend(_unit_pairs(module, f"{name}.", f"stage{stage}.{unit}."))
        elif isinstance(module, ConvNd) and stem is None:
            stem = name
            pairs.extend(conv_pairs(module, f"{name}.", "conv1.0", "conv1.1"))
        elif isinstance(module, ConvNd) and stage > 1 and conv5 is None and not pooled:
            conv5 = name
            pairs.extend(conv_pairs(module, f"{name}.", "conv5.0", "conv5.1"))
        elif isinstance(module, ConvNd) and conv5 is not None and pooled:
            head = name
            pairs.extend(linear_pairs(module, f"{name}.", "fc"))
        else:
            raise StateDictError(
                f"{where} has weights, but torchvision's ShuffleNetV2 has only a stem conv, its units, conv5 and an"
                " fc after the pooling here"
            )
    check_complete(model, pairs, "torchvision", "ShuffleNetV2")
    return pairs


def _unit_pairs(unit: ShuffleInvertedResidual, prefix: str, target: str) -> Iterator[Pair]:
    for tag, index in unit.line_tags().items():  # in line order: branch1's convs, then branch2's
        module = unit[index]
        branch, _, item = tag.partition(".")
        if isinstance(module, ConvNd) and branch in ("branch1", "branch2") and item.isdigit():
            norm = f"{target}{branch}.{int(item) + 1}"
            yield from conv_pairs(module, f"{prefix}{index}.", f"{target}{tag}", norm)
        # a sub-line of another type keeps its tensors unmapped, for check_complete to name
