r"""Noticing every change to a neurlink module that could make a network's flat forward stale.

A network runs a flat forward generated from its module tree (``forward_graph.py``). PyTorch
users change that tree after building it: they replace a head, convert norms, wrap blocks for
checkpointing or LoRA, register hooks, patch a ``forward``. The flat forward must never run a
tree that is gone, and checking the whole tree on every call would cost the overhead it saves.

So every change a user can make to a neurlink module (a ``Network`` or a ``Nerve``) bumps one
global counter, the *tree epoch*:

- a child set, replaced or deleted, by ``setattr``, ``add_module`` or a direct write into
  ``_modules`` (eager quantization's ``convert`` writes there): ``_modules`` is a
  :class:`ChildModules`, a dict that bumps the epoch when it changes;
- any other attribute set or deleted (a ``forward`` patched on the instance, ``__class__`` swapped,
  ``train()``/``eval()``);
- a hook registered on it, by any route: its hook dicts are :class:`HookDict`\ s.

A network compares the epoch with the one its flat forward was last checked at, and only when it
moved does it compare the tree with the one the forward was generated from. Changes inside torch's
own modules need no notice: the flat forward calls them as modules, so their hooks, parametrizations
and ``forward`` apply. Global module hooks are looked at on every call (a few dict lookups).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch.nn.modules import module as _torch_module

__all__ = ["epoch", "bump", "ChildModules", "HookDict", "HOOK_DICTS", "global_hooks", "TreeSnapshot"]

_epoch = 0


def epoch() -> int:
    """The current tree epoch."""
    return _epoch


def bump() -> None:
    """Mark every flat forward as needing a check against its tree."""
    global _epoch
    _epoch += 1


class ChildModules(dict):
    """The ``_modules`` dict of a neurlink module: a dict that bumps the tree epoch when it changes."""

    __slots__ = ()

    # Each method writes first and bumps after: a reader that sees the new epoch sees the new tree.
    def __setitem__(self, key, value) -> None:
        dict.__setitem__(self, key, value)
        bump()

    def __delitem__(self, key) -> None:
        dict.__delitem__(self, key)
        bump()

    def pop(self, *args):
        try:
            return dict.pop(self, *args)
        finally:
            bump()

    def popitem(self):
        try:
            return dict.popitem(self)
        finally:
            bump()

    def setdefault(self, key, default=None):
        try:
            return dict.setdefault(self, key, default)
        finally:
            bump()

    def update(self, *args, **kwargs) -> None:
        dict.update(self, *args, **kwargs)
        bump()

    def clear(self) -> None:
        dict.clear(self)
        bump()

    # dict's stub overloads __or__, with which mypy finds no __ior__ of a subclass compatible
    def __ior__(self, other: Any) -> ChildModules:  # type: ignore[misc]
        dict.__ior__(self, other)
        bump()
        return self

    def copy(self) -> ChildModules:  # nn.DataParallel's replicas copy their parent's _modules
        return ChildModules(self)

    def __reduce__(self):  # pickles as itself, restored without bumping one key at a time
        return (ChildModules, (dict(self),))


class HookDict(OrderedDict):
    """A hook dict of a neurlink module (``_forward_hooks`` and the like): an ``OrderedDict`` that bumps
    the tree epoch when it changes, so that a hook registered by any route (``nn.Module``'s own
    methods, a library writing into the dict, ``handle.remove()``) is seen without looking at it."""

    def __setitem__(self, key, value) -> None:
        OrderedDict.__setitem__(self, key, value)
        bump()

    def __delitem__(self, key) -> None:
        OrderedDict.__delitem__(self, key)
        bump()

    def pop(self, *args):
        try:
            return OrderedDict.pop(self, *args)
        finally:
            bump()

    def popitem(self, last: bool = True):
        try:
            return OrderedDict.popitem(self, last)
        finally:
            bump()

    def update(self, *args, **kwargs) -> None:
        OrderedDict.update(self, *args, **kwargs)
        bump()

    def clear(self) -> None:
        OrderedDict.clear(self)
        bump()

    def __reduce__(self):  # pickles as itself, restored without bumping one key at a time
        return (HookDict, (list(self.items()),))


HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def global_hooks() -> bool:
    """Whether a hook registered for every module (``nn.modules.module.register_module_*_hook``) exists."""
    return bool(
        _torch_module._global_forward_hooks
        or _torch_module._global_forward_pre_hooks
        or _torch_module._global_backward_hooks
        or _torch_module._global_backward_pre_hooks
    )


class TreeSnapshot:
    """Every module under a root, by identity, with its class, its children, its parameters and whether
    a ``forward`` was patched on it: enough to tell later whether the tree is still as it was (as built). Kept as
    one hash, folded module by module, so that a large network leaves no large structure behind."""

    def __init__(self, root) -> None:
        self._digest = _digest(root)

    def matches(self, root) -> bool:
        return _digest(root) == self._digest


def _digest(root) -> int:
    digest = 0
    for module in root.modules():
        children = tuple(map(id, module._modules.values()))
        parameters = tuple(map(id, module._parameters.values()))  # a weight replaced (structured pruning)
        digest = hash((digest, id(module), type(module), children, parameters, "forward" in module.__dict__))
    return digest
