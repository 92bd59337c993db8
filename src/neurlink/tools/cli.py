"""The ``neurlink`` command line (also ``python -m neurlink``).

    neurlink list [PATTERN]                         the zoo, with parameter counts
    neurlink summary MODEL [--input 1x3x224x224] [--depth N]
    neurlink graph MODEL -o out.svg|out.png|out.dot|out.mmd [--depth N] [--levels]
    neurlink check path/to/file.py:function ...     build on the meta device; exit 1 on an error
    neurlink export MODEL --to net.yaml|net.json    its definition lines, as a file to edit

MODEL is a zoo name (``resnet50``), a directory written by ``save_pretrained`` (``--trust MODULE``
lets its config import your own nerves), a definition file (``net.yaml``, ``net.json``; ``--set
num_classes=10`` sets its parameters, ``--trust MODULE`` lets it import your nerves) or
``path/to/file.py:function``, a function returning a network. A user's mistake prints one message
on stderr and exits with status 1 (2 for a malformed command line); on a terminal, long steps show
what they are doing on stderr.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._version import __version__
from ..definition_files import DefinitionFileError, from_file, to_file
from ..definition_files.reading import kind_of
from ..errors import ForwardError, NeurlinkError, OutputError
from ..models import create_model, list_models
from ..network import Network
from ..program import input_form
from ..shapes import Dims
from ._lines import input_rank, table_of
from ._load import CommandError, as_command_line, load_network
from ._trace import make_inputs
from .graph import graph
from .summary import printable, summary

__all__ = ["main"]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}
_DEFAULT_SIDE = {1: 224, 2: 224, 3: 64}  # the default input's spatial size, by spatial rank


class Progress:
    """One status line on stderr, rewritten in place; silent unless stderr is a terminal."""

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()

    def __call__(self, message: str) -> None:
        if self.shown:
            sys.stderr.write(f"\r\x1b[K{message} ...")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


_MAX_INPUT = 2**30  # elements of one input (4 GiB of float32): a larger one is a typo, not a measurement


def _size(text: str) -> list[tuple[int, ...]]:
    """``1x3x224x224`` (or several, comma-separated) as sizes, bounded before anything is allocated."""
    sizes = []
    for part in text.split(","):
        numbers = part.strip().lower().split("x")
        if len(numbers) < 2 or not all(n.isdigit() and n.strip("0") for n in numbers):
            raise argparse.ArgumentTypeError(
                f"{text[:80]!r} is not an input size: write batch x channels x spatial sizes, e.g. 1x3x224x224"
            )
        size = tuple(int(n) if len(n) <= 12 else _MAX_INPUT + 1 for n in numbers)  # (no 4,300-digit int)
        if math.prod(size) > _MAX_INPUT:
            raise argparse.ArgumentTypeError(
                f"{part.strip()[:80]!r} is more than {_MAX_INPUT:,} elements, the most an input here may be"
            )
        sizes.append(size)
    return sizes


def _device(text: str) -> torch.device:
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: cpu, cuda, cuda:1, mps or meta") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available here")
    return device


def _depth(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a depth: 1 (the network's own lines), 2, ...")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurlink",
        description="See neurlink networks: the zoo, line-by-line summaries, diagrams, definition checks.",
    )
    parser.add_argument("--version", action="version", version=f"neurlink {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model_help = (
        "a zoo name (see 'neurlink list'), a directory written by save_pretrained, a definition file"
        " (net.yaml, net.json), or path/to/file.py:function returning a network"
    )

    listing = commands.add_parser("list", help="the model zoo, with parameter counts")
    listing.add_argument("pattern", nargs="?", help="a name pattern: resnet50, 'resnet*', wide (a part of the name)")

    def measured(command: argparse.ArgumentParser) -> None:
        command.add_argument("model", metavar="MODEL", help=model_help)
        command.add_argument(
            "--input",
            type=_size,
            action="append",
            metavar="SIZE",
            help="input size, e.g. 1x3x224x224; one per Input line (repeat, or separate by commas);"
            " default: batch 1, the declared channels, 224 per spatial dim",
        )
        command.add_argument("--depth", type=_depth, default=1, help="expand nested blocks to this depth (default 1)")
        command.add_argument("--device", type=_device, default=torch.device("cpu"), help="cpu (default), cuda, meta")
        command.add_argument("--dtype", choices=sorted(_DTYPES), default="float32", help="default float32")
        _keywords_option(command)

    measured(commands.add_parser("summary", help="a table of every line: dims, shapes, parameters, MACs"))
    drawing = commands.add_parser("graph", help="a diagram of the lines: .svg/.png (Graphviz), .dot, .mmd")
    measured(drawing)
    drawing.add_argument(
        "-o", "--output", help="out.svg, out.png, out.pdf, out.dot or out.mmd (default: DOT on stdout)"
    )
    drawing.add_argument("--no-shapes", action="store_true", help="draw declared dims only, without a forward")
    drawing.add_argument(
        "--levels", action="store_true", help="one row per ratio (a feature pyramid), the lines left to right"
    )

    check = commands.add_parser("check", help="build definitions on the meta device and report their errors")
    check.add_argument("models", nargs="+", metavar="MODEL", help=model_help)
    _keywords_option(check)

    export = commands.add_parser("export", help="write a model's definition lines as a file to edit (YAML, JSON)")
    export.add_argument("model", metavar="MODEL", help=model_help)
    export.add_argument("--to", required=True, metavar="FILE", help="net.yaml, net.yml or net.json")
    _keywords_option(export)
    return parser


def _default_sizes(net: nn.Module) -> list[tuple[int, ...]]:
    """Batch 1, the declared channels, 224 per spatial dim of the base input (others by their ratio)."""
    table = table_of(net)
    base = table.base_entry
    rank = input_rank(net, base)
    rank = 2 if rank is None else rank  # 0 for vectors (N, C)
    base_spatial = (_DEFAULT_SIDE.get(rank, 32),) * rank
    if base.dims[0].shape.is_absolute:
        base_spatial = base.dims[0].shape.size(base_spatial)
    sizes = _input_sizes(net, base_spatial, batch=1)
    for entry, size in zip(table.input_entries, sizes):
        if math.prod(size) > _MAX_INPUT:  # an absolute shape a file declares is held to --input's bound
            raise CommandError(
                f"line {entry.index}'s input would be {'x'.join(map(str, size))}, more than {_MAX_INPUT:,}"
                " elements: give a smaller one with --input"
            )
    return sizes


def _input_sizes(net: nn.Module, base_spatial: tuple[int, ...], batch: int) -> list[tuple[int, ...]]:
    """The size of each Input line's tensor for a base input of ``base_spatial``."""
    sizes = []
    for entry in table_of(net).input_entries:
        dims: Dims = entry.dims[0]
        size = (batch, *dims.tensor_shape(base_spatial))
        sizes.append(size[:2] if input_form(entry) == "ids" else size)  # token ids or a mask, (N, L)
    return sizes


