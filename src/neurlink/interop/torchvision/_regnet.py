"""torchvision's RegNet (X and Y): the mapping of its keys, derived by walking the lines.

The conv line before the first block is the stem (``stem.0``, ``stem.1``); every
``ResBottleneckBlock`` line is a block of ``trunk_output``, consecutive blocks declaring the same dims
one stage (``trunk_output.block1.block1-0``, ``block1-1``, ...; a stage's first block changes the
dims); inside a block, the sub-lines tagged with torchvision's names (``proj``, ``f.a``, ``f.b``,
``f.se``, ``f.c``) are those modules, a conv line's conv and norm their ``.0`` and ``.1``; the conv
line after the blocks is the classifier ``fc``.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from ...errors import StateDictError
from ...models.regnet import ResBottleneckBlock
from ...nerves import ConvNd, SqueezeExcitation
from ...nerves.merge import SkipConnectNd
from .._state_dict import Pair, check_complete, conv_pairs, has_state, linear_pairs

__all__ = ["is_regnet", "regnet_pairs"]

_PARTS = ("proj", "f.a", "f.b", "f.se", "f.c")  # a torchvision ResBottleneckBlock's modules, in its order


def is_regnet(model: nn.Module) -> bool:
    """A network of RegNet blocks (torchvision's RegNet)."""
    return any(isinstance(module, ResBottleneckBlock) for module in model.children())


def regnet_pairs(model: nn.Module) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    pairs: list[Pair] = []
    stem = head = None
    stage, block, stage_dims = 0, -1, None
    for name, module in model.named_children():
        if not has_state(module):  # Input, pooling, activations
            continue
        where = f"line {name} ({type(module).__name__})"
        if head is not None:
            raise StateDictError(f"{where} has weights after the classifier (line {head}); torchvision's fc is last")
        if isinstance(module, ResBottleneckBlock):
            if stem is None:
                raise StateDictError(f"{where} is a block before any stem conv; torchvision's RegNet starts with stem")
            dims = module.target_dims[0]
            if stage_dims is not None and dims.same_as(stage_dims):
                block += 1
            else:
                stage, block, stage_dims = stage + 1, 0, dims
            pairs.extend(_block_pairs(module, f"{name}.", f"trunk_output.block{stage}.block{stage}-{block}."))
        elif isinstance(module, ConvNd) and stem is None:
            stem = name
            pairs.extend(conv_pairs(module, f"{name}.", "stem.0", "stem.1"))
        elif isinstance(module, ConvNd) and stage > 0:
            head = name
            pairs.extend(linear_pairs(module, f"{name}.", "fc"))
        else:
            raise StateDictError(
                f"{where} has weights, but torchvision's RegNet has only a stem conv, its blocks and an fc here"
            )
    check_complete(model, pairs, "torchvision", "RegNet")
    return pairs


def _block_pairs(block: ResBottleneckBlock, prefix: str, target: str) -> Iterator[Pair]:
    tags = block.line_tags()
    for tag in _PARTS:
        if tag not in tags:
            continue
        module, path = block[tags[tag]], f"{prefix}{tags[tag]}."
        if isinstance(module, SkipConnectNd):
            if isinstance(module.project, ConvNd):  # an identity skip has no tensors
                yield from conv_pairs(module.project, f"{path}project.", f"{target}{tag}.0", f"{target}{tag}.1")
        elif isinstance(module, SqueezeExcitation):
            yield from (Pair(path + key, f"{target}{tag}.{key}") for key in module.state_dict())
        elif isinstance(module, ConvNd):
            yield from conv_pairs(module, path, f"{target}{tag}.0", f"{target}{tag}.1")
        # a sub-line of another type keeps its tensors unmapped, for check_complete to name
