"""``from_file``: a definition file read and built, every mistake named at its file, line and column.

The file is a mapping (YAML or JSON) of

| key | what |
|---|---|
| ``lines`` | the definition lines, one string each in the notation of ``notation.py`` (required) |
| ``params`` | parameters and their defaults (``num_classes: 1000``), used by name in lines and set by keyword |
| ``scales``, ``scale`` | named multipliers of channels and repeats (``n: {width: 0.25, depth: 0.34}``), with the parameters a scale sets (``params: {c3k: true}``), and the default |
| ``outputs`` | what the network returns, as ``nv.build(lines, outputs=[...])``: tags or line indices |
| ``network`` | a ``Network`` subclass built from the lines (``Detector``), for a network whose call differs |
| ``neurlink``, ``about``, ``made_by`` | the notation's version (1), a description, the builder call a zoo model came from |

Reading happens in two passes over every line, as ``from_pretrained`` reads a config: the first
checks every name against the import rule from its text alone, importing nothing; only then are the
trusted modules imported and the values made. The network is built on the meta device first (no
memory is spent on a definition that does not build, or asks for terabytes), then where it is asked for.
"""

from __future__ import annotations

import contextlib
import json
import keyword
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn, cast

import torch
from torch import nn

from .. import _files, _names
from .._config import MAX_LINES, Reader
from ..errors import NeurlinkError, PretrainedError, UnexpectedArgumentError, a_kind, did_you_mean
from ..pretrained import _META_CALLS, _META_CALLS_PER_LINE, _short, _TorchCallBudget
from .documents import MAX_BYTES, Node, read_document
from .errors import DefinitionFileError, DefinitionFileNotFoundError, FilePlaces, at_place, in_file
from .memory import available_bytes, shown_bytes, tensor_bytes
from .names import ALIASES, NAMESPACES, VALUE, NameProblem, look_up
from .notation import RESERVED, LineReader, NotationError, Scale
from .sources import FileSource, keep_source

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["from_file", "from_text", "kind_of", "NOTATION_VERSION", "SUFFIXES"]

NOTATION_VERSION = 1
SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_KEYS = ("neurlink", "about", "made_by", "params", "scales", "scale", "network", "outputs", "lines")
_OWN_KEYWORDS = ("trusted", "device", "scale", "check_memory")
_SCALE_KEYS: dict[str, type] = {"width": float, "depth": float, "max_channels": int, "divisor": int}
_SCALE_LIMIT = 1 << 20  # no multiplier, cap or divisor of channels is larger
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")

Trusted = str | ModuleType | Iterable[str | ModuleType]


def kind_of(path: str | os.PathLike[str]) -> str | None:
    """``"yaml"`` or ``"json"`` by the file's suffix, or None for another file."""
    return SUFFIXES.get(Path(path).suffix.lower())