def _keywords_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--arg",
        type=_keyword,
        action="append",
        metavar="NAME=VALUE",
        help="a keyword for the builder, e.g. --arg num_classes=10 (values read as Python literals)",
    )
    command.add_argument(
        "--set",
        type=_setting,
        action="append",
        metavar="NAME=VALUE",
        help="a parameter of a definition file, e.g. --set num_classes=10 or --set c3k=true (true, false and null as"
        " a file writes them), or its scale: --set scale=s",
    )
    command.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module a saved network's config.json or a definition file may import (your own nerves);"
        " repeat for several",
    )


def _keyword(text: str) -> tuple[str, object]:
    name, equals, value = text.partition("=")
    if not equals or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not NAME=VALUE, e.g. num_classes=10")
    if name == "weights":  # loading (or downloading) weights measures and checks nothing the lines do not
        raise argparse.ArgumentTypeError(
            "--arg weights=... is not taken here: the command line looks at a definition, not at weights"
        )
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value  # a plain word: a string


_WORDS = {"true": True, "false": False, "null": None}  # a file's spellings (YAML, JSON), in any case


def _setting(text: str) -> tuple[str, object]:
    """``--set NAME=VALUE``: VALUE as a file writes it (``true``, ``false``, ``null``) or a Python literal;
    any other word is a string. ``yes``/``no`` stay words: a file refuses them as booleans too."""
    name, equals, value = text.partition("=")
    if not equals or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not NAME=VALUE, e.g. num_classes=10")
    if value.strip().lower() in _WORDS:
        return name, _WORDS[value.strip().lower()]
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value  # a plain word: a string


