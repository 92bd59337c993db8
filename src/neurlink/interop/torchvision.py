"""torchvision's ResNet-family weights in and out of neurlink networks.

The key mapping is derived from the network itself, walking its lines in order: the
first conv line is torchvision's stem (``conv1``, ``bn1``); every line with its own
sub-lines is a residual block, and consecutive blocks declaring the same dims form a
stage (``layer1`` ... ``layer4``, numbered ``0..`` within); inside a block, the convs are
``conv1, bn1, conv2, bn2, ...`` in line order and a projecting skip is ``downsample``;
a conv line after the blocks is the classifier ``fc``, whose ``[N, C]`` weight is our
1x1 conv's ``[N, C, 1, 1]``. So any network shaped like torchvision's ResNet maps, not
only the zoo's.

>>> import torch, torchvision, neurlink
>>> from neurlink.interop import load_torchvision, to_torchvision_state_dict
>>> reference = torchvision.models.resnet18(weights=None, num_classes=10).eval()
>>> net = load_torchvision(neurlink.resnet18(num_classes=10), reference.state_dict()).eval()
>>> x = torch.randn(1, 3, 40, 40)
>>> torch.testing.assert_close(net(x).flatten(1), reference(x))
>>> reference.load_state_dict(to_torchvision_state_dict(net))
<All keys matched successfully>
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import nn

from ..errors import StateDictError
from ..nerves import ConvNd
from ._state_dict import (
    Pair,
    block_pairs,
    check_complete,
    conv_pairs,
    export_pairs,
    has_state,
    is_block,
    linear_pairs,
    load_pairs,
)

__all__ = ["load_torchvision", "to_torchvision_state_dict"]

Model = TypeVar("Model", bound=nn.Module)


def load_torchvision(model: Model, state_dict: Mapping[str, torch.Tensor] | nn.Module) -> Model:
    """Load a torchvision ResNet-family ``state_dict`` (or the torchvision model itself) into ``model``.

    Strict: every tensor of ``state_dict`` is used and every parameter and buffer of ``model``
    is filled; otherwise a :class:`~neurlink.errors.StateDictError` (a ``NeurlinkError``) names
    the torchvision and the neurlink key of each problem, and ``model`` is left unchanged. The
    one exception is BatchNorm's ``num_batches_tracked``, which checkpoints saved before
    PyTorch 0.4.1 lack: as ``BatchNorm`` itself does, it is then set to 0. Returns ``model``.
    """
    if isinstance(state_dict, nn.Module):
        state_dict = state_dict.state_dict()
    load_pairs(model, state_dict, _pairs(model), "torchvision")
    return model


def to_torchvision_state_dict(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """``model``'s weights under torchvision's keys, for ``torchvision.models.resnet50().load_state_dict``.

    The inverse of :func:`load_torchvision`. Like ``state_dict()``, the tensors share memory with
    the model's (the head's weight is a ``[N, C]`` view of the conv weight).
    """
    return export_pairs(model, _pairs(model), "torchvision")


# --- the mapping ------------------------------------------------------------------------------


def _pairs(model: nn.Module) -> list[Pair]:
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
    check_complete(model, pairs, "torchvision", "ResNet")
    return pairs
