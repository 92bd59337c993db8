"""Inference fusion: every BatchNorm that follows a conv folded into that conv, in place (``net.fuse()``).

In eval mode a BatchNorm is a fixed affine map per channel, ``(x - mean) / sqrt(var + eps) * weight +
bias``. Where it reads a conv's output and nothing else does, the conv can compute both: its weight
scaled per output channel and a bias of its own (made where it had none). This is what Ultralytics'
``model.fuse()`` and torch's ``fuse_modules`` do to hand-written models; here the pairs are read off the
network's flat forward, so a pair is found wherever it is written: in one nerve (``Conv2d_BN_ReLU``, a
zoo block's steps), on two lines (a ``Conv2d`` line read only by a ``BatchNorm2d`` line), inside
nested nerves. A ``Linear`` read only by a ``BatchNorm1d`` folds too where the Linear's value is a
line of vectors ``(N, C)`` (there the norm's channels are the Linear's features).

>>> import torch
>>> import neurlink.nerves as nv
>>> net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3)), ((8, 2), nv.Conv2d(3)), ((8, 2), nv.BatchNorm2d())])
>>> x = torch.randn(1, 3, 16, 16)
>>> before = net.eval()(x)
>>> net.fuse() is net
True
>>> torch.testing.assert_close(net(x), before, rtol=1e-5, atol=1e-6)
>>> net[1].norm, net[3].norm
(FoldedNorm(into='1.conv'), FoldedNorm(into='2.conv'))
>>> [key for key in net.state_dict() if key.startswith(("1.", "2."))]
['1.conv.weight', '1.conv.bias', '2.conv.weight', '2.conv.bias']

Each folded norm is replaced by a :class:`FoldedNorm`, a nerve whose steps return their input: the flat
forward writes nothing for it (no call per conv), and every other way of running the lines
(``outputs=[...]``, ``torch.compile``, the tools) passes its input on. What is exact is folded, and only that:

- a norm without running statistics (``track_running_stats=False``: eval normalises each batch) is left;
- so is a pair of modules of other classes than torch's convs (and neurlink's own subclasses of them,
  which read ``self.weight`` and ``self.bias``), ``nn.Linear`` and torch's BatchNorms: a quantized or QAT
  conv, a parametrized one (``weight_norm``: its weight is computed), a subclass with a ``forward`` of its own;
- and a pair whose conv output something else reads (a skip connection, a declared output of the
  network), a module called twice or held at two places, and a pair inside a module the flat forward calls
  as one (a plain ``torch.nn`` module written in a line, a nerve with a ``forward`` of its own, such as
  GoogLeNet's auxiliary heads, which compute nothing in eval). A nerve called as one module because of a
  hook on it is fused inside (its output is unchanged).

``fuse()`` refuses, naming the line and changing nothing, a network in training mode (its norms
normalise each batch: fusing is for inference), a norm in training mode in an eval network, and a hook
on the conv or the norm of a pair (the norm's hooks would be dropped with it; the conv's would see the
norm's output).
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch
from torch import fx, nn

from .context import BuildContext, building
from .errors import NeurlinkError
from .forward_graph import GraphWriter, Scope
from .interpreter import Ops
from .nerve import LINES_FORWARD, Nerve
from .program import program_of
from .table import LineTable

if TYPE_CHECKING:
    from .network import Network

__all__ = ["fold_norms", "FoldedNorm"]

# Exact classes: a subclass may compute otherwise (SyncBatchNorm computes as BatchNorm in eval).
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_HOOKS = {
    "_forward_hooks": "a forward hook",
    "_forward_pre_hooks": "a forward pre-hook",
    "_backward_hooks": "a backward hook",
    "_backward_pre_hooks": "a backward pre-hook",
}


class FoldedNorm(Nerve):
    """Where a norm folded into the conv (or Linear) before it was: it passes its input on, and the flat
    forward, which inlines it, writes nothing for it. ``into`` is the path of the module that computes
    the norm now."""

    def __init__(self, into: str) -> None:
        super().__init__()
        self.into = into
        self.uses_base_shape = False

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        return x

    def train(self, mode: bool = True) -> FoldedNorm:
        if mode:  # the norm is gone: training would go on without it, silently
            raise NeurlinkError(
                f"this network was fused for inference (fuse()): the BatchNorm of {self.into} is folded into it,"
                " and training it would go on without the norm",
                allowed="train the network before fuse(), or a copy kept unfused (copy.deepcopy(net) before fuse())",
            )
        return super().train(mode)

    def extra_repr(self) -> str:
        return f"into={self.into!r}"


@dataclass(frozen=True)
class _Pair:
    first: nn.Module  # the conv or Linear
    norm: nn.Module
    first_path: str
    norm_path: str
    where: tuple  # the norm's line path, outermost first: (index, tag, written)


def fold_norms(network: Network) -> Network:
    """Fold every BatchNorm that reads only a conv's output (or a Linear's, on a line of vectors) into
    that conv, in place, for inference; returns ``network``. :meth:`Network.fuse` calls it."""
    if network.training:
        raise NeurlinkError(
            "fuse() folds each BatchNorm's running statistics into the conv before it, for inference, but the"
            " network is in training mode, where its norms normalise each batch with the batch's statistics",
            allowed="net.eval().fuse(); to keep a network to train, fuse a copy: copy.deepcopy(net).eval().fuse()",
        )
    writers = _writers(network)
    calls = Counter(id(writer.modules[str(node.target)]) for writer in writers for node in _calls(writer))
    places = Counter(id(module) for _, module in network.named_modules(remove_duplicate=False))
    pairs = [pair for writer in writers for node in _calls(writer) if (pair := _pair_at(writer, node)) is not None]
    pairs = [pair for pair in pairs if all(calls[id(m)] == 1 and places[id(m)] == 1 for m in (pair.first, pair.norm))]
    for pair in pairs:  # every refusal before anything changes
        _check(pair)
    for pair in pairs:
        # a new conv in the pair's place: whatever holds the old one (an fx graph traced before, a feature
        # extractor) keeps a consistent conv and norm, as torch's fuse_conv_bn_eval returns a copy
        first_parent, _, first_name = pair.first_path.rpartition(".")
        setattr(network.get_submodule(first_parent), first_name, _fold(pair.first, pair.norm))
        parent_path, _, name = pair.norm_path.rpartition(".")
        parent = network.get_submodule(parent_path)
        with building(BuildContext((), ())):  # a nerve is made in a build context; this one reads nothing of it
            folded = type.__call__(FoldedNorm, pair.first_path).eval()  # in the network's mode
        setattr(parent, name, folded)  # a neurlink module: the flat forward is written again on the next call
    return network


class _PairWriter(GraphWriter):
    """The flat forward's writer, also noting which values are lines of vectors ``(N, C)``."""

    def __init__(self, where: tuple = ()) -> None:
        super().__init__()
        self.where = list(where)  # a hooked nerve's graph: its nodes are named after the nerve's line
        self.vectors: set[fx.Node] = set()

    def lines(self, table: LineTable, owner: nn.Module, prefix: str, inputs: list, base) -> list:
        values = super().lines(table, owner, prefix, inputs, base)
        layouts = program_of(table).layouts
        self.vectors.update(v for v, layout in zip(values, layouts) if layout == "vector" and isinstance(v, fx.Node))
        return values