def _spelled(value: object) -> str:
    """A --set value as the command line writes it: ``true``, ``null``, a word without quotes."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return value if isinstance(value, str) and _setting(f"v={value}")[1] == value else repr(value)


def _as_settings(message: str, settings: dict[str, object]) -> str:
    """A file's advice about a parameter set in Python (``flag=True``, ``allowed: flag= a bool``) in the
    spelling of --set: ``--set flag=true``, ``allowed: --set flag=true or --set flag=false``."""
    for name, given in settings.items():
        spelled = f"--set {name}={_spelled(given)}"
        reason, newline, rest = message.partition("\n")  # (the file's text, quoted below, is left as written)
        reason = reason.replace(f" {name}={given!r} is a NoneType,", f" {spelled} is null,")
        reason = re.sub(rf"(?<![\w-]){re.escape(f'{name}={given!r}')}(?=[ :,])", spelled.replace("\\", r"\\"), reason)
        for value in (True, False):  # the default as the file wrote it
            reason = reason.replace(
                f"the file's {name} is a bool ({value})", f"the file's {name} is a bool ({_spelled(value)})"
            )
        message = reason + newline + rest
        found = re.search(rf"^    allowed: {name}= (an? (\w+))$", message, re.MULTILINE)
        if found is None:
            continue
        kind = found.group(2)
        if kind == "bool":
            example = f"--set {name}=true or --set {name}=false"
        elif kind == "str":  # a value that reads as another type is text in quotes, which the shell keeps
            example = f"--set {name}=WORD, or --set \"{name}='{_spelled(given)}'\" for that text"
        else:
            default = re.search(rf"the file's {name} is an? {kind} \((.*)\)$", message, re.MULTILINE)
            example = f"--set {name}={default.group(1) if default else kind.upper()}"
        message = message[: found.start()] + f"    allowed: {example} ({found.group(1)})" + message[found.end() :]
    return message


def _load(model: str, args: argparse.Namespace, device: torch.device | str) -> nn.Module:
    """MODEL built on ``device``: a definition file with its --set values, anything else by load_network."""
    settings = dict(args.set or [])
    if kind_of(model) is None or Path(model).is_dir():
        if settings:
            raise CommandError(
                f"--set sets the parameters of a definition file (.yaml, .json), but {model} is not one:"
                " a zoo builder takes its keywords as --arg NAME=VALUE"
            )
        return load_network(model, device=device, keywords=dict(args.arg or []), trusted=args.trust)
    if args.arg:
        raise CommandError(f"{model} is a definition file: its parameters are set with --set NAME=VALUE, not --arg")
    if args.trust:  # `--trust my_nerves` names a module beside the file, or beside the user
        for folder in (os.getcwd(), str(Path(model).resolve().parent)):
            if folder not in sys.path:
                # last: a file beside the definition never shadows a module of Python's or an installed one
                # (a yaml.py there would be what the reader imports)
                sys.path.append(folder)
    scale = settings.pop("scale", None)
    try:
        return from_file(model, trusted=args.trust, device=device, scale=scale, **settings)
    except NeurlinkError as error:  # the Python advice (from_file(path, trusted=['m'])) as the command line's
        message = as_command_line(str(error), "the current folder and the file's")
        message = _as_settings(message, settings)
        raise CommandError(message.replace("device='meta'", "--device meta")) from None


def _build(args: argparse.Namespace, progress: Progress) -> nn.Module:
    progress(f"building {printable(args.model)}")
    try:
        net = _load(args.model, args, args.device)
    except RuntimeError as error:  # e.g. no memory on the device
        raise CommandError(f"building {args.model} on {args.device} failed: {error}") from None
    return net.to(_DTYPES[args.dtype])  # measured in the dtype asked for


def _sizes(args: argparse.Namespace, net: nn.Module) -> list[tuple[int, ...]]:
    if args.input is None:
        return _default_sizes(net)
    return [size for sizes in args.input for size in sizes]


def _summary(args: argparse.Namespace, progress: Progress) -> int:
    net = _build(args, progress)
    sizes = _sizes(args, net)
    progress(f"running {args.model} on {', '.join('x'.join(map(str, s)) for s in sizes)}")
    result = summary(net, sizes, depth=args.depth, dtype=_DTYPES[args.dtype], device=args.device)
    progress.clear()
    print(result)
    mismatched = [row.path for row in result.rows if row.declared_shapes is not None]
    if mismatched:
        found = [_mismatch_placed(net, path) for path in mismatched] if isinstance(net, Network) else [None]
        placed = [message for message in found if message is not None]
        if len(placed) < len(found):  # (a network built otherwise, or a line its file does not write)
            placed = [f"line {', '.join(mismatched)} returns other dims than declared (MISMATCH above)"]
        for message in placed:
            print(f"neurlink: error: {printable(message, keep=chr(10))}", file=sys.stderr)
        return 1
    return 0


def _mismatch_placed(net: Network, path: str) -> str | None:
    """A line of ``summary``'s MISMATCH (``2``, or ``5.2`` in a block) at its place in the file the network was
    read from, as the network's own first call names it; None for a network of no file."""
    top, _, inner = path.partition(".")
    error = OutputError(f"its line {inner} returns" if inner else "returns")
    error.reason += " other dims than declared (MISMATCH above)"
    error.locate(int(top), None, "")
    placed = net._placed(error)
    return None if placed is error else str(placed)


