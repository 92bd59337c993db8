"""Loading weights through a key mapping, strictly: what every reference library's interop shares.

A mapping is a list of :class:`Pair` (neurlink key, the reference library's key), derived by
walking a network's lines (``torchvision.py``, ``timm.py``). Loading uses every tensor of the
given state_dict and fills every tensor of the model, or raises a :class:`StateDictError` naming
both keys of each problem and changes nothing.
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeGuard

import torch
from torch import nn

from ..errors import StateDictError, a_kind
from ..lines_module import LinesModule
from ..nerve import Nerve
from ..nerves import ConvNd
from ..nerves.merge import SkipConnectNd

__all__ = [
    "Pair",
    "require_network",
    "load_pairs",
    "export_pairs",
    "conv_pairs",
    "block_pairs",
    "linear_pairs",
    "child_pairs",
    "tagged_pairs",
    "check_complete",
]

# Errors list this many problems, then how many more there are.
_SHOWN = 8


@dataclass(frozen=True)
class Pair:
    neurlink: str
    reference: str
    linear: bool = False  # a Linear's [N, C] weight is our 1x1 conv's [N, C, 1, 1]


def require_network(model: object, function: str) -> None:
    """The first argument of a loader or exporter is the neurlink network (the reference's model comes second)."""
    if not isinstance(model, LinesModule) or model.__dict__.get("_table") is None:
        raise StateDictError(
            f"{function}(model, ...): model is {a_kind(type(model).__name__)}, not a neurlink network",
            allowed=f"{function}(net, reference) with the neurlink network first"
            if not function.startswith("to_")
            else f"{function}(net) with a neurlink network",
        )


def load_pairs(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor] | nn.Module, pairs: list[Pair], library: str
) -> None:
    """Load ``state_dict`` (keys of ``library``, or the library's model itself) into ``model`` through
    ``pairs``, strictly.

    BatchNorm's ``num_batches_tracked``, which checkpoints saved before PyTorch 0.4.1 lack, is set
    to 0 when missing, as ``BatchNorm`` itself does.
    """
    if isinstance(state_dict, nn.Module):
        state_dict = state_dict.state_dict()
    if not isinstance(state_dict, Mapping):  # a path, None: not something to read tensors from
        raise StateDictError(
            f"a {library} state_dict or model is loaded, not {a_kind(type(state_dict).__name__)}"
            + (" (read a file with torch.load or safetensors first)" if isinstance(state_dict, (str, bytes)) else "")
        )
    own = model.state_dict()
    used = {pair.reference: pair.neurlink for pair in pairs}
    unused = [key for key in state_dict if key not in used]
    problems: list[str] = []
    loaded: OrderedDict[str, torch.Tensor] = OrderedDict()
    for pair in pairs:
        target = own[pair.neurlink]
        if pair.reference not in state_dict:
            if pair.reference.endswith(".num_batches_tracked"):
                loaded[pair.neurlink] = torch.zeros_like(target)
                continue
            # only unused keys are candidates: a renamed key (a "module." prefix), not another layer's;
            # and only for the problems shown, as difflib is slow on hundreds of keys
            close = _renamed(pair.reference, unused) if _shown(problems) else None
            hint = f" (it has {close!r})" if close else ""
            problems.append(
                f"{library} key {pair.reference!r} is missing{hint}; neurlink key {pair.neurlink!r} needs it"
            )
            continue
        tensor = state_dict[pair.reference]
        expected = reference_shape(pair, target, library)
        if tuple(tensor.shape) != expected:
            problems.append(
                f"{library} key {pair.reference!r} has shape {list(tensor.shape)}, but neurlink key"
                f" {pair.neurlink!r} needs {list(expected)}"
            )
            continue
        loaded[pair.neurlink] = tensor.reshape(target.shape) if pair.linear else tensor
    for key in unused:
        matches = difflib.get_close_matches(key, list(used), n=1, cutoff=0.6) if _shown(problems) else []
        hint = f"; the closest mapped key, {matches[0]!r}, goes to neurlink key {used[matches[0]]!r}" if matches else ""
        problems.append(f"{library} key {key!r} is not used: no neurlink key maps to it{hint}")
    if problems:
        raise error(f"the state_dict does not fit this {type(model).__name__}", _diagnosis(unused, used) + problems)
    if any(tensor.is_meta for tensor in own.values()):  # copying into meta tensors is torch's silent no-op
        raise StateDictError(
            f"the state_dict fits, but this {type(model).__name__} is on the meta device (shapes only): values"
            " cannot be loaded into it",
            allowed="build it on a device, or net.to_empty(device='cpu') first, then load",
        )
    model.load_state_dict(loaded, strict=True)


def export_pairs(model: nn.Module, pairs: list[Pair], library: str) -> OrderedDict[str, torch.Tensor]:
    """``model``'s tensors under the reference keys (sharing memory, as ``state_dict()`` does)."""
    own = model.state_dict()
    result: OrderedDict[str, torch.Tensor] = OrderedDict()
    for pair in pairs:
        tensor = own[pair.neurlink]
        result[pair.reference] = tensor.reshape(reference_shape(pair, tensor, library)) if pair.linear else tensor
    return result


