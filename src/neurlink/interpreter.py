"""Running lines now, by calling the modules the tree holds at this moment.

This is the plain meaning of a definition: each line's current child module is called, as a
module (so its hooks fire), on the values of the lines it selects. A nerve with sub-lines runs them
this way, ``outputs=[...]`` and ``output_intermediate=True`` run the network this way, and so does
the network while a hook on one of its nerves asks for every nerve to be called, or while
``torch.compile`` traces it (dynamo then guards on the modules it called). Everywhere else the
network's flat forward (``forward_graph.py``) computes the same values with less Python.

Built-in nerves describe their computation once, as ``Nerve._steps(ops, *inputs, base_shape)``;
:class:`EagerOps` runs those steps now, ``forward_graph.Scope`` writes them into the flat forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from .errors import DimsError, OutputError, a_kind
from .program import Step, program_of
from .table import Entry, LineTable

__all__ = ["run_lines", "call_child", "child_of", "optional_child", "check_output", "EagerOps", "Ops"]


class Ops(Protocol):
    """What a built-in nerve's ``_steps`` calls: :class:`EagerOps` now, ``forward_graph.Scope`` in a graph.
    The values are tensors, or fx proxies standing for them."""

    def module(self, name: str, *args: Any, base_shape: Any = None) -> Any: ...

    def function(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...


def child_of(owner: nn.Module, name: str) -> nn.Module:
    """The child ``name`` that a built-in nerve's steps call; an ``AttributeError`` naming it (and,
    as it leaves, the line) where it was deleted after the build, as a hand-written module raises."""
    child = optional_child(owner, name)
    if child is None:
        raise AttributeError(f"{type(owner).__name__}'s child module {name!r} is None, and its computation calls it")
    return child


def optional_child(owner: nn.Module, name: str) -> nn.Module | None:
    """The child ``name`` of a nerve, or None where the nerve was built without it (``act=None``)."""
    try:
        return owner._modules[name]
    except KeyError:
        raise AttributeError(
            f"{type(owner).__name__} has no child module {name!r} (removed after the build?), and its computation"
            " calls it"
        ) from None


def call_child(module: nn.Module, args, base_shape):
    """Call ``module`` on ``args``, adding the base shape for a nerve that takes it."""
    # getattr, not the module's __dict__: a wrapper (checkpoint_wrapper) passes the attribute and the keyword on
    if getattr(module, "uses_base_shape", False):
        return module(*args, base_shape=base_shape)
    return module(*args)


def run_lines(
    owner: nn.Module,
    table: LineTable,
    inputs,
    base_shape=None,
    outputs: tuple[int, ...] | None = None,
    *,
    verify: bool = False,
):
    """The lines of ``table`` (owned by ``owner``) on ``inputs``, one tensor per Input line, each
    line's current module called as a module (``program.Program.run``).

    Returns the last line's value, or the list of the values of the lines in ``outputs``. With
    ``verify``, every line's value is checked against its declared dims (:func:`check_output`).
    """
    program = program_of(table, outputs)
    if base_shape is None and not table.nested:
        base_shape = inputs[table.base_entry.input_position].shape[program.base_dims]

    def call(step: Step, module: nn.Module, args: list) -> Any:
        value = call_child(module, args, base_shape)
        if verify:
            check_output(step.entry, value, base_shape)
        return value

    return program.result(program.run(owner, inputs, call))


def check_output(entry: Entry, value, base_shape) -> None:
    """Raise :class:`OutputError` unless ``value`` is what the line declares for this base shape."""
    count = len(entry.dims)
    if count > 1 and not (isinstance(value, (tuple, list)) and len(value) == count):
        raise OutputError(
            f"the line declares {count} outputs, but its module returned {_describe(value)}",
            allowed=f"a module returning a tuple of {count} tensors",
        )
    for k, (dims, y) in enumerate(zip(entry.dims, value if count > 1 else (value,))):
        try:
            expected = dims.tensor_shape(tuple(base_shape))
        except DimsError:  # a ratio of a base of another rank: no size to hold it to
            continue
        which = f"output {k}" if count > 1 else "its module"
        if not isinstance(y, torch.Tensor) or tuple(y.shape[1:]) != expected:
            raise OutputError(
                f"the line declares {dims!r}, that is (N, {', '.join(map(str, expected))}) for this input"
                + (" (tokens, channels last)" if dims.shape.is_tokens else "")
                + ","
                f" but {which} returned {_describe(y)}",
                allowed="a module whose output has the declared channels and shape (or declare what it returns)",
            )


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return "(N, " + ", ".join(map(str, value.shape[1:])) + ")" if value.dim() else "a 0-d tensor"
    if isinstance(value, (tuple, list)):
        return f"{a_kind(type(value).__name__)} of {len(value)}"
    return a_kind(type(value).__name__)


class EagerOps:
    """The operations of a built-in nerve's ``_steps``, run now on its current child modules."""

    __slots__ = ("owner",)

    def __init__(self, owner: nn.Module) -> None:
        self.owner = owner

    def module(self, name: str, *args: Any, base_shape: Any = None) -> Any:
        return call_child(child_of(self.owner, name), args, base_shape)

    @staticmethod
    def function(function, *args, **kwargs):
        return function(*args, **kwargs)
