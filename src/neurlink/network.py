"""The built network: ``nv.build(lines)`` and how it is called."""

from __future__ import annotations

import contextlib
import gc
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import torch
from torch import fx, nn

from . import definition_hooks, tree_watch
from ._config import keeps_no_locals
from .checkpoint import check_state_dict
from .errors import (
    DefinitionError,
    DimsError,
    InputError,
    LineIndexError,
    LineTagError,
    LineTypeError,
    NeurlinkError,
    SelectorError,
    SelectorIndexError,
    SelectorTypeError,
    UnknownTagError,
)
from .forward_graph import current_flat, flatten_forward, inlinable
from .interpreter import run_lines
from .lines import flatten
from .lines_module import LinesModule
from .program import in_lines, input_form, program_of, spatial_dims
from .shapes import Dims, ShapeSpec, size_at
from .sizes import apply_steps
from .table import Entry, LineTable

# What a network takes: a tensor, one per Input line in a list or tuple, or a dict keyed by their tags.
Inputs = torch.Tensor | Sequence[torch.Tensor] | Mapping[str, torch.Tensor]

__all__ = ["Network", "build"]


class Network(LinesModule):
    """A network built from definition lines. An ordinary ``nn.Module``.

    Call it as ``net(x)`` (one Input line) or ``net([x1, x2])`` (several); add
    ``output_intermediate=True`` for every line's output in order, or
    ``outputs=["tag", 3]`` for the outputs of the named lines.
    """

    _table: LineTable  # a network always has its lines
    _verified: set[Any]  # the input sizes whose every line was checked (set outside nn.Module's attributes)

    def __init__(self, lines: list[Any], outputs: Sequence[int | str] | None = None) -> None:
        super().__init__()
        lines = list(flatten(lines)) if isinstance(lines, list) else lines
        self._table = LineTable()
        self._table.add(self, lines)
        self._outputs = None if outputs is None else self._declared_outputs(outputs)
        if not self._table.input_entries:
            raise DefinitionError(
                "a network needs at least one nv.Input() line", allowed="((channels, shape), nv.Input()) as line 0"
            )
        base = self._table.base_entry  # known only now: a later Input may be built with base_shape=True
        ratios = base.dims[0].shape.ratios
        if ratios is not None and set(ratios) != {1}:
            error = DefinitionError(
                f"this Input gives the base shape, but it declares ratio {base.dims[0].shape!r}",
                allowed="ratio 1 (or an absolute shape) for the base Input; another Input can be the base"
                " with nv.Input(base_shape=True)",
            )
            error.locate(base.index, base.tag, base.written)
            raise error
        inputs = self._table.input_entries
        ranks = program_of(self._table).ranks
        self._spatial_ranks = [ranks[e.index] for e in inputs]
        self._forms = [input_form(e) for e in inputs]
        self._sizes_at = [spatial_dims(form) for form in self._forms]
        self._check_order = sorted(range(len(inputs)), key=lambda k: not inputs[k].base)  # the base Input first
        # the lines as written, which save_pretrained writes as data (checked only then)
        object.__setattr__(self, "_definition", (tuple(lines), None if outputs is None else list(outputs)))
        self._start_checks(as_built=True)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()  # without the flat forward (LinesModule's): written again on the first call
        state.pop("_first_param", None)
        state.pop("_verified", None)
        as_built = state.pop("_as_built", None)
        state["_was_as_built"] = as_built is not None and as_built.matches(self)
        for key in ("_definition", "_made_by"):  # a lambda in a line would make pickle fail where it did not
            if key in state and not keeps_no_locals(state[key]):
                state[key] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        as_built = state.pop("_was_as_built", False)
        super().__setstate__(state)
        self._start_checks(as_built)

    def _start_checks(self, as_built: bool) -> None:
        """Every line's output is checked against its dims on the first call, while the tree is the one
        built (``as_built``) or copied from a network that was as built.

        Which sizes need a check of their own is known here. A line of a built-in nerve reaches its
        declared size at every input size by construction (its stride and padding are derived from
        the declarations, or per call from the sizes: ``nerves/_geometry.py``), and so does a torch
        module that keeps its input's shape (an activation, a norm, dropout): once one size has
        passed, every size does, and later sizes run the flat forward. A line holding any other module
        (a nerve with its own ``forward``, a plain module) may return another shape at another size,
        so each new size is checked, up to ``_CHECKED_SIZES`` of them: nothing grows with the number
        of sizes a network sees."""
        object.__setattr__(self, "_verified", set())
        object.__setattr__(self, "_as_built", tree_watch.TreeSnapshot(self) if as_built else None)
        object.__setattr__(self, "_sizes_can_differ", _sizes_can_differ(self, self._table))

    def _declared_outputs(self, outputs: Sequence[int | str]) -> tuple[int, ...]:
        """``build(lines, outputs=[...])``: the lines whose outputs the network returns, as indices."""
        if isinstance(outputs, (str, int)) or not isinstance(outputs, Sequence) or not outputs:
            error = (
                SelectorError if isinstance(outputs, Sequence) and not isinstance(outputs, str) else SelectorTypeError
            )
            raise error(
                f"outputs={outputs!r} is not a non-empty list of tags or line indices",
                allowed="nv.build(lines, outputs=['tag', 5, -1])",
            )
        try:
            return tuple(self._table.index_of(name) for name in outputs)
        except InputError as error:
            # the same mistake as a selector's: the same Python exception too (IndexError, KeyError, TypeError)
            kind = {LineIndexError: SelectorIndexError, LineTagError: UnknownTagError, LineTypeError: SelectorTypeError}
            raise kind.get(type(error), SelectorError)(
                f"outputs={list(outputs)!r}: {error.reason}", allowed="tags or line indices"
            ) from None

    def dynamic_shapes(self, *, max_size: int = 4096, batch: bool = False) -> tuple[Any, ...]:
        """The ``dynamic_shapes`` argument of ``torch.export.export`` (and ONNX export) for inputs of
        any size: ``torch.export.export(net, (x,), dynamic_shapes=net.dynamic_shapes())``.

        torch's symbolic sizes cannot follow the per-size padding choices of odd sizes, so every
        spatial dim of the base input is declared a multiple of the deepest ratio (the least common
        multiple of the lines' ratios: 32 for a ResNet), from twice it (torch specializes sizes of 1;
        more where unpadded lines need a larger input) up to ``max_size``; the example input of the export
        must be such a size too. The batch size is the example's unless ``batch=True``, which declares it
        dynamic too (from 1; give an example batch of at least 2, as torch specializes a size of 1). Other
        Inputs follow at their ratio. A sequence with learned
        positions is bounded by the longest they are for; a network with a line whose choices depend on
        the size in ways symbolic sizes cannot follow (Swin's windows, a ViT's positions resampled off
        the grid they were built for) is refused, naming the line: export it at the size it runs at.
        """
        largest = None  # the base sizes some line takes at most (learned positions of a sequence)
        for path, module in self.named_modules():
            bound = getattr(module, "max_base_size", None)
            if isinstance(bound, tuple):
                largest = bound if largest is None else tuple(map(min, largest, bound))
            reason = getattr(module, "exports_at_one_size", None)
            if isinstance(reason, str):
                lines = " > ".join(f"line {part}" for part in path.split("."))
                raise InputError(
                    f"{lines} ({type(module).__name__}) {reason}, which torch's symbolic sizes cannot follow:"
                    " an export for any size would run at one size only",
                    allowed="torch.export.export(net, (x,)) at the size it will run at (one export per size)",
                )
        base = self._table.base_entry
        rank = program_of(self._table).ranks[base.index]
        if rank is None:
            raise InputError("the base Input's spatial rank is unknown: write its shape as a tuple, e.g. (1, 1)")
        multiples = self._ratio_multiples(rank)
        bounds = [min(max_size, largest[k]) if largest is not None else max_size for k in range(len(multiples))]
        sizes = [
            torch.export.Dim(
                f"size{k}", min=(low := self._fewest_multiples(k, multiple, bound)), max=max(low, bound // multiple)
            )
            for k, (multiple, bound) in enumerate(zip(multiples, bounds))
        ]
        specs: list[dict[int, Any] | None] = []
        batch_dim = torch.export.Dim("batch", min=1, max=max_size) if batch else None
        for entry, where in zip(self._table.input_entries, self._sizes_at):
            shape = entry.dims[0].shape
            if shape.is_absolute or shape.is_tokens and shape.ratios is None:
                specs.append({0: batch_dim} if batch_dim is not None else None)  # a fixed size
                continue
            spec: dict[int, Any] = {0: batch_dim} if batch_dim is not None else {}
            for k, ratio in enumerate(shape.ratios_for(rank) if rank else ()):
                spec[where.start + k] = multiples[k] * ratio.denominator // ratio.numerator * sizes[k]
            specs.append(spec)
        return (specs[0],) if len(specs) == 1 else (specs,)

    def _ratio_multiples(self, rank: int) -> list[int]:
        """Per spatial dim of the base input, the least common multiple of the lines' ratios (32 for a
        ResNet): a base size that is a multiple of it gives every line a whole size."""
        multiples = [1] * rank
        for table in _tables(self):
            for entry in table.entries:
                for dims in entry.dims:
                    if dims.shape.ratios is not None:  # (not an absolute shape, nor tokens of a fixed length)
                        for k, ratio in enumerate(dims.shape.ratios_for(rank) if rank else ()):
                            multiples[k] = math.lcm(multiples[k], ratio.numerator)
        return multiples

    def _fewest_multiples(self, dim: int, multiple: int, bound: int) -> int:
        """The fewest multiples (from 2: torch specializes sizes of 1) of ``multiple`` a base size needs on
        ``dim`` for every line to keep a size of at least 2 (as the lines at their ratios do: torch's symbolic
        sizes specialize a size of 1), where unpadded convs and pools shrink it (``sizes.py``)."""
        sized = [
            d.shape.sizing[dim]
            for table in _tables(self)
            for entry in table.entries
            for d in entry.dims
            if d.shape.sizing is not None and dim < len(d.shape.sizing)
        ]
        count = 2
        while count * multiple < bound and any(
            apply_steps(size_at(count * multiple, start), steps) < 2 for start, steps in sized
        ):
            count += 1
        return count

    @property
    def lines(self) -> list[Entry]:
        """One entry per line: index, tag, dims, the line as written, what it selects."""
        return list(self._table.entries)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write ``config.json`` (the definition, as data) and ``model.safetensors`` (the state_dict)
        into ``directory``: :func:`neurlink.from_pretrained` builds the network again from them."""
        from .pretrained import save_pretrained

        save_pretrained(self, directory)

    def to_file(self, path: str | os.PathLike[str]) -> None:
        """Write the definition lines into ``path``, YAML (``.yaml``, ``.yml``) or JSON (``.json``), one
        line of the file per line of the definition (``[line] * n`` as ``* n``), for a person to read and
        edit: :func:`neurlink.from_file` builds it again. A zoo model is written as its lines too, with
        the builder call it came from (``made_by``) and its ``num_classes`` as a parameter. The text is
        read back before it is written and must make this network's modules (a module replaced after
        the build is refused, naming it); the weights are not written (``save_pretrained`` keeps them)."""
        definition_hooks.hooks().write(self, path)

    def train(self, mode: bool = True) -> Network:
        if mode:  # refused before any module changes mode (a FoldedNorm refuses it too, reached alone)
            from .fuse import FoldedNorm

            folded = next((m for m in self.modules() if isinstance(m, FoldedNorm)), None)
            if folded is not None:
                folded.train(True)
        return super().train(mode)

    def fuse(self) -> Network:
        """Fold every BatchNorm that follows a conv into that conv, in place, for inference; returns the
        network (``net.eval().fuse()``), which computes what it computed, with one module less per pair.

        A pair is a norm that reads a conv's output and that nothing else reads: in one nerve
        (``Conv2d_BN_ReLU``), on two lines (a ``Conv2d`` line read only by a ``BatchNorm2d`` line), in
        any nerve's steps; transposed convs too, and a ``Linear`` read only by a ``BatchNorm1d`` on a line
        of vectors. Each conv's weight is scaled per output channel and its bias made (where it had none)
        or shifted; the norm's place holds a ``neurlink.fuse.FoldedNorm``, for which the flat forward
        writes nothing. What is not exact is left (a norm without running statistics, a parametrized or
        quantized conv, a conv whose output something else reads: ``neurlink.fuse`` lists them).

        For inference: a network in training mode (or a norm of a pair in it) is refused, as is a hook on
        either module of a pair, with a :class:`~neurlink.errors.NeurlinkError` naming the line, before
        anything changes. After fuse() the state_dict has no keys for the folded norms and a ``bias`` for
        each conv; ``save_pretrained`` refuses the fused network (its definition makes the norms): save
        it before fusing, and fuse after ``from_pretrained``. A fused network is for inference: ``train()``
        is refused (it would train without the norms). The folded convs are new modules: an fx graph
        traced before keeps the old conv and its norm. With ``outputs=[...]`` or
        ``output_intermediate=True``, a conv line whose norm line was folded gives the norm's output.
        """
        from .fuse import fold_norms  # fuse writes graphs of the lines, as the flat forward does

        return fold_norms(self)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        # checked first: a changed definition is reported per line (CheckpointError), not as torch's key dump
        check_state_dict(self, state_dict, strict=strict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # The result is a tensor, or a list of them (outputs=), or a tuple (a multi-output line): Any, as
    # nn.Module's __call__ gives, so that net(x).shape checks.
    def forward(
        self,
        inputs: Inputs,
        # positional too: torch.onnx's legacy exporter passes forward's defaults positionally
        output_intermediate: bool = False,
        outputs: Sequence[int | str] | None = None,
    ) -> Any:
        """The last line's output; with ``output_intermediate=True`` every line's, with
        ``outputs=[tag or index, ...]`` those lines'."""
        if isinstance(output_intermediate, fx.Proxy) or isinstance(outputs, fx.Proxy):
            output_intermediate, outputs = False, None  # fx.symbolic_trace makes every argument a placeholder
        selected = self._outputs  # None: the last line's output
        if output_intermediate or outputs is not None:
            selected = self._selected(output_intermediate, outputs)
        compiling = torch.compiler.is_compiling()
        traced = isinstance(inputs, fx.Proxy) or torch.jit.is_tracing()
        if not traced and not compiling:  # (dynamo would guard on the tree epoch the check reads)
            inputs = self._check_placed(inputs)
        if compiling:
            # dynamo traces the current modules line by line, and guards on what it called
            return run_lines(self, self._table, self._given(inputs), outputs=selected)
        try:
            if not traced and self._first_of_its_size(inputs):
                result = run_lines(self, self._table, self._given(inputs), outputs=selected, verify=True)
                self._passed(inputs)
                return result
            if selected is not self._outputs:
                return run_lines(self, self._table, self._given(inputs), outputs=selected)
            flat = self.__dict__.get("_flat")
            if flat is None or not flat.ready(self):
                flat = current_flat(self, flatten_forward)
                if flat is None:  # a global hook asks for calls the flat forward skips
                    return run_lines(self, self._table, self._given(inputs), outputs=selected)
            try:
                return flat.graph_module.forward(inputs)
            except Exception as error:  # free on the normal path; names the line that raised
                located = in_lines(error, flat.where(error))
                if located is error:
                    raise
                raise located from error
        except NeurlinkError as error:  # (free on the normal path too)
            placed = self._placed(error)
            if placed is error:
                raise
            raise placed from error.__cause__  # (torch's error, for a ForwardError; no "during handling")

    def _placed(self, error: NeurlinkError) -> NeurlinkError:
        """``error``, raised in a line on a call, at that line's place in the file the network was read from
        (a copy of its class that is a ``DefinitionFileError`` too, made by ``definition_hooks``); ``error``
        itself for a network built otherwise, or an error that names no line."""
        places = self.__dict__.get("_file_places")
        if places is None or definition_hooks.HOOKS is None or not error.where:
            return error
        as_built = self.__dict__.get("_as_built")
        if as_built is None or not as_built.matches(self):
            return error  # a module replaced since the build: the file no longer says what that line holds
        placed = definition_hooks.HOOKS.place(error, places)
        return placed if placed is error else placed.with_traceback(error.__traceback__)

    def _check_placed(self, inputs: Inputs) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """:meth:`_check`, whose error about one Input line names that line's place in the file the network
        was read from (as :meth:`_placed` does for a line's error on a call)."""
        try:
            return self._check(inputs)
        except InputError as error:
            line = error.__dict__.get("_input_line")
            if line is None or self.__dict__.get("_file_places") is None:
                raise
            located = InputError(line[3], allowed=error.allowed)
            located.locate(*line[:3])
            placed = self._placed(located)
            if placed is located:
                raise
            raise placed from None

    def _size_key(self, inputs: Any) -> tuple[Any, ...]:
        if isinstance(inputs, torch.Tensor):
            return inputs.shape[self._sizes_at[0]]
        return tuple(x.shape[where] for x, where in zip(inputs, self._sizes_at))

    def _first_of_its_size(self, inputs: Any) -> bool:
        """Whether to check every line's output on this call (``_start_checks`` says which sizes), while
        the network is as built (after a user changed its modules, what they return is theirs to say)."""
        verified = self._verified
        if _EVERY_SIZE in verified or self._size_key(inputs) in verified:
            return False
        as_built = self.__dict__.get("_as_built")
        if as_built is not None and as_built.matches(self):
            return True
        verified.add(_EVERY_SIZE)
        return False

    def _passed(self, inputs: Any) -> None:
        """Every line's output had its declared dims at this input size."""
        if not self.__dict__.get("_sizes_can_differ", True) or len(self._verified) + 1 >= _CHECKED_SIZES:
            self._verified.add(_EVERY_SIZE)
        else:
            self._verified.add(self._size_key(inputs))

    def _selected(self, output_intermediate: bool, outputs: Sequence[int | str] | None) -> tuple[int, ...]:
        if not isinstance(output_intermediate, bool):  # net(x, ["layer4"]): the lines meant as outputs=
            raise LineTypeError(
                f"output_intermediate={output_intermediate!r} is not True or False (the second argument)",
                allowed="net(x, output_intermediate=True), or the lines to return by keyword: net(x, outputs=['tag'])",
            )
        if output_intermediate and outputs is not None:
            raise InputError("give output_intermediate=True or outputs=[...], not both")
        if outputs is None:  # output_intermediate
            return tuple(range(len(self._table.entries)))
        if isinstance(outputs, (str, int)) or not isinstance(outputs, Sequence):
            raise LineTypeError(
                f"outputs={outputs!r} must be a list of tags or line indices", allowed="net(x, outputs=['tag', 5, -1])"
            )
        return tuple(self._table.index_of(name) for name in outputs)

    def _given(self, inputs: Any) -> tuple[Any, ...]:
        """The inputs as a tuple, one per Input line (a dict is keyed by their tags)."""
        entries = self._table.input_entries
        if isinstance(inputs, dict):
            return tuple(inputs[entry.tag] for entry in entries)
        if len(entries) == 1:
            return (inputs,)
        return tuple(inputs)

    def _first_parameter(self) -> nn.Parameter | None:
        """The first floating-point parameter (inputs must match its device and dtype), found again
        only when the tree changed: the module holding it is remembered, the parameter read live
        (``.to()`` may replace it)."""
        found = self.__dict__.get("_first_param")
        if found is not None and found[0] == tree_watch.epoch():
            parameter = found[1]._parameters.get(found[2])
            if parameter is not None and parameter.is_floating_point():
                return parameter
        for module in self.modules():
            for name, parameter in module._parameters.items():
                if parameter is not None and parameter.is_floating_point():
                    object.__setattr__(self, "_first_param", (tree_watch.epoch(), module, name))
                    return parameter
        object.__setattr__(self, "_first_param", None)
        return None

    def _check(self, inputs: Inputs) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Inputs as the generated forward takes them, after checking them against the Input lines."""
        entries = self._table.input_entries
        given: tuple[Any, ...]  # checked one by one below
        if isinstance(inputs, torch.Tensor):
            given = (inputs,)
        elif isinstance(inputs, (list, tuple)):
            given = tuple(inputs)
        elif isinstance(inputs, dict):
            tags = [e.tag for e in entries]
            if None in tags:
                untagged = ", ".join(f"line {e.index}" for e in entries if e.tag is None)
                raise InputError(
                    f"a dict of inputs is keyed by the Input lines' tags, but {untagged} has none:"
                    ' tag it, nv.Input["image"](), or pass a list'
                )
            if set(inputs) != set(tags):
                raise InputError(
                    f"a dict of inputs needs one key per Input line, its tag: expected {tags!r}, got {list(inputs)!r}"
                )
            given = tuple(inputs[tag] for tag in tags)
        elif len(entries) == 1:
            given = (inputs,)  # e.g. a numpy array: reported below, naming the Input line
        else:
            raise InputError(
                f"the network takes a tensor or a list of tensors (one per Input line), got {type(inputs).__name__}"
            )
        if len(given) != len(entries):
            expected = ", ".join(_input_name(e) for e in entries)
            raise InputError(f"got {len(given)} input(s), but the network has {len(entries)}: {expected}")
        base_shape = None
        batch: int | None = None
        param = self._first_parameter()
        for k in self._check_order:
            entry, x, rank, form = entries[k], given[k], self._spatial_ranks[k], self._forms[k]
            dims = entry.dims[0]
            if not isinstance(x, torch.Tensor):
                expected = _expected_shape(dims, rank, form)
                shape = getattr(x, "shape", None)
                got = type(x).__name__ + (f" of shape {tuple(shape)}" if isinstance(shape, tuple) else "")
                raise _input_error(entry, f"expected a torch.Tensor of shape {expected}, got {got}")
            spatial = tuple(x.shape[self._sizes_at[k]])
            problem = _layout_problem(x, dims, rank, form)
            if problem:
                pass  # reported below
            elif batch is not None and x.dim() and x.shape[0] not in (batch, 1):
                problem = (
                    f"batch size {x.shape[0]}, but the base Input's is {batch} (an input has the base Input's batch"
                    " size, or 1 for one tensor every sample shares)"
                )
            elif param is not None and x.device != param.device:
                problem = f"a tensor on {x.device}, but the network's parameters are on {param.device}"
            elif entry.dtype is not None and x.dtype != entry.dtype:
                problem = f"dtype {x.dtype}, but the line declares {entry.dtype}"
            elif (
                entry.dtype is None
                and param is not None
                and x.dtype != param.dtype
                and not (x.is_floating_point() and torch.is_autocast_enabled(x.device.type))
            ):
                problem = f"dtype {x.dtype}, but the network's parameters are {param.dtype}"
                if not x.is_floating_point():
                    problem += f" (an Input of another dtype declares it: nv.Input(dtype={x.dtype}))"
            elif base_shape is None:  # the base Input comes first
                base_shape, batch = spatial, x.shape[0]
                fixed = dims.shape.is_absolute or dims.shape.length is not None
                if fixed and dims.shape.size(spatial) != spatial:
                    problem = (
                        f"the line declares the {'length' if dims.shape.is_tokens else 'absolute shape'} {dims.shape!r}"
                    )
            elif _size_or_none(dims.shape, base_shape) not in (None, spatial):
                problem = (
                    f"the line declares ratio {dims.shape!r} of the base shape {base_shape},"
                    f" that is {dims.shape.size(base_shape)}"
                )
            if problem:
                raise _input_error(
                    entry,
                    f"expected a tensor of shape {_expected_shape(dims, rank, form)}, got {tuple(x.shape)}: {problem}",
                )
        return given[0] if len(entries) == 1 else given


_EVERY_SIZE = "every size"  # in Network._verified: no size needs a check of its own
_CHECKED_SIZES = 8  # the most input sizes checked one by one, for a network with lines of its own modules

# torch's modules that return a tensor of their input's shape (nn.MultiheadAttention, also in
# torch.nn.modules.activation, returns a tuple)
_SHAPE_KEEPING = frozenset(
    f"torch.nn.modules.{name}" for name in ("activation", "dropout", "batchnorm", "instancenorm", "normalization")
)


def _sizes_can_differ(owner: nn.Module, table: LineTable) -> bool:
    """Whether a line of ``table`` (owned by ``owner``), or of a nerve's sub-lines, holds a module whose
    output shape the grammar does not derive, so that passing at one input size says nothing of another."""
    for entry in table.entries:
        if entry.name is None:
            continue
        module = cast(nn.Module, owner._modules[entry.name])  # a line's child is a module
        if inlinable(module):
            nested = module.__dict__.get("_table")
            if nested is not None:
                if _sizes_can_differ(module, nested):
                    return True
            elif not type(module).__module__.startswith("neurlink."):  # a _steps that is not neurlink's
                return True
        elif type(module).__module__ not in _SHAPE_KEEPING or isinstance(module, nn.MultiheadAttention):
            return True
    return False


def _size_or_none(shape: ShapeSpec, base_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The size a shape declares for a base shape; None for a ratio of a base of another rank."""
    try:
        return shape.size(base_shape)
    except DimsError:
        return None


