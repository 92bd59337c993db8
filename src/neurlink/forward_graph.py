"""A network's flat forward: its lines written as one straight-line ``torch.fx`` graph.

The selector graph is known when a definition is built, so the forward needs no list of
values and no selector lookup per call: each line becomes nodes fed by the nodes of the lines
it selects, and fx's code generator frees every intermediate right after its last use. Nerves
are *inlined* down to the calls of torch's own modules (conv, norm, act) and functions (add,
cat), so the call overhead and the peak memory are those of a hand-written model.

The graph is generated from the module tree as it is, and :class:`FlatForward` remembers that
tree: the network runs the graph only while the tree is the same (``tree_watch.py`` says when
to look), and generates it again otherwise. Every torch module is called as a module, so its
hooks, parametrizations and wrappers apply. A nerve is inlined only where that provably equals
calling it: its ``forward`` is ``Nerve.forward``, which runs the same sub-lines or the same
``_steps`` that are written here. Any other module, a nerve with its own ``forward`` included, is
one call.
"""

from __future__ import annotations

import copy
import dataclasses
import linecache
import operator
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import Any, cast

import torch
from torch import fx, nn

from . import tree_watch
from .interpreter import child_of
from .nerve import LINES_FORWARD, Nerve
from .program import Step, program_of
from .table import LineTable

__all__ = ["GraphWriter", "Scope", "FlatForward", "flatten_forward", "flatten_nerve", "current_flat", "inlinable"]
__all__ += ["residual_add"]

_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
_jit_tracing = torch._C._is_tracing


def inlinable(module: nn.Module) -> bool:
    """Whether writing ``module``'s lines or steps into the flat forward equals calling it: a nerve
    whose ``forward`` is ``Nerve.forward`` and on which no hook asks to be called (a hooked nerve is
    one call of the module, so that its hooks fire, and the rest of the network stays flat)."""
    cls = type(module)
    return (
        isinstance(module, Nerve)
        and cls.forward is LINES_FORWARD  # not a forward of its own, nor Nerve.forward patched on the class
        and cls.__call__ is _MODULE_CALL  # nor a call patched on its class or on nn.Module
        and cls._call_impl is _MODULE_CALL_IMPL
        and not _CALL_ATTRIBUTES.intersection(module.__dict__)  # nor on the instance
        and module.__dict__.get("_compiled_call_impl") is None  # nn.Module.compile() on the nerve
        and not _hooked(module)
    )


# How torch calls a module, as it was when neurlink was imported: a nerve whose call is changed
# (on its class, on nn.Module, on the instance) is called, not inlined.
_MODULE_CALL = nn.Module.__call__
_MODULE_CALL_IMPL = nn.Module._call_impl
_CALL_ATTRIBUTES = frozenset({"forward", "_call_impl", "_wrapped_call_impl"})


def _hooked(module: nn.Module) -> bool:
    return bool(
        module._forward_hooks or module._forward_pre_hooks or module._backward_hooks or module._backward_pre_hooks
    )