def from_file(
    path: str | os.PathLike[str],
    *,
    trusted: Trusted = (),
    device: torch.device | str | None = None,
    scale: str | None = None,
    check_memory: bool = True,
    **params: Any,
) -> Network:
    """Build the network a definition file (``.yaml``, ``.yml`` or ``.json``) describes.

    ``params`` set the parameters the file declares (``num_classes=10``) and ``scale`` chooses one of
    its scales. Classes and functions are imported only from neurlink, torch and the modules listed in
    ``trusted`` (where your own nerves are), as :func:`neurlink.from_pretrained` imports them, and only
    after every name of the file has passed that rule. The network is built with ``nv.build``'s
    defaults (random weights, training mode), on ``device``: first on the meta device, and refused there
    when its parameters and buffers need more memory than ``device`` has available (``check_memory=False``
    builds it anyway). An error a line raises on a call (its module returning other dims than the line
    declares, found on the first call) names the file's line too. Every mistake is a
    :class:`~neurlink.definition_files.DefinitionFileError` (a :class:`~neurlink.NeurlinkError`) whose
    message starts with ``file:line:column``; one found by the build keeps its class too
    (``DimsError``, ``UnknownTagError``...).
    """
    shown = os.fspath(path) if isinstance(path, (str, os.PathLike)) else repr(path)
    if not isinstance(path, (str, os.PathLike)):
        raise DefinitionFileError(f"{path!r} is not a path", allowed="a .yaml, .yml or .json file")
    kind = kind_of(path)
    if Path(path).is_dir() and (Path(path) / "config.json").is_file():  # save_pretrained's folder
        raise DefinitionFileError(
            "is a folder holding config.json, a checkpoint, not a definition file",
            allowed=f"neurlink.from_pretrained({shown!r}) loads a checkpoint; from_file reads a .yaml, .yml or"
            " .json definition file",
            file=shown,
        )
    if kind is None:
        raise DefinitionFileError(
            "a definition file is .yaml, .yml or .json", allowed="net.yaml, net.yml or net.json", file=shown
        )
    file = Path(path)
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "no such file"
        raise DefinitionFileNotFoundError(f"{what}", file=str(shown))
    try:
        data = _files.read_bounded(file, MAX_BYTES)
        if len(data) > MAX_BYTES:
            raise DefinitionFileError(f"more than {MAX_BYTES:,} bytes is too large for a definition", file=str(shown))
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # every newline \n, as read_text
        text = text.removeprefix("\ufeff")  # a byte order mark some editors write (JSON has none, YAML skips it)
    except (OSError, UnicodeDecodeError) as error:
        raise DefinitionFileError(f"cannot be read: {error}", file=str(shown)) from None
    return from_text(
        text, kind, file=str(shown), trusted=trusted, device=device, scale=scale, check_memory=check_memory, **params
    )


def from_text(
    text: str,
    kind: str = "yaml",
    *,
    file: str = "<definition>",
    trusted: Trusted = (),
    device: torch.device | str | None = None,
    scale: str | None = None,
    check_memory: bool = True,
    **params: Any,
) -> Network:
    """As :func:`from_file`, for the text of a file (``kind`` ``"yaml"`` or ``"json"``); errors name ``file``."""
    if kind not in ("yaml", "json"):
        raise DefinitionFileError(f"kind={kind!r}", allowed="'yaml' or 'json'")
    roots = _names.trusted_roots(trusted)
    definition = read_definition(text, kind, file, roots, scale, params)
    network = definition.build(device, check_memory=check_memory)
    keep_source(network, FileSource(text, kind, file, tuple(params.items()), scale, roots))  # to_file writes it again
    return network


# --- reading ------------------------------------------------------------------------------------------


@dataclass
class _Line:
    node: Node
    text: str
    first: int  # the index of its first line in the definition
    repeat: int = 1
    scaled: str = ""  # what a scale made of its numbers, for the build's errors: "channels 1536 are 384"


def _place(line: _Line) -> tuple[int, int, int, int, str, str]:
    """Where ``line`` is written, as an item of ``errors.FilePlaces``."""
    return line.first, line.repeat, line.node.line, line.node.column, line.text, line.scaled