def _tables(module: nn.Module) -> Iterator[LineTable]:
    """The line tables of a network and of every nerve in it."""
    for child in module.modules():
        table = child.__dict__.get("_table")
        if table is not None:
            yield table


def _layout_problem(x: torch.Tensor, dims: Dims, rank: int | None, form: str) -> str | None:
    """What is wrong with the dims of a tensor given to an Input of ``form``, if anything."""
    if form in ("map", "vector"):
        if x.dim() < 2 or (rank is not None and x.dim() != rank + 2):
            problem = f"{rank if rank is not None else 'at least one'} spatial dim(s) expected"
            if rank is not None and x.dim() == rank + 1:
                problem += "; is the batch dimension missing? (x.unsqueeze(0) for one sample)"
            return problem
        if x.shape[1] != dims.channels:
            return f"{x.shape[1]} channels, but the line declares {dims.channels}"
        return None
    if form == "ids":
        if x.dim() != 2:
            return "a sequence of ids or flags, one per token, is (N, L)" + (
                " (the line declares 1 channel: no channel dim)" if x.dim() == 3 else ""
            )
        return None
    if x.dim() != 3:
        hint = ""
        if x.dim() == 2 and dims.channels == 1:
            hint = " (ids or a mask (N, L): declare the Input's dtype, nv.Input(dtype=torch.long) or torch.bool)"
        return "tokens are (N, L, C), channels last" + hint
    if x.shape[2] != dims.channels:
        return f"{x.shape[2]} channels, but the line declares {dims.channels}"
    return None