def _writers(network: Network) -> list[_PairWriter]:
    """The network's flat forward as written (paths from the network), and the graph of every nerve in it
    that the flat forward calls as one module because of a hook (its own lines or steps), recursively."""
    root = _PairWriter()
    table = network._table
    values = root.lines(table, network, "", *root.inputs(table))
    declared = network.__dict__.get("_outputs")
    root.graph.output(values[-1] if declared is None else [values[index] for index in declared])
    writers, pending = [], [root]
    while pending:
        writer = pending.pop()
        writers.append(writer)
        for node in _calls(writer):
            nerve = writer.modules[str(node.target)]
            # a nerve whose call runs Nerve.forward, whatever wraps the call: its lines or steps are its output
            if isinstance(nerve, Nerve) and type(nerve).forward is LINES_FORWARD and "forward" not in vars(nerve):
                pending.append(_nerve_writer(nerve, writer.paths[str(node.target)], node.meta["neurlink_where"]))
    return writers


def _nerve_writer(nerve: Nerve, path: str, where: tuple) -> _PairWriter:
    writer = _PairWriter(where)
    graph = writer.graph
    table = nerve._table
    if table is not None:
        inputs = [graph.placeholder(f"input{k}") for k in range(len(table.input_entries))]
        graph.output(writer.lines(table, nerve, path + ".", inputs, graph.placeholder("base_shape"))[-1])
    else:
        inputs = [graph.placeholder(f"input{k}") for k in range(len(nerve.input_links))]
        keywords = {"base_shape": graph.placeholder("base_shape")} if nerve.uses_base_shape else {}
        graph.output(nerve._steps(Scope(writer, nerve, path), *inputs, **keywords))
    return writer


def _calls(writer: GraphWriter) -> list[fx.Node]:
    return [node for node in writer.graph.nodes if node.op == "call_module"]


