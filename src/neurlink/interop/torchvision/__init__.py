"""torchvision's weights in and out of neurlink networks: ResNet, MobileNet, EfficientNet, ConvNeXt.

The key mapping is derived from the network itself, walking its lines and the sub-lines of its
blocks in order (``_resnet.py``: ``conv1``, ``layer1.0.conv1``, ``fc``; ``_features.py``:
``features.0.0``, ``features.1.0.block.0.0``, ``classifier.1``), so any network shaped like one
of torchvision's maps, not only the zoo's. torchvision's ``Linear`` classifiers are our 1x1 convs:
their ``[N, C]`` weights are our ``[N, C, 1, 1]``.

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

import difflib
from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import nn

from ._common import error, renamed, shown, torchvision_shape
from ._features import features_pairs, is_features_family
from ._resnet import resnet_pairs

__all__ = ["load_torchvision", "to_torchvision_state_dict"]

Model = TypeVar("Model", bound=nn.Module)


def load_torchvision(model: Model, state_dict: Mapping[str, torch.Tensor] | nn.Module) -> Model:
    """Load a torchvision ``state_dict`` (ResNet, MobileNet, EfficientNet or ConvNeXt family) (or the torchvision model itself) into ``model``.

    Strict: every tensor of ``state_dict`` is used and every parameter and buffer of ``model``
    is filled; otherwise a :class:`~neurlink.errors.StateDictError` (a ``NeurlinkError``) names
    the torchvision and the neurlink key of each problem, and ``model`` is left unchanged. The
    one exception is BatchNorm's ``num_batches_tracked``, which checkpoints saved before
    PyTorch 0.4.1 lack: as ``BatchNorm`` itself does, it is then set to 0. Returns ``model``.
    """
    if isinstance(state_dict, nn.Module):
        state_dict = state_dict.state_dict()
    pairs = _pairs(model)
    own = model.state_dict()
    used = {pair.torchvision: pair.neurlink for pair in pairs}
    unused = [key for key in state_dict if key not in used]
    problems, loaded = [], OrderedDict()
    for pair in pairs:
        target = own[pair.neurlink]
        if pair.torchvision not in state_dict:
            if pair.torchvision.endswith(".num_batches_tracked"):
                loaded[pair.neurlink] = torch.zeros_like(target)
                continue
            # only unused keys are candidates: a renamed key (a "module." prefix), not another layer's;
            # and only for the problems shown, as difflib is slow on hundreds of keys
            close = renamed(pair.torchvision, unused) if shown(problems) else None
            hint = f" (it has {close!r})" if close else ""
            problems.append(
                f"torchvision key {pair.torchvision!r} is missing{hint}; neurlink key {pair.neurlink!r} needs it"
            )
            continue
        tensor = state_dict[pair.torchvision]
        expected = torchvision_shape(pair, target)
        if tuple(tensor.shape) != expected:
            problems.append(
                f"torchvision key {pair.torchvision!r} has shape {list(tensor.shape)}, but neurlink key"
                f" {pair.neurlink!r} needs {list(expected)}"
            )
            continue
        loaded[pair.neurlink] = tensor.reshape(target.shape) if pair.head else tensor
    for key in unused:
        close = difflib.get_close_matches(key, list(used), n=1, cutoff=0.6) if shown(problems) else []
        hint = f"; the closest mapped key, {close[0]!r}, goes to neurlink key {used[close[0]]!r}" if close else ""
        problems.append(f"torchvision key {key!r} is not used: no neurlink key maps to it{hint}")
    if problems:
        raise error(f"the state_dict does not fit this {type(model).__name__}", problems)
    model.load_state_dict(loaded, strict=True)
    return model


def to_torchvision_state_dict(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """``model``'s weights under torchvision's keys, for ``torchvision.models.resnet50().load_state_dict``.

    The inverse of :func:`load_torchvision`. Like ``state_dict()``, the tensors share memory with
    the model's (the head's weight is a ``[N, C]`` view of the conv weight).
    """
    own = model.state_dict()
    result: OrderedDict[str, torch.Tensor] = OrderedDict()
    for pair in _pairs(model):
        tensor = own[pair.neurlink]
        result[pair.torchvision] = tensor.reshape(torchvision_shape(pair, tensor)) if pair.head else tensor
    return result


def _pairs(model: nn.Module):
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    if is_features_family(model):
        return features_pairs(model)
    return resnet_pairs(model)
