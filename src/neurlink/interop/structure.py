"""Weights of any reference model into any neurlink network, paired by structure rather than by name.

The network's tensors are taken in line order (each line's parameters and buffers in its module's
order, sub-lines included) and the reference's in its ``state_dict`` order, and paired one by one.
Every pair must have the same shape, except that a ``Linear`` weight ``[N, C]`` fills a 1x1 conv's
``[N, C, 1, 1]`` (the zoo's classifiers are 1x1 convs); nothing else is reshaped. BatchNorm's
``num_batches_tracked`` is not counted: each norm's goes with the statistics it is loaded beside.

Where the reference registers its modules in another order than the lines run, ``order=`` moves
them: ``{"*.proj": "last"}`` (RegNet registers the projection ``proj`` before the block's ``f``,
neurlink's block runs it last), ``{"class_token": "after:conv_proj"}`` (ViT's class token comes
first in its ``state_dict``). A pattern is an ``fnmatch`` pattern over whole module paths (``*``
crosses dots); each module it matches is moved among its siblings: ``"first"``, ``"last"``,
``"before:NAME"`` or ``"after:NAME"`` of its sibling ``NAME``. A callable taking the reference's keys
and returning them reordered does anything else.

>>> import torch
>>> from torch import nn
>>> import neurlink.nerves as nv
>>> from neurlink.interop import load_by_structure, to_reference_state_dict
>>> reference = nn.Sequential(
...     nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)
... ).eval()
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((8, 1), nv.Conv2d_BN_ReLU(3, bias=True)),
...         ((8, "(1, 1)"), nv.AvgPool2d()),
...         ((5, "(1, 1)"), nv.Conv2d(1)),
...     ]
... )
>>> net = load_by_structure(net, reference).eval()
>>> x = torch.randn(2, 3, 17, 20)
>>> torch.testing.assert_close(net(x).flatten(1), reference(x))
>>> reference.load_state_dict(to_reference_state_dict(net, reference))
<All keys matched successfully>
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import torch
from torch import nn

from ..errors import StateDictError, a_kind, did_you_mean
from ..lines_module import LinesModule
from ._state_dict import Pair, export_pairs, load_pairs, require_network

__all__ = ["Order", "load_by_structure", "to_reference_state_dict"]

Model = TypeVar("Model", bound=nn.Module)

# Where the reference's modules go: {pattern: "first" | "last" | "before:NAME" | "after:NAME"}, or a
# callable returning the reference's keys reordered.
Order = Mapping[str, str] | Callable[[list[str]], Iterable[str]]

_TRACKED = ".num_batches_tracked"
_ALLOWED = (
    "tensors of the same shape, in the same order, or a Linear weight [N, C] into a 1x1 conv [N, C, 1, 1];"
    " where the reference registers its modules in another order than the lines run, say where they go with"
    " order= (e.g. order={'*.proj': 'last'} or {'aux1': 'after:inception4a'})"
)


def load_by_structure(
    model: Model, reference: nn.Module | Mapping[str, torch.Tensor], *, order: Order | None = None
) -> Model:
    """Load the weights of ``reference`` (any ``nn.Module`` or a ``state_dict``) into the neurlink network
    ``model`` by structure: its tensors in line order against the reference's in ``state_dict`` order.

    Strict: the shapes of every pair match (a ``Linear`` weight ``[N, C]`` may fill a 1x1 conv
    ``[N, C, 1, 1]``, nothing else is reshaped) and every tensor of both is used, otherwise a
    :class:`~neurlink.errors.StateDictError` names the line of the first that does not fit (its
    path and the line as written), the reference key and both shapes, and ``model`` is left
    unchanged. BatchNorm's ``num_batches_tracked`` follows its norm's statistics and is set to 0
    where the reference lacks it, as :func:`~neurlink.interop.load_torchvision` does.

    ``order`` says where the reference's modules go when it registers them in another order than
    the lines run (docs: "Any network: loading by structure"): ``{"*.proj": "last"}``,
    ``{"aux1": "after:inception4a"}``, or a callable reordering the reference's keys. Returns ``model``.
    """
    require_network(model, "load_by_structure")
    state_dict = _reference_state_dict(reference, "load_by_structure")
    load_pairs(model, state_dict, structure_pairs(model, state_dict, order), "reference")
    return model


def to_reference_state_dict(
    model: nn.Module, reference: nn.Module | Mapping[str, torch.Tensor], *, order: Order | None = None
) -> OrderedDict[str, torch.Tensor]:
    """``model``'s weights under the keys of ``reference`` (a model or a ``state_dict``, whose shapes are
    read; a model built on the meta device will do), in its order: the inverse of :func:`load_by_structure`,
    for ``reference.load_state_dict``.

    Like ``state_dict()``, the tensors share memory with the model's (a Linear's weight is a
    ``[N, C]`` view of the 1x1 conv weight).
    """
    require_network(model, "to_reference_state_dict")
    state_dict = _reference_state_dict(reference, "to_reference_state_dict")
    pairs = [pair for pair in structure_pairs(model, state_dict, order) if pair.reference in state_dict]
    exported = export_pairs(model, pairs, "reference")
    result = OrderedDict((key, exported[key]) for key in state_dict if key in exported)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:  # the modules' versions, which some loaders read (torchvision's MNASNet)
        result._metadata = metadata  # type: ignore[attr-defined]
    left = [key for key in state_dict if key not in exported]
    if left:  # a reference num_batches_tracked of a module that got no norm's statistics
        raise StateDictError(
            f"reference key {left[0]!r} is not used: no neurlink tensor goes to it"
            + (f" (nor to {len(left) - 1} more)" if len(left) > 1 else "")
        )
    return result


def structure_pairs(model: nn.Module, reference: Mapping[str, torch.Tensor], order: Order | None = None) -> list[Pair]:
    """(neurlink key, reference key) for every tensor of ``model``, paired by structure, with the shapes
    checked; ``num_batches_tracked`` paired with the reference's key beside its norm's statistics."""
    own = model.state_dict(keep_vars=True)
    ours = [key for key in _line_order(model, own) if not key.endswith(_TRACKED)]
    theirs = [key for key in _reorder(list(reference), order) if not key.endswith(_TRACKED)]
    known = any(isinstance(tensor, nn.Parameter) for tensor in reference.values())  # a model's: kinds known
    pairs: list[Pair] = []
    for count, (key, other) in enumerate(zip(ours, theirs)):
        shape, other_shape = tuple(own[key].shape), tuple(reference[other].shape)
        linear = shape != other_shape and _fills_conv(model, key, shape, other_shape)
        kind, other_kind = _kind(key, own[key], True), _kind(other, reference[other], known)
        differs = "the shapes differ" if shape != other_shape and not linear else None
        if differs is None and None not in (kind, other_kind) and kind != other_kind:
            differs = f"a {kind} is paired with a {other_kind}"  # same shape, another tensor: a layer missing before
        if differs is not None:
            last = f"; the pair before it: {pairs[-1].neurlink!r} <- {pairs[-1].reference!r}" if pairs else ""
            raise _at_line(
                model,
                key,
                f"{list(shape)} is paired with reference key {other!r} {list(other_shape)} (tensor {count} of both,"
                f" by structure): {differs}{last}",
            )
        pairs.append(Pair(key, other, linear=linear))
    if len(ours) > len(theirs):
        key = ours[len(theirs)]
        raise _at_line(
            model,
            key,
            f"{list(own[key].shape)} gets no reference tensor: the reference has {len(theirs)} tensors, the network"
            f" {len(ours)}" + _last(pairs),
        )
    if len(theirs) > len(ours):
        other = theirs[len(ours)]
        raise StateDictError(
            f"reference key {other!r} {list(reference[other].shape)} is not used: the network has {len(ours)}"
            f" tensors, the reference {len(theirs)}" + _last(pairs),
            allowed=_ALLOWED,
        )
    return pairs + _tracked_pairs(own, pairs)


def _kind(key: str, tensor: torch.Tensor, known: bool) -> str | None:
    """ "parameter" or "buffer" where that is known: a model's own tensors say it (``known``); in a plain
    state_dict a ``weight`` or ``bias`` is taken for a parameter, a norm's running statistics for buffers."""
    if isinstance(tensor, nn.Parameter):
        return "parameter"
    if known:
        return "buffer"
    name = key.rpartition(".")[2]
    return {"weight": "parameter", "bias": "parameter", "running_mean": "buffer", "running_var": "buffer"}.get(name)