@dataclass
class Definition:
    """A file read and checked: its lines as data, and where each one is written."""

    file: str
    text_lines: list[str]
    root: Node
    trusted: tuple[str, ...]
    lines: list[dict] = field(default_factory=list)
    sources: list[_Line] = field(default_factory=list)
    outputs: list | None = None
    network: str | None = None
    kind: str = "yaml"  # or "json": its messages show the syntax of the file's kind

    # where things are -------------------------------------------------------------------------------

    def fail(
        self, node: Node | None, reason: str, allowed: str | None = None, error: type = DefinitionFileError
    ) -> NoReturn:
        raise self.place(error(reason, allowed=allowed), node)

    def place(self, error: NeurlinkError, node: Node | None) -> DefinitionFileError:
        """``error`` at ``node`` (the file's start when None), showing the file's line."""
        node = node or self.root
        source = self.text_lines[node.line - 1] if 0 < node.line <= len(self.text_lines) else None
        return in_file(error, self.file, node.line, node.column, source, node.column - 1 if source else None)

    def at_line(self, error: NeurlinkError, index: int, offset: int | None = None) -> DefinitionFileError:
        """``error`` at the file's line of definition line ``index`` (``offset`` characters into its text)."""
        line = next((s for s in self.sources if s.first <= index < s.first + s.repeat), None)
        if line is None:
            return self.place(error, self.root.keys.get("lines"))
        column = None
        if offset is not None and line.node.text_column is not None:
            column = line.node.text_column + offset
        return at_place(error, self.file, index, _place(line), column, offset)

    def places(self) -> FilePlaces:
        """Where each definition line is written, as data: the network built carries it, and an error one
        of its lines raises on a call names its place in the file (``errors.placed``)."""
        return self.file, tuple(_place(line) for line in self.sources)

    # building ---------------------------------------------------------------------------------------

    def made_here(self, *, budget: bool) -> Network:
        """Built once, on the current device (a checkpoint's reader, which builds on meta first, with
        ``budget``: the bound on torch calls by the lines)."""
        return self._made(None, budget=budget)

    def build(self, device: torch.device | str | None, *, check_memory: bool = True) -> Network:
        """Built on the meta device first, then on ``device`` (unless that is meta), where its parameters
        and buffers fit in the memory available there (unless ``check_memory=False``)."""
        network = self._made("meta", budget=True)
        target = torch.device(device or torch.get_default_device())
        if target.type == "meta":
            return network
        if check_memory:
            self._check_memory(network, target)
        return self._made(device, budget=False)

    def _check_memory(self, network: Network, device: torch.device) -> None:
        """Refuse, at the file line holding most of them, parameters and buffers that ``device`` has no
        memory for (measured on the meta network: nothing is allocated)."""
        needed = tensor_bytes(network)
        available = available_bytes(device) if needed else None
        if available is None or needed <= available:
            return
        held = [0] * len(self.lines)
        for entry in network.lines:
            if entry.name is not None and entry.index < len(held):
                held[entry.index] = tensor_bytes(cast(nn.Module, network._modules[entry.name]))  # a line's child
        line = max(self.sources, key=lambda s: sum(held[s.first : s.first + s.repeat]))
        most = sum(held[line.first : line.first + line.repeat])
        last = line.first + line.repeat - 1
        which = (
            f"line {line.first}" if line.repeat == 1 else f"lines {line.first} to {last} (this line * {line.repeat})"
        )
        problem = DefinitionFileError(
            f"the network's parameters and buffers need {shown_bytes(needed)}, but {device} has"
            f" {shown_bytes(available)} available; {which} hold{'s' if line.repeat == 1 else ''}"
            f" {shown_bytes(most)} of it",
            allowed="a smaller network; device='meta' checks it and counts its parameters without memory;"
            " from_file(path, check_memory=False) builds it anyway",
        )
        place = (line.first, 1, line.node.line, line.node.column, line.text, "")  # (all of its repeats)
        raise at_place(problem, self.file, line.first, place)

    def _made(self, device: torch.device | str | None, *, budget: bool) -> Network:
        from ..network import build

        reader = Reader(self.trusted, resolve=True)
        guard = _TorchCallBudget(_META_CALLS + _META_CALLS_PER_LINE * len(self.lines)) if budget else None
        try:
            with torch.device(device) if device is not None else contextlib.nullcontext():
                with guard if guard is not None else contextlib.nullcontext():
                    lines = reader.lines(self.lines)
                    if self.network is None:
                        network = build(lines, outputs=self.outputs)
                    else:
                        cls = _names.resolve(self.network, self.trusted)
                        made = cls(lines) if self.outputs is None else cls(lines, outputs=self.outputs)
                        network = cast("Network", made)
        except PretrainedError as error:
            found = re.match(r"lines\[(\d+)\][^:]*: ", error.reason)
            if found is not None:  # a value _config's Reader refuses (a module that raises when made)
                error.reason = error.reason[found.end() :]
                raise self.at_line(error, int(found.group(1))) from None
            raise self.place(error, self.root.keys.get("lines")) from None
        except NeurlinkError as error:
            if error.where:
                raise self.at_line(error, error.where[0][0]) from None
            key = "outputs" if "outputs" in error.reason and "outputs" in self.root.keys else "lines"
            raise self.place(error, self.root.keys.get(key)) from None
        except (Exception, RecursionError) as error:  # a trusted nerve's own exception, say
            problem = DefinitionFileError(f"the definition does not build: {type(error).__name__}: {error}")
            raise self.place(problem, self.root.keys.get("lines")) from error
        # where each line is written, as data: an error a line raises on a call names it (definition_hooks)
        object.__setattr__(network, "_file_places", self.places())
        return network