class GraphWriter:
    """Writes the lines of a network, and of every nerve it inlines, into one fx graph."""

    def __init__(self) -> None:
        self.graph = fx.Graph()
        self.modules: dict[str, nn.Module] = {}  # flat attribute name -> module called
        self.paths: dict[str, str] = {}  # flat attribute name -> the module's path below the root
        self.inlined: list[Nerve] = []  # nerves whose own call the graph skips
        self.inlined_paths: list[str] = []
        self.called: list[Nerve] = []  # nerves called as one module (a hook on them, a forward of their own)
        self.where: list[tuple] = []  # the line being written, as (index, tag, written), outermost first

    def call(self, module: nn.Module, path: str, args: tuple, base_shape) -> fx.Node:
        """Inline ``module`` if it can be; otherwise one call of it."""
        if not inlinable(module):
            kwargs = {"base_shape": base_shape} if getattr(module, "uses_base_shape", False) else {}
            target = "m_" + path.replace(".", "_")  # one attribute lookup per call at run time
            self.modules[target] = module
            self.paths[target] = path
            if isinstance(module, Nerve):
                self.called.append(module)
            node = self.graph.create_node("call_module", target, args, kwargs, name="l" + target[1:])
            node.meta["neurlink_where"] = tuple(self.where)
            return node
        nerve = cast(Nerve, module)  # inlinable: a nerve
        self.inlined.append(nerve)
        self.inlined_paths.append(path)
        if nerve._table is not None:
            return self.lines(nerve._table, nerve, path + ".", list(args), base_shape)[-1]
        kwargs = {"base_shape": base_shape} if nerve.uses_base_shape else {}
        return nerve._steps(Scope(self, nerve, path), *args, **kwargs)

    def function(self, function, args: tuple, kwargs: dict | None = None) -> fx.Node:
        node = self.graph.call_function(function, args, kwargs)
        node.meta["neurlink_where"] = tuple(self.where)
        if getattr(function, "__module__", "").startswith("neurlink."):
            # neurlink's size helpers are torch.fx.wrap'ed: fx.symbolic_trace of the network records
            # them as one call (the generated code re-registers them, as fx's own tracer does)
            node.meta["is_wrapped"] = True
        return node

    def inputs(self, table: LineTable) -> tuple[list[fx.Node], fx.Node | None]:
        """Placeholders for a network's inputs (a tensor, or a list with one tensor per Input
        line), and the base shape node if a line needs it."""
        entries = table.input_entries
        given = self.graph.placeholder("inputs")
        if len(entries) == 1:
            nodes = [given]
        else:
            nodes = [self.function(operator.getitem, (given, e.input_position)) for e in entries]
        base = None
        if table.uses_base_shape:
            shape = self.function(getattr, (nodes[entries.index(table.base_entry)], "shape"))
            where = program_of(table).base_dims  # a map's size, or a sequence's length
            base = self.graph.create_node(
                "call_function", operator.getitem, (shape, slice(where.start, where.stop)), name="base_shape"
            )
        return nodes, base

    def lines(self, table: LineTable, owner: nn.Module, prefix: str, inputs: list, base) -> list:
        """Write the lines of ``table`` (owned by ``owner``), run as every tool runs them
        (``program.Program.run``) with fx nodes for values; returns each line's value node."""

        def call(step: Step, module: nn.Module, args: list) -> Any:
            self.where.append(step.where)
            try:
                return self.call(module, prefix + step.name, tuple(args), base)
            finally:
                self.where.pop()

        program = program_of(table, tuple(range(len(table.entries))))  # every value: an outer line may read any
        return program.run(owner, inputs, call, pick=self._item)

    def _item(self, produced: Any, k: int) -> fx.Node:
        """Output ``k`` of a multi-output line's value: the node itself where several outputs were
        written here (an inlined Bundle returns a tuple of nodes), else an item of the one node."""
        if isinstance(produced, tuple):
            return produced[k]
        return self.function(operator.getitem, (produced, k))


class Scope:
    """The operations of a nerve's ``_steps``, written into the flat forward under the nerve's path."""

    __slots__ = ("writer", "owner", "path")

    def __init__(self, writer: GraphWriter, owner: nn.Module, path: str) -> None:
        self.writer, self.owner, self.path = writer, owner, path

    def module(self, name: str, *args: Any, base_shape: Any = None) -> fx.Node:
        return self.writer.call(child_of(self.owner, name), f"{self.path}.{name}", args, base_shape)

    def function(self, function, *args, **kwargs) -> fx.Node:
        return self.writer.function(function, args, kwargs)


# Torch modules whose backward does not read their own output, so a residual sum may overwrite
# it: exact types, since a subclass may save its output (or a hook keep it).
_OUTPUT_NOT_SAVED = frozenset(
    {nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm}
    | {nn.GroupNorm, nn.LayerNorm, nn.Linear}
)


# What every nn.Module keeps in its __dict__ for torch itself (parameters, hooks, mode): not part
# of what a nerve's steps read.
# and a hooked nerve's own flat forward, and what nn.DataParallel's replicate sets on every replica
_BOOKKEEPING = frozenset(vars(nn.Module())) | {"_flat", "_former_parameters", "_is_replica"}


def _state(nerve: nn.Module) -> dict:
    """A nerve's own attributes (what its ``_steps`` may read), by identity."""
    return {key: value for key, value in vars(nerve).items() if key not in _BOOKKEEPING}


def _same_state(nerve: nn.Module, state: dict) -> bool:
    now = _state(nerve)
    return now.keys() == state.keys() and all(now[key] is value for key, value in state.items())


def _same_nerve(nerve: nn.Module, cls: type, state: dict) -> bool:
    """Whether ``nerve`` still computes what the graph inlined: of class ``cls``, still inlinable, with
    the attributes ``state`` (its children are compared by the caller: by identity, or by path)."""
    return type(nerve) is cls and inlinable(nerve) and _same_state(nerve, state)