def _line_order(model: nn.Module, own: Mapping[str, torch.Tensor]) -> list[str]:
    """The keys of ``own`` by line (a key's first part is its line's module), each line's in module order."""
    table = model._table if isinstance(model, LinesModule) else None
    position = {entry.name: entry.index for entry in table.entries if entry.name} if table else {}
    return sorted(own, key=lambda key: position.get(key.partition(".")[0], -1))


def _fills_conv(model: nn.Module, key: str, shape: tuple[int, ...], other: tuple[int, ...]) -> bool:
    """Whether ``key`` is a 1x1 ``Conv2d``'s weight ``[N, C, 1, 1]`` and ``other`` a Linear's ``[N, C]``."""
    path, _, name = key.rpartition(".")
    owner = model.get_submodule(path)
    return isinstance(owner, nn.Conv2d) and name == "weight" and len(other) == 2 and shape == (*other, 1, 1)


def _tracked_pairs(own: Mapping[str, torch.Tensor], pairs: list[Pair]) -> list[Pair]:
    """Each norm's ``num_batches_tracked`` beside the reference module its statistics come from."""
    reference_of = {pair.neurlink: pair.reference for pair in pairs}
    result = []
    for key in own:
        if not key.endswith(_TRACKED):
            continue
        module = key[: -len(_TRACKED)]
        source = reference_of.get(f"{module}.running_mean") or reference_of.get(f"{module}.running_var")
        if source is not None:
            result.append(Pair(key, source.rpartition(".")[0] + _TRACKED if "." in source else _TRACKED[1:]))
    # a count without statistics beside it has no reference module: load_pairs names it as unmapped
    return result


