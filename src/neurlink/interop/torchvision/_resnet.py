"""torchvision's ResNet family: the mapping of its keys, derived by walking the lines.

The first conv line is the stem (``conv1``, ``bn1``); every line with its own sub-lines is a
residual block, and consecutive blocks declaring the same dims form a stage (``layer1`` ...
``layer4``, numbered ``0..`` within); inside a block, the convs are ``conv1, bn1, conv2, bn2, ...``
in line order and a projecting skip is ``downsample``; a conv line after the blocks is the
classifier ``fc``.
"""

from __future__ import annotations

from torch import nn

from ...errors import StateDictError
from ...nerves import ConvNd
from .._state_dict import Pair, block_pairs, check_complete, conv_pairs, has_state, is_block, linear_pairs


def resnet_pairs(model: nn.Module, lines: list | None = None) -> list[Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order.

    ``lines`` ((name, module) pairs) walks only those lines, a backbone's, and leaves the check that
    every tensor is mapped to the caller.
    """
    pairs: list[Pair] = []
    stem = head = None
    stage, block, stage_dims = 0, -1, None
    for name, module in model.named_children() if lines is None else lines:
        if not has_state(module):  # Input, pooling, activations
            continue
        where = f"line {name} ({type(module).__name__})"
        if head is not None:
            raise StateDictError(f"{where} has weights after the classifier (line {head}); torchvision's fc is last")
        if is_block(module):
            if stem is None:
                raise StateDictError(f"{where} is a block before any stem conv; torchvision's ResNet starts with conv1")
            dims = module.target_dims[0]
            if stage_dims is not None and dims.same_as(stage_dims):
                block += 1
            else:  # a stage's first block changes the dims; the others keep them
                stage, block, stage_dims = stage + 1, 0, dims
            pairs.extend(block_pairs(module, f"{name}.", f"layer{stage}.{block}.", "torchvision"))
        elif isinstance(module, ConvNd) and stem is None and stage == 0:
            stem = name
            pairs.extend(conv_pairs(module, f"{name}.", "conv1", "bn1"))
        elif isinstance(module, ConvNd) and stage > 0:
            head = name
            pairs.extend(linear_pairs(module, f"{name}.", "fc"))
        else:
            raise StateDictError(
                f"{where} has weights, but torchvision's ResNet has only a stem conv, residual blocks and an fc here"
            )
    if lines is None:
        check_complete(model, pairs, "torchvision", "ResNet")
    return pairs