def read_definition(
    text: str, kind: str, file: str, trusted: tuple[str, ...], scale: str | None, overrides: Mapping[str, Any]
) -> Definition:
    """The file read into a Definition: every name checked, every value made, nothing built yet."""
    root = read_document(text, file, kind)
    definition = Definition(file, text.splitlines(), root, trusted, kind=kind)
    if not isinstance(root.value, dict):
        definition.fail(root, "a definition file is a mapping", allowed="keys lines: (and params:, scales:, ...)")
    values: dict[str, Node] = root.value
    for key in values:
        if key not in _KEYS:
            hint, allowed = did_you_mean(key, _KEYS), ", ".join(_KEYS)
            if not hint and key.isidentifier():  # num_classes: 10 written at column 1, not under params:
                if kind == "json":
                    allowed += f'; a parameter is a key of "params": {{"params": {{"{key}": ...}}}}'
                else:
                    allowed += f"; a parameter is indented under params:, as '  {key}: ...' on the lines after it"
            definition.fail(root.keys[key], f"unknown key {key!r}{hint}", allowed=allowed)
    version = values.get("neurlink")
    if version is not None and (version.value != NOTATION_VERSION or isinstance(version.value, bool)):
        definition.fail(
            version,
            f"notation version {_short(version.value)} is not one this neurlink reads",
            allowed=f"neurlink: {NOTATION_VERSION}",
        )
    for key in ("about", "made_by"):
        if key in values and not isinstance(values[key].value, str):
            definition.fail(values[key], f"{key} is text, not {type(values[key].value).__name__}")
    params = _params(definition, values.get("params"), overrides)
    chosen = _scale(definition, values.get("scales"), values.get("scale"), scale, values.get("params"))
    if chosen is not None:  # the scale's values of parameters, unless the caller sets them
        params.update({name: value for name, value in chosen.params.items() if name not in overrides})
    if "network" in values:
        definition.network = _network(definition, values["network"])
    if "outputs" in values:
        definition.outputs = _outputs(definition, values["outputs"])
    lines = values.get("lines")
    if lines is None:
        definition.fail(root, "the file has no lines:", allowed="lines: a list of definition lines")
    if not isinstance(lines.value, list) or not lines.value:
        yaml_form = "lines: is a list of definition lines, one '- ...' each"
        definition.fail(lines, '"lines" is an array of definition lines, strings' if kind == "json" else yaml_form)
    for item in lines.value:
        _check_line_node(definition, item)
    # every name checked from its text before anything is imported; then the values made
    file_tags: frozenset[str] | None = None  # the tags of every line, known after the first pass
    for resolve in (False, True):
        reader = LineReader(params, chosen, trusted, resolve=resolve, file_tags=file_tags)
        definition.lines, definition.sources = [], []
        for item in lines.value:
            source = _Line(item, item.value, len(definition.lines))
            definition.sources.append(source)
            try:
                data, source.repeat = reader.read(item.value)
            except NotationError as error:
                instead = error.allowed if error.line is None else _written_line(error.line, kind)
                problem = (error.kind or DefinitionFileError)(error.reason, allowed=instead)
                raise definition.at_line(problem, source.first, error.offset) from None
            if chosen is not None and reader.scaled:
                source.scaled = f"scale {chosen.name!r}: {', '.join(reader.scaled)}"
            if source.first + source.repeat > MAX_LINES:
                definition.fail(item, f"more than {MAX_LINES:,} lines; a definition read from a file has at most that")
            definition.lines += [data] * source.repeat
        file_tags = frozenset(reader.tags)
    return definition


def _written_line(line: str, kind: str) -> str:
    """``line`` as the file writes it: a JSON string, or a YAML item (in quotes where YAML would read it
    otherwise than as text)."""
    if kind == "json":
        return json.dumps(line)
    if ": " in line or " #" in line or line[:1] in "[]{}'\"!&*|>%@`#,?:-" or line != line.strip():
        return "- '" + line.replace("'", "''") + "'"
    return f"- {line}"