def _at_line(model: nn.Module, key: str, reason: str) -> StateDictError:
    """An error located at the line (and the sub-lines) holding the neurlink tensor ``key``: the rest of
    the key (inside the innermost line), then ``reason``."""
    where: list[tuple[int, str | None, str]] = []
    module, rest = model, key
    while isinstance(module, LinesModule) and module._table is not None:
        entry = next(
            (e for e in module._table.entries if e.name and (rest == e.name or rest.startswith(e.name + "."))), None
        )
        if entry is None or entry.name is None:
            break
        where.append((entry.index, entry.tag, entry.written))
        module, rest = module.get_submodule(entry.name), rest[len(entry.name) + 1 :]
    error = StateDictError(f"{rest if where else key} {reason}", allowed=_ALLOWED)
    for place in reversed(where):
        error.locate(*place)
    return error


def _last(pairs: list[Pair]) -> str:
    return f"; the last pair: {pairs[-1].neurlink!r} <- {pairs[-1].reference!r}" if pairs else ""


def _reference_state_dict(reference: object, function: str) -> Mapping[str, torch.Tensor]:
    if isinstance(reference, nn.Module):
        return reference.state_dict(keep_vars=True)  # its parameters as Parameters: pairs check their kind
    if not isinstance(reference, Mapping):
        raise StateDictError(
            f"{function}(net, reference): reference is {a_kind(type(reference).__name__)}, not a model or a state_dict"
            + (" (read a file with torch.load or safetensors first)" if isinstance(reference, (str, bytes)) else ""),
            allowed=f"{function}(net, reference) with an nn.Module or a Mapping of str to tensors",
        )
    return reference


# --- order= ------------------------------------------------------------------------------------