def _graph(args: argparse.Namespace, progress: Progress) -> int:
    net = _build(args, progress)
    sizes = None
    if not args.no_shapes:
        sizes = _sizes(args, net)
        progress(f"running {args.model} on {', '.join('x'.join(map(str, s)) for s in sizes)}")
    diagram = graph(net, sizes, depth=args.depth, dtype=_DTYPES[args.dtype], device=args.device, levels=args.levels)
    if args.output is None:
        progress.clear()
        sys.stdout.write(diagram.to_dot())
        return 0
    progress(f"writing {args.output}")
    try:
        path = diagram.render(args.output)
    except OSError as error:
        raise CommandError(f"cannot write {args.output}: {error.strerror or error}") from None
    progress.clear()
    print(f"wrote {path} ({len(diagram.nodes)} lines, {len(diagram.edges)} selections)")
    return 0


def _list(args: argparse.Namespace, progress: Progress) -> int:
    pattern = args.pattern
    if pattern is not None and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    names = list_models(pattern)
    if not names:
        raise CommandError(f"no model matches {args.pattern!r}; 'neurlink list' shows them all")
    width = max(len(name) for name in names + ["model"])
    rows = []
    for k, name in enumerate(names, 1):
        progress(f"counting the parameters of {name} ({k}/{len(names)})")
        with torch.device("meta"):  # counts without allocating anything
            model = create_model(name)
        rows.append(f"{name:<{width}}  {sum(p.numel() for p in model.parameters()):>13,}")
    progress.clear()
    print(f"{'model':<{width}}  {'parameters':>13}")
    print("\n".join(rows))
    return 0