def _check_line_node(definition: Definition, item: Node) -> None:
    if isinstance(item.value, str):
        if item.end_line is not None and item.end_line > item.line and item.text_column is None:
            raw = "\n".join(definition.text_lines[item.line - 1 : item.end_line])
            if re.search(r"\n\s*- ", raw):  # '- a' then '   - b' indented deeper: YAML reads one line
                definition.fail(
                    item,
                    "this line runs on into the next file line, which starts with '- ' indented deeper: YAML"
                    " reads both as one line",
                    allowed="the items of lines: start at one column",
                )
        return
    value = item.value
    if definition.kind == "json":
        json_kinds = {dict: "an object", list: "an array", type(None): "null", bool: f"{value!r}".lower()}
        what = json_kinds.get(type(value), f"the number {_short(value)}")
        definition.fail(
            item,
            f"a line is a string, but this one is {what}",
            allowed='a line in the notation as a JSON string: "(8, 2), Conv2d(3)", "(8, 2), Nerve(d={\\"a\\": 1})",'
            ' a repeat "(8, 2), Conv2d(3) * 2"',
        )
    allowed = "a line in the notation, in quotes when it holds ': ' or ' #': - '(8, 2), Nerve(d={\"a\": 1})'"
    if isinstance(value, list):  # [(8, 2), Conv2d(3)], a line in Python's brackets
        written = (
            definition.text_lines[item.line - 1][item.column - 1 :] if item.line <= len(definition.text_lines) else ""
        )
        inner = written[1 : written.rfind("]")].strip() if written.startswith("[") and "]" in written else ""
        what = "a list: a line is written without Python's brackets"
        allowed = f"- {inner}" if inner else "- (8, 2), Conv2d(3), without brackets"
    else:
        kinds = {dict: "a mapping (a ': ' in it?)", type(None): "nothing (an empty '- ')"}
        what = kinds.get(type(value), f"the {type(value).__name__} {_short(value)}")
    definition.fail(item, f"a line is text, but this one is read as {what}", allowed=allowed)


def _params(definition: Definition, node: Node | None, overrides: Mapping[str, Any]) -> dict:
    """The declared parameters with the caller's values: a name nobody declared, or a value of another
    type than the default's, is an error at the declaration."""
    declared: dict[str, Node] = {}
    if node is not None:
        if not isinstance(node.value, dict):
            if definition.kind == "json":
                definition.fail(
                    node, '"params" is an object of names and defaults', allowed='"params": {"num_classes": 10}'
                )
            definition.fail(node, "params: is a mapping of names to defaults", allowed="params: {num_classes: 10}")
        declared = node.value
    values: dict[str, Any] = {}
    for name, value in declared.items():
        where = node.keys[name] if node is not None else None
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            definition.fail(where, f"the parameter name {name!r} is not a name", allowed="num_classes, width, ...")
        if name in RESERVED or name in ALIASES or name in _OWN_KEYWORDS:
            what = "a keyword of from_file" if name in _OWN_KEYWORDS else "a word of the notation"
            definition.fail(
                where,
                f"{name!r} is {what}, not a name for a parameter",
                allowed="another name (num_classes, width, depth_scale, ...)",
            )
        if type(value.value) not in (int, float, str, bool):
            definition.fail(
                value,
                f"the default of {name} is {_kind(value.value, definition.kind)}",
                allowed="a number, a string or a bool",
            )
        if type(value.value) is float and not math.isfinite(value.value):  # .inf, .nan, 1e400
            written = _written(definition, value)
            shown = f" (written {written})" if written not in (None, repr(value.value)) else ""
            definition.fail(
                value,
                f"the default of {name} is {value.value!r}{shown}: a parameter is a finite number (a size, a rate)",
                allowed="a finite number: " + (f'"{name}": 0.1' if definition.kind == "json" else f"{name}: 0.1"),
            )
        values[name] = value.value
    for name, given in overrides.items():
        if name not in values:
            definition.fail(
                definition.root.keys.get("params"),
                f"{name}={given!r}: the file declares no parameter {name!r}{did_you_mean(name, values)}",
                allowed=f"{', '.join(values)} (declared under params:)" if values else "none: it declares no params:",
                error=UnexpectedArgumentError,
            )
        default = values[name]
        if not (type(given) is type(default) or type(default) is float and type(given) is int):
            definition.fail(
                declared[name],
                f"{name}={given!r} is {a_kind(type(given).__name__)}, but the file's {name} is"
                f" {a_kind(type(default).__name__)} ({default!r})",
                allowed=f"{name}= {a_kind(type(default).__name__)}",
            )
        if type(given) is float and not math.isfinite(given):
            definition.fail(
                declared[name],
                f"{name}={given!r} is not a finite number: a parameter is a size or a rate, which is finite",
                allowed=f"{name}= a finite number, as the file's {name} ({default!r})",
            )
        values[name] = float(given) if type(default) is float and type(given) is int else given  # (1 as 1.0)
    return values


