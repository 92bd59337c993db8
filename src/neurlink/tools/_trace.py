"""Running a network line by line to measure each line: output shapes, MACs, bytes.

The line tables say exactly what the generated forward does: each line's module is called
with the outputs of the lines it selects (and ``base_shape=`` when it asks for it). Running
the tables the same way here, instead of through ``net(x)``, measures every line however
the network's own forward is generated (it may be traced flat, past the line modules).
Multiply-accumulates are what ``torch.utils.flop_counter.FlopCounterMode`` counts around
each call, halved (one MAC is two FLOPs); no per-layer formula is written here.

>>> import torch
>>> import neurlink.nerves as nv
>>> from neurlink.tools._lines import walk
>>> net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3, bias=False))])
>>> measured = run_lines(net, walk(net), make_inputs(net, (1, 3, 8, 8)))
>>> measured["1"].shapes, measured["1"].macs  # 8 * 4 * 4 outputs, 3 * 3 * 3 MACs each
(((1, 8, 4, 4),), 3456)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from ..errors import InputError, NeurlinkError
from ..interpreter import call_child
from ..network import Network
from ..program import Step, program_of
from ._lines import LineInfo, input_rank, table_of


def _cpu_attention_flops(query, key, value, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """The two matrix products of attention (``q k^T`` and its weights times ``v``), as torch counts its
    fused GPU kernels: the CPU kernel ``F.scaled_dot_product_attention`` calls has no formula in torch."""
    return sdpa_flop_count(query, key, value)  # (their shapes: torch hands a formula the shapes)


_ATTENTION_ON_CPU = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}

# One size (N, C, *spatial), or a list of them, one per Input line.
InputSize = Sequence[int] | Sequence[Sequence[int]]

__all__ = ["Measured", "input_sizes", "make_inputs", "run_lines"]


@dataclass(frozen=True)
class Measured:
    """What one line produced in a measured forward."""

    shapes: tuple[tuple[int, ...], ...]  # one per output tensor
    macs: int
    nbytes: int


def input_sizes(input_size) -> list[tuple[int, ...]]:
    """One size per network input: ``(1, 3, 224, 224)`` is one input, a list of sizes is several.

    >>> input_sizes((1, 3, 8, 8)), input_sizes([(1, 3, 8, 8), [1, 1, 4, 4]])
    ([(1, 3, 8, 8)], [(1, 3, 8, 8), (1, 1, 4, 4)])
    """
    if isinstance(input_size, (torch.Size, tuple, list)) and input_size:
        items: list[Any] = list(input_size)
        if all(_is_count(n) for n in items):
            return [tuple(int(n) for n in items)]
        if all(isinstance(s, (torch.Size, tuple, list)) and s and all(_is_count(n) for n in s) for s in items):
            return [tuple(int(n) for n in s) for s in items]
    raise NeurlinkError(
        f"input_size={input_size!r}: expected a size such as (1, 3, 224, 224), or a list of sizes (one per Input line)"
    )


def _is_count(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0


def make_inputs(network: nn.Module, input_size=None, *, dtype=None, device=None, inputs=None) -> list[torch.Tensor]:
    """The tensors to measure with: ``inputs`` as given, or random ones of ``input_size``.

    ``dtype`` and ``device`` default to those of the network's parameters (float32, CPU if it has none).
    """
    if isinstance(inputs, dict):  # keyed by the Input lines' tags, as the network takes them
        entries = table_of(network).input_entries
        if sorted(map(str, inputs)) != sorted(str(e.tag) for e in entries):
            raise NeurlinkError(
                f"inputs= as a dict is keyed by the Input lines' tags {[e.tag for e in entries]!r},"
                f" got {list(inputs)!r}"
            )
        inputs = [inputs[entry.tag] for entry in entries]
    if inputs is not None:
        tensors = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
        if not all(isinstance(x, torch.Tensor) for x in tensors):
            raise NeurlinkError("inputs= takes a tensor or a list of tensors (one per Input line)")
        return tensors
    sizes = input_sizes(input_size)
    tensor: torch.Tensor | None = next(iter(network.parameters()), None)
    if tensor is None:
        tensor = next(iter(network.buffers()), None)
    if device is None:
        device = tensor.device if tensor is not None else torch.device("cpu")
    if dtype is None:
        dtype = tensor.dtype if tensor is not None and tensor.is_floating_point() else torch.get_default_dtype()
    if tensor is not None and torch.device(device) != tensor.device:
        raise NeurlinkError(f"the network is on {tensor.device}, not on {device}: move it there first (net.to(...))")
    table = table_of(network)
    tensors = []
    for k, size in enumerate(sizes):
        declared = table.input_entries[k].dtype if k < len(table.input_entries) else None
        kind = declared or dtype  # an Input that declares its dtype (uint8 images, bool masks) gets it
        try:
            if kind.is_floating_point or kind.is_complex:
                tensors.append(torch.randn(size, dtype=kind, device=device))
            else:
                tensors.append(torch.zeros(size, dtype=kind, device=device))
        except (RuntimeError, MemoryError) as error:  # e.g. an input too large to allocate
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise NeurlinkError(f"cannot make an input of size {'x'.join(map(str, size))}: {reason}") from None
    return tensors


def run_lines(network: nn.Module, lines: list[LineInfo], inputs: Sequence[torch.Tensor]) -> dict[str, Measured]:
    """Run ``network`` on ``inputs`` one line at a time; what each of ``lines`` produced, by path.

    The network runs in eval mode without gradients (batch norms neither use nor update
    batch statistics) and is put back in the mode it was in.
    """
    table = table_of(network)
    if isinstance(network, Network):  # a network checks its inputs itself, with the messages net(x) gives
        network._check_placed(inputs[0] if len(inputs) == 1 else list(inputs))
    else:
        _check_inputs(network, table, inputs)
    expanded = {line.path for line in lines if line.expanded}
    base = inputs[table.base_entry.input_position]
    modes = [(module, module.training) for module in network.modules()]
    results: dict[str, Measured] = {}
    network.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_ATTENTION_ON_CPU) as counter:
            run = _Run(counter, expanded, results, base.shape[program_of(table).base_dims])
            try:
                run.table(network, table, "", list(inputs))
            except NeurlinkError as error:  # a line of a file's network: at its place in the file, as net(x) says
                placed = network._placed(error) if isinstance(network, Network) else error
                if placed is error:
                    raise
                raise placed from error.__cause__
    finally:
        for module, training in modes:
            module.training = training
    return results


class _Run:
    def __init__(self, counter: FlopCounterMode, expanded: set[str], results: dict, base_shape) -> None:
        self.counter, self.expanded, self.results, self.base_shape = counter, expanded, results, base_shape

    def table(self, owner: nn.Module, table, prefix: str, args: list):
        """Run one line table on its inputs (the network's, or a block's) as the network runs it
        (``program.Program.run``), measuring each line; returns its last output."""
        program = program_of(table)
        if not prefix:
            for line, x in zip(program.inputs, args):
                self.results[str(line)] = _measure(x, 0)

        def call(step: Step, module: nn.Module, xs: list) -> Any:
            path = f"{prefix}{step.line}"
            before = self.counter.get_total_flops()
            if path in self.expanded:  # a block: its lines
                y = self.table(module, module.__dict__["_table"], f"{path}.", xs)
            else:
                y = self.call(step, module, xs)
            self.results[path] = _measure(y, (self.counter.get_total_flops() - before) // 2)
            return y

        return program.result(program.run(owner, args, call))

    def call(self, step: Step, module: nn.Module, xs: list):
        try:
            return call_child(module, xs, self.base_shape)  # as the forward calls it: the module it holds now
        except NeurlinkError:
            raise
        except Exception as error:
            shapes = ", ".join(str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__ for x in xs)
            raise NeurlinkError(f"failed on input(s) {shapes}: {type(error).__name__}: {error}") from error


def _measure(value, macs: int) -> Measured:
    tensors = [value] if isinstance(value, torch.Tensor) else list(value) if isinstance(value, (tuple, list)) else []
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    shapes = tuple(tuple(t.shape) for t in tensors)
    return Measured(shapes, int(macs), sum(t.numel() * t.element_size() for t in tensors))


def _check_inputs(network: nn.Module, table, inputs: Sequence[torch.Tensor]) -> None:
    entries = table.input_entries
    if len(inputs) != len(entries):
        lines = ", ".join(f"line {e.index} {e.written}" for e in entries)
        raise InputError(f"got {len(inputs)} input(s), but the network has {len(entries)}: {lines}")
    for entry, x in zip(entries, inputs):
        channels, rank = entry.dims[0].channels, input_rank(network, entry)
        if x.dim() < 2 or x.shape[1] != channels or (rank is not None and x.dim() != rank + 2):
            spatial = "..." if rank is None else ", ".join(["*"] * rank)
            raise InputError(
                f"line {entry.index} {entry.written}: expected an input of shape (N, {channels}, {spatial}),"
                f" got {tuple(x.shape)}"
            )