def _check(args: argparse.Namespace, progress: Progress) -> int:
    failed = 0
    for model in args.models:
        progress(f"checking {printable(model)}")
        try:
            net = _load(model, args, "meta")
            progress(f"calling {printable(model)} on the meta device")
            unchecked = _first_calls(model, net)
        except (CommandError, NeurlinkError) as error:
            progress.clear()
            print(f"neurlink: error: {printable(str(error), keep=chr(10))}", file=sys.stderr)
            failed += 1
            continue
        progress.clear()
        params = sum(p.numel() for p in net.parameters())
        note = f" (its first call was not checked: {printable(unchecked)})" if unchecked else ""
        print(f"ok: {printable(model)} builds: {len(table_of(net).entries)} lines, {params:,} parameters{note}")
    return 1 if failed else 0


def _first_calls(model: str, net: nn.Module) -> str | None:
    """Call a network built on the meta device as its first calls would (every line's output is checked
    against its declared dims), at the sizes of :func:`_check_sizes`, spending no memory. Raises a
    :class:`CommandError` for a line that fails; returns why the calls could not be made, or None."""
    if not isinstance(net, Network):
        return None  # (load_network builds networks; a LinesModule of another kind has no first call)
    if any(t.device.type != "meta" for t in (*net.parameters(), *net.buffers())):
        return "the network's tensors are not on the meta device"  # (its builder chose their device)
    for sizes in _check_sizes(net):
        inputs = make_inputs(net, sizes, device="meta")
        shown = ", ".join("x".join(map(str, size)) for size in sizes)
        try:
            with torch.no_grad():
                net(inputs[0] if len(inputs) == 1 else inputs)
        except Exception as error:
            # torch's own error (a ForwardError wraps it), never neurlink's check, which may quote a tag "meta"
            cause = error.__cause__ if isinstance(error, ForwardError) else None
            cause = error if not isinstance(error, NeurlinkError) else cause
            where = error.path if isinstance(error, NeurlinkError) else _lines_named(error)
            if cause is not None and re.search(r"meta(?![a-z])", str(cause), re.IGNORECASE):
                what = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:160]
                return f"the meta device cannot run {where or 'it'}: {what}"
            found = f"\n    (found by its first call, on an input of {shown}, made on the meta device)"
            if isinstance(error, ForwardError):  # torch's words on the meta device are few: what the line got
                found = _input_note(net, error.where) + found
            if isinstance(error, DefinitionFileError):  # it names the file's line
                raise CommandError(f"{error}{found}") from None
            if isinstance(error, NeurlinkError):
                raise CommandError(f"{model}: {error}{found}") from None
            raise CommandError(f"{model}: {where or 'its forward'}: {type(error).__name__}: {error}{found}") from None
    return None


_TAKES = ("in_channels", "in_features", "num_features", "num_channels")  # what a torch module says it takes


def _input_note(net: Network, where: list[tuple[int, str | None, str]]) -> str:
    """What the line at ``where`` reads (the dims its input lines declare) and, where its module says
    what it takes (``in_channels``, ``in_features``, ...), that too: ``its input: line 1's (8, 1), 8
    channels, but nn.Conv2d's in_channels is 3``; "" where the lines cannot be followed."""
    owner: nn.Module = net
    entry, module = None, None
    table: Any = net._table
    for index, _, _ in where:
        if table is None or not 0 <= index < len(table.entries):
            return ""
        entry = table.entries[index]
        module = owner._modules.get(entry.name) if entry.name is not None else None
        if module is None:
            return ""
        inner, owner = table, module
        table = module.__dict__.get("_table")
    if entry is None or module is None:
        return ""
    got = []
    for ref in entry.refs:
        dims = inner.entries[ref.line].dims
        if ref.output is None and len(dims) != 1:
            return ""
        got.append((ref.line, dims[0 if ref.output is None else ref.output]))
    if not got:
        return ""
    text = ", ".join(f"line {line}'s {dims!r}" for line, dims in got)
    takes = next((name for name in _TAKES if isinstance(getattr(module, name, None), int)), None)
    if takes is not None and len(got) == 1 and got[0][1].channels != getattr(module, takes):
        owned = "nn." if type(module).__module__.startswith("torch.nn") else ""
        return (
            f"\n    its input: {text}, {got[0][1].channels} channels, but {owned}{type(module).__name__}'s"
            f" {takes} is {getattr(module, takes)}"
        )
    return f"\n    its input: {text}"


