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

import difflib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from ..errors import StateDictError
from ..nerve import Nerve
from ..nerves import ConvNd
from ..nerves.merge import SkipConnectNd

__all__ = ["load_torchvision", "to_torchvision_state_dict"]

Model = TypeVar("Model", bound=nn.Module)

# Errors list this many problems, then how many more there are.
_SHOWN = 8


@dataclass(frozen=True)
class _Pair:
    neurlink: str
    torchvision: str
    head: bool = False  # fc.weight [N, C] is the 1x1 conv weight [N, C, 1, 1]


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
            close = _renamed(pair.torchvision, unused) if _shown(problems) else None
            hint = f" (it has {close!r})" if close else ""
            problems.append(
                f"torchvision key {pair.torchvision!r} is missing{hint}; neurlink key {pair.neurlink!r} needs it"
            )
            continue
        tensor = state_dict[pair.torchvision]
        expected = _torchvision_shape(pair, target)
        if tuple(tensor.shape) != expected:
            problems.append(
                f"torchvision key {pair.torchvision!r} has shape {list(tensor.shape)}, but neurlink key"
                f" {pair.neurlink!r} needs {list(expected)}"
            )
            continue
        loaded[pair.neurlink] = tensor.reshape(target.shape) if pair.head else tensor
    for key in unused:
        close = difflib.get_close_matches(key, list(used), n=1, cutoff=0.6) if _shown(problems) else []
        hint = f"; the closest mapped key, {close[0]!r}, goes to neurlink key {used[close[0]]!r}" if close else ""
        problems.append(f"torchvision key {key!r} is not used: no neurlink key maps to it{hint}")
    if problems:
        raise _error(f"the state_dict does not fit this {type(model).__name__}", problems)
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
        result[pair.torchvision] = tensor.reshape(_torchvision_shape(pair, tensor)) if pair.head else tensor
    return result


# --- the mapping ------------------------------------------------------------------------------


def _torchvision_shape(pair: _Pair, tensor: torch.Tensor) -> tuple[int, ...]:
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


def _pairs(model: nn.Module) -> list[_Pair]:
    """(neurlink key, torchvision key) for every tensor of ``model``, in torchvision's order."""
    pairs: list[_Pair] = []
    stem = head = None
    stage, block, stage_dims = 0, -1, None
    for name, module in model.named_children():
        if not _has_state(module):  # Input, pooling, activations
            continue
        where = f"line {name} ({type(module).__name__})"
        if head is not None:
            raise StateDictError(f"{where} has weights after the classifier (line {head}); torchvision's fc is last")
        if _is_block(module):
            if stem is None:
                raise StateDictError(f"{where} is a block before any stem conv; torchvision's ResNet starts with conv1")
            dims = module.target_dims[0]
            if stage_dims is not None and dims.same_as(stage_dims):
                block += 1
            else:  # a stage's first block changes the dims; the others keep them
                stage, block, stage_dims = stage + 1, 0, dims
            pairs.extend(_block_pairs(module, f"{name}.", f"layer{stage}.{block}."))
        elif isinstance(module, ConvNd) and stem is None and stage == 0:
            stem = name
            pairs.extend(_conv_pairs(module, f"{name}.", "conv1", "bn1"))
        elif isinstance(module, ConvNd) and stage > 0:
            head = name
            pairs.extend(_head_pairs(module, f"{name}."))
        else:
            raise StateDictError(
                f"{where} has weights, but torchvision's ResNet has only a stem conv, residual blocks and an fc here"
            )
    _check_complete(model, pairs)
    return pairs


def _block_pairs(block: nn.Module, prefix: str, target: str) -> Iterator[_Pair]:
    convs = 0
    for name, module in block.named_children():
        if not _has_state(module):
            continue
        if isinstance(module, ConvNd):
            convs += 1
            yield from _conv_pairs(module, f"{prefix}{name}.", f"{target}conv{convs}", f"{target}bn{convs}")
        elif isinstance(module, SkipConnectNd) and isinstance(module.project, ConvNd):
            # torchvision's downsample is Sequential(conv1x1, norm)
            yield from _conv_pairs(
                module.project, f"{prefix}{name}.project.", f"{target}downsample.0", f"{target}downsample.1"
            )
        else:
            raise StateDictError(
                f"line {prefix}{name} ({type(module).__name__}) has weights, but a torchvision block has only"
                " convs, norms and a downsample"
            )


def _conv_pairs(module: ConvNd, prefix: str, conv: str, norm: str) -> Iterator[_Pair]:
    for key in module.state_dict():
        part, _, rest = key.partition(".")
        if part in ("conv", "norm"):
            yield _Pair(prefix + key, f"{conv if part == 'conv' else norm}.{rest}")
        # anything else (an activation with weights) is reported by _check_complete


def _head_pairs(module: ConvNd, prefix: str) -> Iterator[_Pair]:
    for key in module.state_dict():
        if key in ("conv.weight", "conv.bias"):
            yield _Pair(prefix + key, "fc." + key.partition(".")[2], head=key == "conv.weight")


def _check_complete(model: nn.Module, pairs: list[_Pair]) -> None:
    mapped = {pair.neurlink for pair in pairs}
    left = [key for key in model.state_dict() if key not in mapped]
    if left:
        raise _error(
            f"this {type(model).__name__} has tensors torchvision's ResNet does not",
            [f"neurlink key {key!r} has no torchvision key" for key in left],
        )


def _is_block(module: nn.Module) -> bool:
    """A nerve made of sub-lines: its children are named by line number (``3.1.conv.weight``)."""
    children = [name for name, _ in module.named_children()]
    return isinstance(module, Nerve) and bool(children) and all(name.isdigit() for name in children)


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def _renamed(key: str, candidates: list[str]) -> str | None:
    """The key ``key`` was probably saved under: with a prefix (``module.``), or a close spelling."""
    prefixed = [candidate for candidate in candidates if candidate.endswith("." + key)]
    if prefixed:
        return prefixed[0]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.8)
    return close[0] if close else None


def _shown(problems: list[str]) -> bool:
    """Whether the next problem will be in the message."""
    return len(problems) < _SHOWN


def _error(summary: str, problems: list[str]) -> StateDictError:
    shown = "\n    ".join(problems[:_SHOWN])
    more = f"\n    ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
    return StateDictError(f"{summary}:\n    {shown}{more}")