def _expected_shape(dims: Dims, rank: int | None, form: str = "map") -> str:
    if form == "ids":
        return "(N, L)"
    if form == "tokens":
        return f"(N, L, {dims.channels})"
    if rank == 0:
        return f"(N, {dims.channels})"
    return f"(N, {dims.channels}, " + ("*" if rank is None else ", ".join(["*"] * rank)) + ")"


def _input_error(entry: Entry, message: str) -> InputError:
    """An InputError about the input of Input line ``entry``, which names it; it keeps the line and the
    message apart for :meth:`Network._check_placed`, which places it in a file."""
    error = InputError(f"{_input_name(entry)}: {message}")
    error._input_line = (entry.index, entry.tag, entry.written, message)  # type: ignore[attr-defined]
    return error


def _input_name(entry: Entry) -> str:
    tag = f" ({entry.tag!r})" if entry.tag is not None else ""
    return f"line {entry.index}{tag} {entry.written}"


def build(
    lines: list[Any], *, outputs: Sequence[int | str] | None = None, device: torch.device | str | None = None
) -> Network:
    """Build a network from definition lines.

    ``outputs=["tag", 5, -1]`` declares what the network returns: the list of those lines' outputs
    (a feature pyramid, deep supervision) instead of the last line's, for every caller, ``torch.export``
    and ONNX included. ``device="meta"`` checks a definition and counts its parameters without
    allocating them.

    >>> import neurlink.nerves as nv
    >>> net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3))])
    >>> net(torch.zeros(1, 3, 9, 9)).shape
    torch.Size([1, 8, 5, 5])
    """
    if not isinstance(lines, list):
        raise DefinitionError(
            f"build() takes a list of lines, got {type(lines).__name__}", allowed="nv.build([line, line, ...])"
        )
    # The cyclic collector keeps running during a build. Its full passes would traverse the whole
    # heap (torch's own objects included) again and again as a large build grows, so the objects
    # that existed before the build are set aside (gc.freeze) while it runs and put back after:
    # only the build's new objects are traversed. An application's own freeze is left alone.
    freezing = gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
    try:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            return Network(lines, outputs)
    finally:
        if freezing:
            gc.unfreeze()