def _lines_named(error: BaseException) -> str:
    """The lines an exception of another kind than neurlink's left (the note the network added)."""
    where = getattr(error, "_neurlink_where", None) or []
    return " > ".join(f"line {index}" for index, _, _ in where)


def _check_sizes(net: Network) -> list[list[tuple[int, ...]]]:
    """The inputs ``check`` calls a network with, of batch 2 (a batch norm in training mode needs more than
    one value per channel): the smallest base size its lines take, per spatial dim a multiple of the lines'
    ratios from twice it and more where unpadded lines shrink it (as ``Network.dynamic_shapes`` declares);
    and where a line's module may return another shape at another size (a torch module, a nerve with a
    forward of its own: the network checks each size), also ``summary``'s 224, rounded up to that multiple."""
    base = table_of(net).base_entry
    rank = input_rank(net, base)
    rank = 2 if rank is None else rank
    shape = base.dims[0].shape
    if shape.ratios is None:  # an absolute shape, or tokens of a fixed length
        return [_input_sizes(net, shape.size((1,) * rank), batch=2)]
    multiples = net._ratio_multiples(rank)
    bounds = [4096] * rank  # and the largest base size a line takes (learned positions of a sequence)
    for module in net.modules():
        bound = getattr(module, "max_base_size", None)
        if isinstance(bound, tuple):
            bounds = [min(b, int(c)) for b, c in zip(bounds, bound)]
    smallest = tuple(m * net._fewest_multiples(k, m, b) for k, (m, b) in enumerate(zip(multiples, bounds)))
    side = _DEFAULT_SIDE.get(rank, 32)
    usual = tuple(max(low, min(-(-side // m), b // m) * m) for low, m, b in zip(smallest, multiples, bounds))
    bases = [smallest]
    if net.__dict__.get("_sizes_can_differ", True) and usual != smallest:
        bases.append(usual)
    return [_input_sizes(net, spatial, batch=2) for spatial in bases]


def _export(args: argparse.Namespace, progress: Progress) -> int:
    if kind_of(args.to) is None:
        raise CommandError(f"--to {args.to}: a definition file is .yaml, .yml or .json")
    progress(f"building {printable(args.model)}")
    net = _load(args.model, args, "meta")  # the lines only: no weights are needed to write them
    progress(f"writing {args.to}")
    try:
        to_file(net, args.to)
    except OSError as error:
        raise CommandError(f"cannot write {args.to}: {error.strerror or error}") from None
    progress.clear()
    print(f"wrote {printable(args.to)}: the {len(table_of(net).entries)} lines of {printable(args.model)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0 done, 1 a user's mistake, 2 a malformed command)."""
    args = _parser().parse_args(argv)
    progress = Progress()
    run = {"list": _list, "summary": _summary, "graph": _graph, "check": _check, "export": _export}[args.command]
    try:
        return run(args, progress)
    except (CommandError, NeurlinkError) as error:
        progress.clear()
        print(f"neurlink: error: {printable(str(error), keep=chr(10))}", file=sys.stderr)  # a config's text, escaped
        return 1
    except KeyboardInterrupt:
        progress.clear()
        return 130
    except BrokenPipeError:  # e.g. `neurlink summary resnet152 | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