def _written(definition: Definition, node: Node) -> str | None:
    """A scalar's text as the file writes it, where it is on one line."""
    if node.end is None or node.end[0] != node.line or not 0 < node.line <= len(definition.text_lines):
        return None
    return definition.text_lines[node.line - 1][node.column - 1 : node.end[1] - 1]


def _kind(value: Any, kind: str) -> str:
    """What a value of the file is, in the words of its kind: ``"a list [1, 2]"`` (YAML), ``"an array [1, 2]"`` (JSON)."""
    if value is None:
        return "null" if kind == "json" else "null (nothing written)"
    if isinstance(value, (list, dict)):
        words = {list: ("a list", "an array"), dict: ("a mapping", "an object")}[type(value)]
        return f"{words[kind == 'json']} {_short(Node(value, 0, 0).plain())}"
    return f"{a_kind(type(value).__name__)} {_short(value)}"


def _scale(
    definition: Definition, node: Node | None, default: Node | None, chosen: str | None, declared: Node | None
) -> Scale | None:
    """The scale asked for (by keyword, else the file's ``scale:``, else its first), or None. A scale's
    ``params:`` give parameters the file ``declared`` values of their defaults' types."""
    if node is None:
        example = "scales: {n: {width: 0.25, depth: 0.34}}"
        if definition.kind == "json":
            example = '"scales": {"n": {"width": 0.25, "depth": 0.34}}'
        if chosen is not None:
            definition.fail(
                None,
                f"scale={chosen!r}: the file declares no scales:",
                allowed=f"no scale (the lines as written), or a file that declares its scales: {example}",
            )
        if default is not None:
            definition.fail(
                default,
                "scale: chooses one of the file's scales:, but it declares none",
                allowed=f"scales declared beside it: {example}, or no scale:",
            )
        return None
    if not isinstance(node.value, dict) or not node.value:
        definition.fail(node, "scales: maps names to multipliers", allowed="scales: {s: {width: 0.5, depth: 0.33}}")
    scales: dict[str, Scale] = {}
    for name, item in node.value.items():
        if not isinstance(item.value, dict):
            definition.fail(
                item,
                f"scale {name!r} must be a mapping of its multipliers (not Ultralytics' [depth, width, max_channels])",
                allowed="{width: 0.5, depth: 0.33, max_channels: 1024}",
            )
        values: dict[str, Any] = {}
        for key, value in item.value.items():
            if key == "params":
                values["params"] = _scale_params(definition, name, value, declared)
                continue
            kind = _SCALE_KEYS.get(key)
            if kind is None:
                words = [*_SCALE_KEYS, "params"]
                definition.fail(
                    item.keys[key], f"unknown key {key!r}{did_you_mean(key, words)}", allowed=", ".join(words)
                )
            number = value.value
            ok = not isinstance(number, bool) and isinstance(number, (int, float) if kind is float else int)
            if not ok or not 0 < number <= _SCALE_LIMIT:  # (inf and 1e308 would overflow the arithmetic)
                what = "number" if kind is float else "int"
                sample = {"width": 0.5, "depth": 0.33, "max_channels": 1024, "divisor": 8}[key]
                written = f'"{key}": {sample}' if definition.kind == "json" else f"{key}: {sample}"
                hint = " written without quotes" if isinstance(number, str) else ""
                definition.fail(
                    value,
                    f"{key}: {number!r} is not a positive {what} up to {_SCALE_LIMIT:,}",
                    allowed=f"a positive {what}{hint}: {written}",
                )
            values[key] = number
        scales[name] = Scale(name, **values)
    if chosen is None and default is not None:
        if not isinstance(default.value, str):
            definition.fail(default, "scale: is the name of one of the file's scales")
        chosen = default.value
    name = chosen if chosen is not None else next(iter(scales))
    if name not in scales:
        definition.fail(
            default if default is not None and chosen == default.value else node,
            f"scale {name!r} is not one of the file's scales{did_you_mean(str(name), scales)}",
            allowed=", ".join(scales),
        )
    return scales[name]