def reference_shape(pair: Pair, tensor: torch.Tensor, library: str) -> tuple[int, ...]:
    """The shape the reference library stores the neurlink tensor of ``pair`` in."""
    shape = tuple(tensor.shape)
    if not pair.linear:
        return shape
    if len(shape) != 4 or shape[2:] != (1, 1):
        raise StateDictError(
            f"neurlink key {pair.neurlink!r} has shape {list(shape)}, but {library}'s {pair.reference!r}"
            " is a Linear layer: the head must be a 1x1 conv"
        )
    return shape[:2]


# --- pairs of the common parts -----------------------------------------------------------------


def conv_pairs(module: nn.Module, prefix: str, conv: str, norm: str) -> Iterator[Pair]:
    """A conv line's ``conv`` and ``norm`` tensors as the reference's ``conv`` and ``norm`` modules."""
    for key in module.state_dict():
        part, _, rest = key.partition(".")
        if part in ("conv", "norm"):
            yield Pair(prefix + key, f"{conv if part == 'conv' else norm}.{rest}")
        # anything else (an activation with weights) is reported by check_complete


def linear_pairs(module: nn.Module, prefix: str, linear: str) -> Iterator[Pair]:
    """A 1x1 conv line (on a ``(1, 1)`` map) as the reference's Linear layer ``linear``."""
    for key in module.state_dict():
        if key in ("conv.weight", "conv.bias"):
            yield Pair(prefix + key, f"{linear}.{key.partition('.')[2]}", linear=key == "conv.weight")


def child_pairs(module: nn.Module, prefix: str, target: str) -> Iterator[Pair]:
    """A nerve holding one torch module (``norm``, ``linear``, ``conv``) as the reference's module ``target``:
    ``{prefix}norm.weight`` is ``{target}.weight``."""
    for key in module.state_dict():
        yield Pair(prefix + key, f"{target}.{key.partition('.')[2]}")


def block_pairs(block: nn.Module, prefix: str, target: str, library: str) -> Iterator[Pair]:
    """A ResNet block (``models.resnet``): its convs ``conv1, bn1, conv2, ...``, its projection ``downsample``."""
    convs = 0
    for name, module in block.named_children():
        if not has_state(module):
            continue
        if isinstance(module, ConvNd):
            convs += 1
            yield from conv_pairs(module, f"{prefix}{name}.", f"{target}conv{convs}", f"{target}bn{convs}")
        elif isinstance(module, SkipConnectNd) and isinstance(module.project, ConvNd):
            # the reference's downsample is Sequential(conv1x1, norm)
            yield from conv_pairs(
                module.project, f"{prefix}{name}.project.", f"{target}downsample.0", f"{target}downsample.1"
            )
        else:
            raise StateDictError(
                f"line {prefix}{name} ({type(module).__name__}) has weights, but a {library} block has only"
                " convs, norms and a downsample"
            )


def tagged_pairs(
    nerve: Nerve, prefix: str, target: str, library: str, key: Callable[[str], str] = lambda tag: tag
) -> Iterator[Pair]:
    """The parts of a nerve that names them by tagging its sub-lines (``nerve.line_tags()``): a conv
    line tagged ``t`` is ``{target}{key(t)}.0`` and ``.1`` (conv and norm), a ResNet block its
    :func:`block_pairs` under ``{target}{key(t)}.``. Weights on an untagged sub-line stay unmapped, for
    :func:`check_complete` to name."""
    for tag, index in nerve.line_tags().items():
        module, name = nerve[index], f"{prefix}{index}."
        if isinstance(module, ConvNd):
            yield from conv_pairs(module, name, f"{target}{key(tag)}.0", f"{target}{key(tag)}.1")
        elif is_block(module):
            yield from block_pairs(module, name, f"{target}{key(tag)}.", library)
        elif has_state(module):
            raise StateDictError(
                f"line {name[:-1]} ({type(module).__name__}, tagged {tag!r}) has weights, but a {library} part is"
                " a conv (and its norm) or a block"
            )


def check_complete(model: nn.Module, pairs: list[Pair], library: str, architecture: str) -> None:
    """Raise unless every tensor of ``model`` has a key of ``library`` (whose ``architecture`` it maps to)."""
    mapped = {pair.neurlink for pair in pairs}
    left = [key for key in model.state_dict() if key not in mapped]
    if left:
        raise error(
            f"this {type(model).__name__} has tensors {library}'s {architecture} does not",
            [f"neurlink key {key!r} has no {library} key" for key in left],
        )


def is_block(module: nn.Module) -> TypeGuard[Nerve]:
    """A nerve made of sub-lines: its children are named by line number (``3.1.conv.weight``)."""
    children = [name for name, _ in module.named_children()]
    return isinstance(module, Nerve) and bool(children) and all(name.isdigit() for name in children)


def has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def _diagnosis(unused: list[str], used: dict[str, str]) -> list[str]:
    """What the unused keys as a whole say: a wrapper's prefix, or a state_dict of neurlink's own keys."""
    if unused and all(key.startswith("module.") for key in unused) and any(key[7:] in used for key in unused):
        return [
            "every key starts with 'module.' (saved from DataParallel or DistributedDataParallel): strip it with"
            " torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(state_dict, 'module.')"
        ]
    if unused and sum(key.partition(".")[0].isdigit() for key in unused) > len(unused) // 2:
        return ["these keys are neurlink's own (line numbers): load them with model.load_state_dict(state_dict)"]
    return []


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


def error(summary: str, problems: list[str]) -> StateDictError:
    shown = "\n    ".join(problems[:_SHOWN])
    more = f"\n    ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
    return StateDictError(f"{summary}:\n    {shown}{more}")