# What the graph depends on besides the watched modules' attributes: a nerve's children and own tensors
# (its hook dicts are tree_watch.HookDicts, which bump the epoch), a residual producer's hooks.
_PRODUCER_DICTS = ("_forward_hooks", "_backward_hooks", "_backward_pre_hooks")


def _classes_below_module(cls: type) -> list[type]:
    """The classes whose attributes define what an instance of ``cls`` computes: torch's and neurlink's
    bases, ``nn.Module`` included (how a module is called, ``__call__``, may be patched there)."""
    return [klass for klass in cls.__mro__ if klass is not object and issubclass(klass, nn.Module)]


class FlatForward:
    """A network's flat forward and the tree it was written from.

    ``graph_module(inputs)`` equals calling the network's current modules line by line as long as
    :meth:`matches` holds for the network. :meth:`ready` is the check made on every call, and it
    fails closed: it compares, by identity, everything the graph was written from (the classes of the
    inlined nerves and of the residual producers, with their class attributes, and each one's
    attributes, children, tensors and hooks) with what was there when it was last found current. Any
    change, by any route (torch's base-class methods, ``__dict__`` writes, class attributes), fails
    it, and the full :meth:`matches` then decides between trusting the graph again (``train()``
    changes a flag the graph does not read) and writing it again.
    """

    def __init__(self, graph_module: fx.GraphModule, root: nn.Module, writer: Written) -> None:
        inlined = writer.inlined
        producers = [cast(nn.Module, graph_module._modules[name]) for name in writer.producers]
        self._written = writer
        self.graph_module = graph_module
        self.root_children = dict(root._modules)
        # each inlined nerve with its class, children and attributes when the graph was written
        self.inlined = [(nerve, type(nerve), dict(nerve._modules), _state(nerve)) for nerve in inlined]
        # the modules whose output a residual sum overwrites, with their class and its forward
        self.producers = [(module, type(module), type(module).forward) for module in producers]
        watched: list[nn.Module] = [*inlined, *producers]
        self._objects = [root, *watched]
        dicts = [root._modules, *map(vars, watched), *(nerve._modules for nerve in inlined)]
        # a nerve's own tensors, where it has any (one added later is not read by the graph)
        dicts += [
            getattr(nerve, name) for nerve in inlined for name in ("_parameters", "_buffers") if getattr(nerve, name)
        ]
        dicts += [getattr(module, name) for module in producers for name in _PRODUCER_DICTS]
        self._views = [d.values() for d in dicts]  # live views, made once
        classes = dict.fromkeys(klass for module in watched for klass in _classes_below_module(type(module)))
        self._class_dicts = [klass.__dict__ for klass in classes]
        self._class_views = [proxy.values() for proxy in self._class_dicts]
        self._classes = [(proxy, dict(proxy)) for proxy in self._class_dicts]
        self._root_modules = root._modules
        self._epoch = tree_watch.epoch()
        self._snapshot = self._now()
        self._code = type(graph_module).forward.__code__
        self._nodes = list(graph_module.graph.nodes)

    def _now(self) -> tuple[list, list, list]:
        """What the graph depends on, as three flat lists built in C from live views."""
        return (
            list(map(type, self._objects)),
            list(chain.from_iterable(self._views)),
            list(chain.from_iterable(self._class_views)),
        )

    def ready(self, root: nn.Module) -> bool:
        """The per-call check: ``root``'s graph, and nothing it was written from changed since it was
        last found current. Never true when something changed, whichever way it was changed."""
        if root._modules is not self._root_modules or self._epoch != tree_watch.epoch() or tree_watch.global_hooks():
            return False  # another network's (an nn.DataParallel replica copies its parent's attributes)
        try:
            return self._now() == self._snapshot  # identity first: equal values are compared only if replaced
        except Exception:  # a replaced value whose == raises (a tensor of several elements): changed
            return False

    def trust(self, epoch: int) -> None:
        """The tree was found to match the graph (:meth:`matches`) at ``epoch``: trust it until the next change."""
        self._epoch = epoch
        self._snapshot = self._now()

    def where(self, error: BaseException) -> list:
        """The lines (outermost first) whose node of the graph raised ``error``."""
        traceback, lineno = error.__traceback__, None
        while traceback is not None:
            if traceback.tb_frame.f_code is self._code:
                lineno = traceback.tb_lineno
            traceback = traceback.tb_next
        if lineno is None:
            return []
        # fx maps the lines of the body, counted from the line after the def (its "prologue");
        # an older torch without that map names no line rather than failing here
        lineno_map = getattr(self.graph_module, "_lineno_map", None) or {}
        index = lineno_map.get(lineno - getattr(self.graph_module, "_prologue_start", 0))
        return list(self._nodes[index].meta.get("neurlink_where", ())) if index is not None else []

    def matches(self, root: nn.Module) -> bool:
        """Whether ``root``'s tree is still the one the graph was written from: the same children,
        nerves of the same classes (with the same class attributes) that can still be inlined, with
        the same attributes, and residual producers that still return a fresh tensor."""
        if root._modules is not self._root_modules or root._modules != self.root_children:
            return False
        for nerve, cls, children, state in self.inlined:
            if nerve._modules != children or not _same_nerve(nerve, cls, state):
                return False
        if any(inlinable(nerve) for nerve in self._written.called):  # a hook removed: inline it again
            return False
        return self._classes_unchanged() and all(self._producer_unchanged(*producer) for producer in self.producers)

    def _classes_unchanged(self) -> bool:
        return all(
            proxy.keys() == attributes.keys() and all(proxy[key] is value for key, value in attributes.items())
            for proxy, attributes in self._classes
        )

    def rebound(self, root: nn.Module) -> FlatForward | None:
        """This graph for another root holding the same tree in new modules (an ``nn.DataParallel``
        replica copies the network's attributes, its flat forward included, and makes a new module for
        each one): the generated code is kept and called on the root's own modules at the same paths,
        where the root's tree is the one the graph was written from (every inlined nerve of the same
        class, children and attributes, every residual producer unchanged); else None, and the graph
        is written again. Nothing is generated or compiled: replicas cost a walk of the paths."""
        written = self._written
        if root._modules is self._root_modules or root._modules.keys() != self.root_children.keys():
            return None
        try:
            inlined = [root.get_submodule(path) for path in written.inlined_paths]
            modules = {name: root.get_submodule(path) for name, path in written.paths.items()}
        except AttributeError:  # a path the root does not have
            return None
        for nerve, (_, cls, children, state) in zip(inlined, self.inlined):
            if nerve._modules.keys() != children.keys() or not _same_nerve(nerve, cls, state):
                return None
            if nerve._parameters or nerve._buffers:  # a nerve's own tensors: written for the network's ones
                return None
        for name, takes_base in written.takes_base.items():
            if bool(getattr(modules[name], "uses_base_shape", False)) is not takes_base:
                return None
        for name, (_, cls, forward) in zip(written.producers, self.producers):
            if not self._producer_unchanged(modules[name], cls, forward):
                return None
        if not self._classes_unchanged():
            return None
        graph_module = _with_modules(self.graph_module, modules)
        called = [module for module in modules.values() if isinstance(module, Nerve)]
        return FlatForward(graph_module, root, dataclasses.replace(written, inlined=inlined, called=called))

    @staticmethod
    def _producer_unchanged(module, cls, forward) -> bool:
        return (
            type(module) is cls
            and cls.forward is forward
            and "forward" not in module.__dict__
            and not _producer_hooked(module)
        )