def _scale_params(definition: Definition, scale: str, node: Node, declared: Node | None) -> dict[str, Any]:
    """A scale's ``params: {c3k: true}``: parameters the file declares, each of its default's type."""
    defaults: dict[str, Node] = declared.value if declared is not None and isinstance(declared.value, dict) else {}
    if not isinstance(node.value, dict):
        definition.fail(
            node, f"params: of scale {scale!r} maps parameters to the scale's values", allowed="params: {c3k: true}"
        )
    values = {}
    for name, value in node.value.items():
        if name not in defaults:
            hint, known = did_you_mean(name, defaults), ", ".join(defaults) or "none"
            definition.fail(
                node.keys[name],
                f"scale {scale!r} sets {name!r}, but the file declares no parameter {name!r}{hint}",
                allowed=f"a parameter declared under params: ({known})",
            )
        default, given = defaults[name].value, value.value
        if not (type(given) is type(default) or type(default) is float and type(given) is int):
            definition.fail(
                value,
                f"scale {scale!r} sets {name} to {type(given).__name__} {_short(given)}, but the file's {name} is"
                f" {a_kind(type(default).__name__)} ({_short(default)})",
                allowed=f"{name}: {a_kind(type(default).__name__)}",
            )
        if type(given) is float and not math.isfinite(given):
            definition.fail(value, f"scale {scale!r} sets {name} to {given!r}: a parameter is a finite number")
        values[name] = given
    return values


def _network(definition: Definition, node: Node) -> str:
    from ..network import Network

    text = node.value
    if not isinstance(text, str) or not _DOTTED.match(text):
        definition.fail(node, "network: is the name of a Network subclass", allowed="network: Detector")
    found: Any = None
    classes = [name for name, value in _short_values() if isinstance(value, type) and issubclass(value, Network)]
    allowed = (
        f"a subclass of neurlink.Network ({', '.join(classes)}), or one of yours by its import path"
        " (my_models.Segmenter, read with from_file(path, trusted=['my_models']))"
    )
    for resolve in (False, True):  # checked from its text first, as every name
        try:
            path, found = look_up(text.split("."), VALUE, definition.trusted, resolve=resolve)
        except NameProblem as problem:
            if problem.reason.startswith(f"unknown name {text!r}"):  # not the nerves and modules a line names
                definition.fail(node, f"unknown Network class {text!r}{did_you_mean(text, classes)}", allowed)
            definition.fail(node, problem.reason, problem.allowed)
    if not (isinstance(found, type) and issubclass(found, Network)):
        what = f"the class {found.__module__}.{found.__qualname__}" if isinstance(found, type) else None
        what = what or a_kind(type(found).__name__)
        definition.fail(node, f"{text} is {what}, not a Network class", allowed=allowed)
    return path


def _short_values() -> list[tuple[str, Any]]:
    """The values a short name of a file's value may be: the public attributes of its loaded namespaces."""
    found: dict[str, Any] = {}
    for namespace in NAMESPACES[VALUE]:
        module = sys.modules.get(namespace)
        for name, value in vars(module).items() if module is not None else ():
            if not name.startswith("_"):
                found.setdefault(name, value)
    return list(found.items())


def _outputs(definition: Definition, node: Node) -> list | None:
    if node.value is None:
        return None
    items = node.value if isinstance(node.value, list) else None
    if not items or not all(isinstance(item.value, (str, int)) and not isinstance(item.value, bool) for item in items):
        definition.fail(node, "outputs: is a list of tags or line indices", allowed='outputs: ["layer3", "layer4", -1]')
    return [item.value for item in items]