def _reorder(keys: list[str], order: Order | None) -> list[str]:
    """The reference's keys in the order ``order`` says its modules run."""
    if order is None:
        return keys
    if isinstance(order, Mapping):
        for pattern, placement in order.items():
            keys = _move(keys, pattern, placement)
        return keys
    if callable(order):
        result = list(order(list(keys)))
        given, known = set(result), set(keys)
        missing, extra = [k for k in keys if k not in given], [k for k in result if k not in known]
        if missing or extra or len(result) != len(keys):
            what = f"leaves out {missing[0]!r}" if missing else f"adds {extra[0]!r}" if extra else "repeats a key"
            raise StateDictError(
                f"order={getattr(order, '__name__', order)!r} {what}: it must return the reference's keys reordered",
                allowed="a callable returning every key of the reference once",
            )
        return result
    raise StateDictError(
        f"order={order!r} is {a_kind(type(order).__name__)}",
        allowed="a dict of module patterns to 'first', 'last', 'before:NAME' or 'after:NAME', or a callable"
        " reordering the reference's keys",
    )


def _move(keys: list[str], pattern: str, placement: str) -> list[str]:
    """``keys`` with every module matching ``pattern`` moved among its siblings as ``placement`` says."""
    where, _, sibling = placement.partition(":") if isinstance(placement, str) else ("", "", "")
    if not (where in ("first", "last") and not sibling or where in ("before", "after") and sibling):
        raise StateDictError(
            f"order={{{pattern!r}: {placement!r}}}: {placement!r} is no place",
            allowed="'first', 'last', 'before:NAME' or 'after:NAME' (NAME a sibling of the moved module)",
        )
    groups: dict[str, list[str]] = {}
    for key in keys:
        module = _matching_module(key, pattern)
        if module is not None:
            groups.setdefault(module, []).append(key)
    if not groups:
        modules = {key.rpartition(".")[0] or key for key in keys}
        raise StateDictError(
            f"order={{{pattern!r}: {placement!r}}}: {pattern!r} matches no module of the reference"
            + did_you_mean(pattern, sorted(modules)),
            allowed="fnmatch patterns of whole module paths, '*' crossing dots: 'aux1', '*.proj', 'features.*.reduction'",
        )
    previous: dict[str, str] = {}  # the last module moved among a parent's children
    for module, moved in groups.items():
        parent, taken = module.rpartition(".")[0], set(moved)
        rest = [key for key in keys if key not in taken]
        chained = previous.get(parent)
        previous[parent] = module
        if chained is not None and where in ("first", "after"):  # modules moved to one place keep their order
            at = max(i for i, key in enumerate(rest) if key == chained or key.startswith(chained + ".")) + 1
        elif where in ("first", "last"):
            region = [i for i, key in enumerate(rest) if not parent or key.startswith(parent + ".")]
            at = (region[0] if where == "first" else region[-1] + 1) if region else len(rest)
        else:
            target = f"{parent}.{sibling}" if parent else sibling
            found = [i for i, key in enumerate(rest) if key == target or key.startswith(target + ".")]
            if not found:
                siblings = {_child(key, parent) for key in rest if not parent or key.startswith(parent + ".")}
                raise StateDictError(
                    f"order={{{pattern!r}: {placement!r}}}: {module!r} has no sibling {sibling!r}"
                    + did_you_mean(sibling, sorted(siblings)),
                    allowed=f"NAME one of the modules beside it: {', '.join(sorted(siblings)[:8])}",
                )
            at = found[0] if where == "before" else found[-1] + 1
        keys = rest[:at] + moved + rest[at:]
    return keys


def _matching_module(key: str, pattern: str) -> str | None:
    """The shortest module path of ``key`` (``a``, ``a.b``, ... the key itself) that ``pattern`` matches."""
    parts = key.split(".")
    for end in range(1, len(parts) + 1):
        path = ".".join(parts[:end])
        if fnmatch.fnmatchcase(path, pattern):
            return path
    return None


def _child(key: str, parent: str) -> str:
    return (key[len(parent) + 1 :] if parent else key).partition(".")[0]