def _producer_hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._backward_hooks or module._backward_pre_hooks)


@fx.wrap
def residual_add(fresh: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``fresh + other``, summed into ``fresh`` (a conv or norm output that nothing else reads) when
    that is the same tensor: ``other`` has its shape and dtype (no broadcast, no type promotion, as
    under autocast), and neither is a ``torch.func`` (vmap, grad) tensor. ``torch.jit.trace`` records
    the plain sum, which holds for every input it may later be given."""
    if (
        fresh.dtype == other.dtype
        and fresh.shape == other.shape
        and not (_functorch_wrapped(fresh) or _functorch_wrapped(other) or _jit_tracing())
    ):
        return fresh.add_(other)
    return fresh + other


def flatten_forward(root: nn.Module) -> FlatForward:
    """Write ``root``'s (a network's) flat forward from its current tree."""
    writer = GraphWriter()
    table: LineTable = root.__dict__["_table"]  # a network's
    values = writer.lines(table, root, "", *writer.inputs(table))
    declared = root.__dict__.get("_outputs")  # build(lines, outputs=[...])
    writer.graph.output(values[-1] if declared is None else [values[index] for index in declared])
    return _finish(writer, root)


def flatten_nerve(nerve: Nerve) -> FlatForward:
    """The flat forward of a nerve's sub-lines, for when the nerve itself is called (a hook on it asks
    for the call): ``graph_module(*inputs, base_shape)`` equals ``Nerve.forward``'s lines."""
    writer = GraphWriter()
    table = cast(LineTable, nerve._table)
    inputs = [writer.graph.placeholder(f"input{k}") for k in range(len(table.input_entries))]
    base = writer.graph.placeholder("base_shape", default_value=None)
    writer.graph.output(writer.lines(table, nerve, "", inputs, base)[-1])
    return _finish(writer, nerve)


