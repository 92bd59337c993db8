"""``Nerve``: the base class of every layer a line can name, and ``Input``.

Calling a nerve class never constructs it: ``Conv2d(3)`` and ``Conv2d[sel, tag](3)``
record a deferred :class:`~neurlink.lines.NerveDef`. The builder constructs the
module later, handing it ``input_links`` and ``target_dims`` through the build
context, so ``__init__`` can derive in_channels, stride and padding from them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast, overload

import torch
from torch import fx, nn

from . import tree_watch
from .context import Link, current
from .errors import DefinitionError, DimsError, NerveArgumentError, NeurlinkError
from .interpreter import EagerOps, Ops, run_lines
from .lines import NerveDef, SelectedNerve
from .lines_module import LinesModule
from .program import in_lines
from .shapes import Dims, dims_text
from .table import LineTable

__all__ = ["Nerve", "Input"]


if TYPE_CHECKING:
    _ModuleMeta = type
else:
    _ModuleMeta = type(nn.Module)  # whatever metaclass torch gives its modules


class NerveMeta(_ModuleMeta):
    """Makes ``Cls(...)`` and ``Cls[selector, tag](...)`` record definitions instead of modules."""

    # (cls is a nerve class: the classes this metaclass makes are Nerve and its subclasses)
    def __call__(cls, *args: Any, **kwargs: Any) -> NerveDef:
        return NerveDef(cast("type[nn.Module]", cls), args, kwargs)

    def __getitem__(cls, key: Any) -> SelectedNerve:
        return SelectedNerve(cast("type[nn.Module]", cls), key)

    def __setattr__(cls, name: str, value: Any) -> None:  # e.g. a forward patched on a nerve class
        super().__setattr__(name, value)
        tree_watch.bump()


class Nerve(LinesModule, metaclass=NerveMeta):
    """Base class for layers used in definition lines.

    After ``super().__init__()`` a subclass can read:

    - ``self.input_links``: one :class:`~neurlink.context.Link` per selected line,
      each with ``.dims`` (every output of that line: ``.channels``, ``.shape``);
    - ``self.target_dims``: the dims its own line declares, one per output;

    and either define ``forward(self, *inputs)`` (one argument per selected line; add a
    keyword ``base_shape`` to receive the spatial shape of the base Input at call time) or
    add sub-lines with :meth:`add`, whose lines ``0..`` are its own inputs. A nerve that adds
    lines and keeps ``Nerve.forward`` is inlined into the network's flat forward; one with a
    ``forward`` of its own is always called, and runs that ``forward``.
    """

    uses_base_shape: bool
    # the attributes its steps read on every trace, which may be set after the build (the others are refused)
    live_attributes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        context = current()
        if context is None:
            raise NeurlinkError(
                f"{type(self).__name__} is made by nv.build from a line; call the class in a line instead"
            )
        self.input_links: list[Link] = list(context.input_links)
        self.target_dims: list[Dims] = list(context.target_dims)
        self._table = None

    def __setattr__(self, name: str, value: Any) -> None:
        # A nerve that neurlink runs (sub-lines, a built-in's steps) derived its computation from its arguments
        # when the line was built; an argument set afterwards would be saved by save_pretrained and never
        # computed (ChannelShuffle.groups, AvgPool2d.count_include_pad): refused, as a line to build again.
        if (
            self.__dict__.get("_built")
            and name in self.__dict__
            and not name.startswith("_")
            and name != "training"  # train() and eval()
            and name not in type(self).live_attributes
            and not isinstance(value, nn.Module)
            and type(self).forward is Nerve.forward
        ):
            what = "an argument of its line" if name in _arguments(type(self)) else "derived from its line"
            raise NerveArgumentError(
                f"{type(self).__name__}.{name} is {what}, fixed when the line was built (the forward computes"
                f" what the build made of {name}={self.__dict__[name]!r})",
                allowed="building the line again with the argument changed (nv.build of the lines), or changing"
                " the torch modules inside the line (their attributes are read on every call)",
            )
        super().__setattr__(name, value)

    # --- helpers for subclasses ----------------------------------------------------------

    @overload
    def add(self, lines: list[Any]) -> list[int]: ...

    @overload
    def add(self, lines: tuple[Any, ...]) -> int: ...

    def add(self, lines: list[Any] | tuple[Any, ...]) -> int | list[int]:
        """Add sub-lines (a line or a list); returns the new line index (or indices).

        Line ``k`` for ``k < len(self.input_links)`` is the nerve's ``k``-th input, so a
        residual block reads ``SkipConnect2d[[0, -1]](1)``.
        """
        if self._table is None:
            self._table = LineTable(tuple(self.input_links))
        indices = self._table.add(self, lines)
        return indices if isinstance(lines, list) else indices[0]

    def output_shapes(self, base_shape: Sequence[int]) -> list[tuple[int, ...]]:
        """The concrete spatial shape of each output for a base shape (e.g. in ``forward``)."""
        return [dims.shape.size(tuple(base_shape)) for dims in self.target_dims]

    def expect_links(self, count: int | None = None, *, outputs: int | None = None) -> None:
        """Raise a clear DefinitionError unless the line selects ``count`` inputs (of one output each)
        and declares ``outputs`` dims. ``outputs`` defaults to 1 for a nerve whose computation neurlink
        runs (sub-lines, a built-in's steps); a nerve with a ``forward`` of its own returns as many
        outputs as its line declares unless ``outputs`` says how many (the first call checks them)."""
        name = type(self).__name__
        if count is not None and len(self.input_links) != count:
            raise DefinitionError(
                f"{name} takes {count} input(s), but the selector gives {len(self.input_links)}",
                allowed=f"a selector choosing {count} line(s)",
            )
        for link in self.input_links:
            if len(link.dims) != 1:
                raise DefinitionError(
                    f"{name} takes single tensors, but line {link.index} has {len(link.dims)} outputs",
                    allowed=f"nv.output({link.index}, k) to pick one of them",
                )
        if outputs is None:
            if type(self).forward is not Nerve.forward:
                return
            outputs = 1
        if len(self.target_dims) != outputs:
            raise DimsError(
                f"{name} makes {outputs} output(s), but the line declares {len(self.target_dims)} dims",
                allowed=f"{outputs} (channels, shape) pair(s) before the nerve",
            )

    # --- build and call ------------------------------------------------------------------

    def _finish_build(self) -> None:
        if self._table is not None:
            if len(self._table.entries) == len(self.input_links):
                raise DefinitionError(f"{type(self).__name__} added no lines")
            last = self._table.entries[-1]
            if len(last.dims) != len(self.target_dims) or not all(
                a.same_as(b) for a, b in zip(last.dims, self.target_dims)
            ):
                raise DimsError(
                    f"{type(self).__name__}'s last sub-line declares {dims_text(last.dims)},"
                    f" but its line declares {dims_text(self.target_dims)}",
                    allowed="a last sub-line declaring the dims of the nerve's own line",
                )
            # sized as its last sub-line: a block of convs of another geometry than "same" (neurlink.sizes)
            self.target_dims = [
                Dims(mine.channels, mine.shape.with_sizing(theirs.shape.sizing))
                if mine.shape.ratios and theirs.shape.sizing != mine.shape.sizing
                else mine
                for mine, theirs in zip(self.target_dims, last.dims)
            ]
            if "uses_base_shape" not in self.__dict__:
                self.uses_base_shape = self._table.uses_base_shape
            if type(self).forward is not Nerve.forward:  # its own forward, which runs the sub-lines itself
                takes = "base_shape" in _signature(type(self), "forward").parameters
                if self._table.uses_base_shape and not takes:
                    raise DefinitionError(
                        f"{type(self).__name__}'s sub-lines need the base shape, but its forward() does not take it",
                        allowed="forward(self, x, base_shape=None), passing base_shape on to super().forward",
                    )
                self.uses_base_shape = self.uses_base_shape or takes
        elif type(self).forward is Nerve.forward and type(self)._steps is Nerve._steps:
            raise DefinitionError(
                f"{type(self).__name__} neither defines forward() nor adds lines with self.add()",
            )
        elif type(self).forward is Nerve.forward:  # a built-in nerve's _steps
            if "uses_base_shape" not in self.__dict__:
                self.uses_base_shape = "base_shape" in _signature(type(self), "_steps").parameters
        else:
            signature = _signature(type(self), "forward")
            if "uses_base_shape" not in self.__dict__:
                self.uses_base_shape = "base_shape" in signature.parameters
            count = len(self.input_links)
            try:  # the network passes one argument per selected line
                signature.bind(*range(count), **({"base_shape": None} if self.uses_base_shape else {}))
            except TypeError as error:
                raise DefinitionError(
                    f"{type(self).__name__}.forward{signature} cannot take the {count} selected input(s): {error}",
                    allowed="a selector choosing as many lines as forward() takes inputs",
                ) from None

    def _steps(self, ops: Ops, *inputs: Any, **keywords: Any) -> Any:  # each nerve takes its own inputs
        """What a built-in nerve computes, written once for both ways of running it.

        ``ops.module(name, *args, base_shape=...)`` calls the child module ``name`` (as a module,
        so its hooks fire); ``ops.function(fn, *args)`` calls a function. ``forward`` runs the steps
        now (``interpreter.EagerOps``); a network's flat forward writes them into its graph
        (``forward_graph.Scope``), so both compute the same thing by construction. Control flow
        may depend on the nerve's attributes and children, not on tensor values nor on
        ``self.training`` (the modules it calls follow the mode themselves).
        """
        raise NotImplementedError

    # (*inputs, **keywords): a nerve of your own overrides forward with its own parameters (x, g,
    # base_shape=None), which a type checker accepts only against a signature this loose.
    def forward(self, *inputs: Any, **keywords: Any) -> Any:
        base_shape: tuple[int, ...] | None = keywords.pop("base_shape", None)
        if keywords:
            raise TypeError(
                f"{type(self).__name__}.forward() got an unexpected keyword argument {next(iter(keywords))!r}"
            )
        if self._table is not None:
            if self._forward_pre_hooks or self._forward_hooks:  # called as one module of a flat forward
                flat = self._own_flat(inputs)
                if flat is not None:
                    try:
                        return flat.graph_module.forward(*inputs, base_shape)
                    except Exception as error:  # names the sub-line that raised, as run_lines does
                        located = in_lines(error, flat.where(error))
                        if located is error:
                            raise
                        raise located from error
            return run_lines(self, self._table, inputs, base_shape)
        if self.uses_base_shape:
            return self._steps(EagerOps(self), *inputs, base_shape=base_shape)
        return self._steps(EagerOps(self), *inputs)

    def _own_flat(self, inputs: tuple[Any, ...]) -> Any:
        """The flat forward of this nerve's sub-lines (``forward_graph.flatten_nerve``), where one can run:
        a hook on the nerve makes the network's flat forward call it as one module (so that the hook
        fires), and its lines then run flat too rather than line by line (FSDP2 hooks every block)."""
        if torch.compiler.is_compiling() or torch.jit.is_tracing() or any(isinstance(x, fx.Proxy) for x in inputs):
            return None  # tracers record the modules called line by line
        from .forward_graph import current_flat, flatten_nerve  # forward_graph inlines nerves: it imports this

        flat = self.__dict__.get("_flat")
        if flat is not None and flat.ready(self):
            return flat
        return current_flat(self, flatten_nerve)


# Nerve.forward as neurlink defines it: what the flat forward writes inline (a nerve whose class's
# forward is another function, Nerve.forward patched included, is called as a module instead).
LINES_FORWARD = Nerve.forward


@functools.cache
def _arguments(cls: type) -> frozenset[str]:
    """The names of a nerve class's constructor arguments (what a line writes)."""
    parameters = _signature(cls, "__init__").parameters.values()
    return frozenset(p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


@functools.cache
def _signature(cls: type, method: str) -> inspect.Signature:
    """The signature of a method as called on an instance (without ``self``), once per class."""
    signature = inspect.signature(getattr(cls, method))
    return signature.replace(parameters=list(signature.parameters.values())[1:])


class Input(Nerve):
    """An input of the network: ``((3, 1), nv.Input())``; tag it with ``nv.Input['x']()``.

    The base shape (what ratios are relative to) is the spatial shape of the first
    Input at call time, or of the one made with ``base_shape=True``. An Input takes tensors of
    the parameters' floating-point dtype, or of the ``dtype`` it declares
    (``nv.Input(dtype=torch.uint8)`` for images a first line normalises, ``torch.bool`` for masks).
    """

    is_input = True

    def __init__(self, base_shape: bool = False, dtype: torch.dtype | None = None) -> None:  # only read by the builder
        super().__init__()