def _pair_at(writer: _PairWriter, node: fx.Node) -> _Pair | None:
    """The pair whose norm ``node`` calls, if it is one that folds exactly."""
    norm = writer.modules[str(node.target)]
    if type(norm) not in _NORMS or "forward" in vars(norm) or len(node.args) != 1 or node.kwargs:
        return None
    if not norm.track_running_stats or norm.running_mean is None or norm.running_var is None:
        return None  # eval normalises with the batch's statistics: nothing fixed to fold
    source = node.args[0]
    if not isinstance(source, fx.Node) or source.op != "call_module" or len(source.users) != 1:
        return None  # not a module's output, or one that something else reads too
    first = writer.modules[str(source.target)]
    if "forward" in vars(first):
        return None
    if _kind(first) in ("conv", "transposed"):
        channels = first.out_channels
    elif _kind(first) == "linear" and source in writer.vectors:  # (N, C): the norm's channels are its features
        channels = first.out_features
    else:
        return None
    if channels != norm.num_features:
        return None
    paths = writer.paths
    return _Pair(first, norm, paths[str(source.target)], paths[str(node.target)], node.meta["neurlink_where"])


def _kind(module: nn.Module) -> str | None:
    """What a module computes with its ``weight`` and ``bias``: torch's own class, or a subclass neurlink
    made of it (``neurlink.nn``'s derive their padding per call and read ``self.weight`` and ``self.bias``)."""
    cls = type(module)
    own = cls.__module__.startswith("neurlink.")
    if cls in _CONVS or (own and isinstance(module, _CONVS) and not isinstance(module, _TRANSPOSED)):
        return "conv"
    if cls in _TRANSPOSED or (own and isinstance(module, _TRANSPOSED)):
        return "transposed"
    if cls is nn.Linear:
        return "linear"
    return None


def _check(pair: _Pair) -> None:
    """Raise, naming the norm's line, where folding this pair would change what the network does."""
    first, norm = type(pair.first).__name__, type(pair.norm).__name__
    problem, allowed = (
        None,
        "remove the hook (handle.remove()) before fuse(), and register it again after where it still applies",
    )
    if pair.norm.training:
        problem = "the norm is in training mode, where it normalises each batch with the batch's own statistics"
        allowed = (
            "net.eval().fuse() (eval() sets the mode of every module): fuse() folds running statistics, for inference"
        )
    else:
        for module, role in (
            (pair.norm, "the norm, which fuse() removes"),
            (pair.first, f"the {first}, whose output fuse() makes the norm's"),
        ):
            hooks = [text for name, text in _HOOKS.items() if getattr(module, name)]
            if hooks:
                problem = f"{hooks[0]} is registered on {role}"
                break
    if problem is not None:
        error = NeurlinkError(
            f"cannot fold {norm} {pair.norm_path!r} into {first} {pair.first_path!r}: {problem}", allowed=allowed
        )
        for index, tag, written in reversed(pair.where):
            error.locate(index, tag, written)
        raise error


def _fold(first: nn.Module, norm: nn.Module) -> nn.Module:
    """A copy of ``first`` computing ``norm(first(x))``: its weight scaled per output channel, its bias made
    or shifted. Computed in float32 at least, each tensor kept in its dtype; new parameters (``first``
    keeps its own), each as trainable as the weight was (a bias it had keeps its own flag)."""
    first = copy.deepcopy(first)  # its settings (and dicts of hooks and tensors) its own; the tensors replaced below
    weight, bias = cast(torch.Tensor, first.weight), cast("torch.Tensor | None", first.bias)
    mean, var = cast(torch.Tensor, norm.running_mean), cast(torch.Tensor, norm.running_var)
    gamma, beta = cast("torch.Tensor | None", norm.weight), cast("torch.Tensor | None", norm.bias)
    with torch.no_grad():
        dtype = torch.promote_types(weight.dtype, torch.float32)
        scale = (var.to(dtype) + cast(float, norm.eps)).rsqrt()
        if gamma is not None:
            scale = gamma.to(dtype) * scale
        shift = -mean.to(dtype) if bias is None else bias.to(dtype) - mean.to(dtype)
        shift = shift * scale
        if beta is not None:
            shift = shift + beta.to(dtype)
        spatial = [1] * (weight.dim() - 2)
        if _kind(first) == "transposed":  # (in, out / groups, *kernel): the output channels are groups x dim 1
            groups = cast(int, first.groups)
            scaled = weight.to(dtype).unflatten(0, (groups, -1)) * scale.view(groups, 1, -1, *spatial)
            scaled = scaled.flatten(0, 1)
        else:  # (out, in / groups, *kernel) or a Linear's (out, in)
            scaled = weight.to(dtype) * scale.view(-1, 1, *spatial)
    first.weight = nn.Parameter(scaled.to(weight.dtype), requires_grad=weight.requires_grad)
    trainable = weight.requires_grad if bias is None else bias.requires_grad
    first.bias = nn.Parameter(shift.to(weight.dtype if bias is None else bias.dtype), requires_grad=trainable)
    return first