def current_flat(owner: nn.Module, write: Callable[[Any], FlatForward]) -> FlatForward | None:
    """``owner``'s flat forward for its current tree: the one it has if the tree still matches it,
    else one written again by ``write(owner)``; None while a hook registered for every module asks
    for calls of the nerves that a flat forward inlines."""
    if tree_watch.global_hooks():
        return None
    epoch = tree_watch.epoch()  # before looking: a change made while matches() runs is seen next call
    flat = owner.__dict__.get("_flat")
    if flat is not None and flat.matches(owner):
        flat.trust(epoch)
        return flat
    # a replica's copy of its network's flat forward: the same code on the replica's modules, if they match
    flat = flat.rebound(owner) if flat is not None else None
    if flat is None:
        flat = write(owner)
    object.__setattr__(owner, "_flat", flat)  # not a child: kept out of state_dict and .to()
    return flat


def _finish(writer: GraphWriter, root: nn.Module) -> FlatForward:
    """The written graph as a module, with the residual sums that can be taken in place.

    A residual sum whose left operand is the fresh output of a conv or norm read by nothing else
    (torchvision's ``out += identity``) is taken in place when the shapes and dtypes allow it at
    run time (``residual_add``).
    """
    producers = []
    for node in writer.graph.nodes:
        if node.op == "call_function" and node.target is operator.add:
            fresh = node.args[0]
            if isinstance(fresh, fx.Node) and fresh.op == "call_module" and len(fresh.users) == 1:
                module = writer.modules[str(fresh.target)]
                unchanged = "forward" not in module.__dict__ and not _producer_hooked(module)
                if type(module) in _OUTPUT_NOT_SAVED and unchanged:
                    node.target = residual_add
                    node.meta["is_wrapped"] = True
                    producers.append(str(fresh.target))
    graph_module = fx.GraphModule(writer.modules, writer.graph, class_name=f"{type(root).__name__}FlatForward")
    _forget_source_with(type(graph_module))
    for name, module in writer.modules.items():
        # also a plain instance attribute: self.m_... is then found without nn.Module.__getattr__
        object.__setattr__(graph_module, name, module)
    takes_base = {
        str(node.target): "base_shape" in node.kwargs for node in writer.graph.nodes if node.op == "call_module"
    }
    written = Written(writer.inlined, writer.inlined_paths, writer.paths, producers, takes_base, writer.called)
    return FlatForward(graph_module, root, written)


@dataclass(frozen=True)
class Written:
    """What a flat forward was written from, by path below its root: what :meth:`FlatForward.rebound`
    finds again in another root."""

    inlined: list  # the nerves whose own call the graph skips
    inlined_paths: list[str]
    paths: dict[str, str]  # flat attribute name -> the called module's path
    producers: list[str]  # flat attribute names of the modules whose output a residual sum overwrites
    takes_base: dict[str, bool]  # flat attribute name -> called with base_shape=
    called: list  # the nerves called as one module


def _with_modules(graph_module: fx.GraphModule, modules: dict[str, nn.Module]) -> fx.GraphModule:
    """Another instance of ``graph_module``'s class (its generated forward, its graph) calling ``modules``."""
    other = object.__new__(type(graph_module))
    state = {
        key: copy.copy(value) if isinstance(value, (dict, set)) else value for key, value in vars(graph_module).items()
    }
    state["_modules"] = dict(modules)
    state.update(modules)  # the plain instance attributes the generated code reads
    other.__dict__.update(state)
    return other


def _forget_source_with(cls: type) -> None:
    """fx keeps the source of every forward it generates, for tracebacks (``torch.fx.graph_module._loader``):
    forget it once the class is gone, so that writing a graph again and again keeps nothing."""
    loader = getattr(fx.graph_module, "_loader", None)
    forward = cls.__dict__.get("forward")
    cache = getattr(loader, "eval_cache", None)
    filename = getattr(getattr(forward, "__code__", None), "co_filename", None)
    if isinstance(cache, dict) and isinstance(filename, str) and filename in cache:
        weakref.finalize(cls, _forget, cache, filename)


def _forget(cache: dict, filename: str) -> None:
    cache.pop(filename, None)
    linecache.cache.pop(filename, None)
