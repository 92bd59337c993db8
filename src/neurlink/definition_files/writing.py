"""``net.to_file(path)``: a network's definition lines written as a file a person edits, YAML or JSON.

The lines are the ones the network was built from (``nv.build`` keeps them): a nerve with
sub-lines stays one line (``Bottleneck()``), a line repeated as ``[line] * n`` (or written n times
in a row) is one line ``* n``, and a zoo model is its lines, not its builder's name, with the
builder call it came from as ``made_by`` and its ``num_classes`` as a declared parameter wherever
the lines follow it. Before anything is written the text is read back, on the meta device, and
must make the network's modules, tensors and attributes: what is written builds what was built.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import _files
from .._config import NotData, encode_lines, encode_value
from .._registry import _BUILDERS
from .._version import __version__
from ..errors import NeurlinkError
from ..pretrained import (
    _attributes,
    _first_difference,
    _layout,
    _same_value,
    _short,
    not_data_error,
    unwrapped_advice,
)
from .errors import DefinitionFileError, DefinitionFileNotFoundError
from .names import NameProblem, reference
from .reading import NOTATION_VERSION, from_text, kind_of
from .rendering import Param, line_text, value_text, yaml_scalar, yaml_text
from .sources import FileSource, edited_text, source_of, values_of

__all__ = ["to_file", "to_text"]

_ALTERNATES = (1, 3)  # num_classes + these: a value that follows num_classes follows it at both


def to_file(network: nn.Module, path: str | os.PathLike[str]) -> None:
    """Write ``network``'s definition into ``path``: YAML for ``.yaml``/``.yml``, JSON for ``.json``.

    The file is replaced whole (never written through a link). Raises a
    :class:`~neurlink.definition_files.DefinitionFileError` before anything is written when a value of
    a line cannot be written (a lambda, a module with children), naming the line, or when the network
    no longer matches its definition (a module replaced, an attribute set after the build).
    """
    kind = kind_of(path) if isinstance(path, (str, os.PathLike)) else None
    if kind is None:
        raise DefinitionFileError(f"{path!r}: a definition file is .yaml, .yml or .json")
    text = to_text(network, kind)
    target = Path(path)
    if target.is_dir():
        raise DefinitionFileError(f"{target}: is a directory, where the definition file would be written")
    folder = target.parent
    if not folder.is_dir():  # (as torch.save, it makes no folder)
        exists = folder.exists()
        raise DefinitionFileNotFoundError(
            f"the folder {str(folder)!r} {'is a file' if exists else 'does not exist'}: to_file writes into an"
            " existing folder and makes none",
            allowed="another path" if exists else f"the folder made first: Path({str(folder)!r}).mkdir(parents=True)",
            file=str(target),
        )
    try:
        _files.replace_atomically(target, lambda temporary: temporary.write_text(text, encoding="utf-8"))
    except OSError as error:  # no permission, a full disk: named by the file, not by its temporary file
        raise DefinitionFileError(f"cannot be written: {error.strerror or error}", file=str(target)) from error


def to_text(network: nn.Module, kind: str = "yaml", *, attributes: bool = True) -> str:
    """The text :func:`to_file` writes (``kind`` ``"yaml"`` or ``"json"``). With ``attributes=False``
    (a checkpoint, which records them itself) attributes set after the build are not refused."""
    if kind not in ("yaml", "json"):
        raise DefinitionFileError(f"kind={kind!r}", allowed="'yaml' or 'json'")
    from ..network import Network

    source = source_of(network)
    if source is not None:  # read from a file: that file again, as its author wrote it
        text = source_text(source, kind)
        _check_reads_back(network, text, kind, list(source.trusted), attributes=attributes)
        return text

    definition = network.__dict__.get("_definition") if isinstance(network, Network) else None
    if definition is None:
        raise DefinitionFileError(
            f"this {type(network).__name__} keeps no definition to write (it was not built by nv.build, or was"
            " copied by pickle while a line held a lambda or a local class)",
            allowed=unwrapped_advice(network, "to_file"),
        )
    lines, outputs = definition
    names: set[str] = set()
    data = _encoded(network, lines, names)
    params: dict[str, Any] = {}
    made_by = network.__dict__.get("_made_by")
    if made_by is not None and made_by[2].split(".")[0] != "neurlink":
        made_by = None  # a builder of a user's: its lines only
    if made_by is not None:
        params = _follow_num_classes(made_by, data)
    header = _network_class(network)
    try:
        texts = [line_text(item, count) for item, count in _repeats(data)]
        rendered_outputs = None if outputs is None else [encode_value(o, names, "outputs") for o in outputs]
    except NotData as error:
        raise DefinitionFileError(f"a value cannot be written: {error.reason}") from None
    document = {
        "neurlink": NOTATION_VERSION,
        "made_by": None if made_by is None else _builder_call(made_by),
        "network": header,
        "params": params or None,
        "outputs": rendered_outputs,
        "lines": texts,
    }
    trusted = sorted({name.partition(":")[0].split(".")[0] for name in names} - {"neurlink", "torch"})
    text = _json(document) if kind == "json" else _yaml(document, made_by, trusted)
    _check_reads_back(network, text, kind, trusted, attributes=attributes)
    return text


def source_text(source: FileSource, kind: str) -> str:
    """The file a network was read from, with the keywords it was read with as its defaults: its own
    text edited (comments kept), or in the other format its values written out."""
    if kind == source.kind:
        text = edited_text(source)
        if text is not None:
            return text
    root, params, scale = values_of(source)
    document: dict[str, Any] = {}
    for key, node in root.value.items():
        if key == "lines" and scale is not None and "scale" not in root.value:
            document["scale"] = scale
        document[key] = node.plain()
    if params:
        document["params"] = params
    if scale is not None and "scale" in document:
        document["scale"] = scale
    return _json(document) if kind == "json" else _yaml(document, None, [])


def _encoded(network: nn.Module, lines: Any, names: set[str]) -> list[dict]:
    try:
        return encode_lines(lines, names)
    except NotData as error:
        raise not_data_error(network, error, DefinitionFileError, "written in a file") from None


def _repeats(data: list[dict]) -> list[tuple[dict, int]]:
    """Runs of equal lines, each once with its count (``[line] * 3``)."""
    runs: list[tuple[dict, int]] = []
    keys: list[str] = []
    for item in data:
        key = json.dumps(item, sort_keys=True, default=repr)  # (1 == True == 1.0: compared as written)
        if keys and keys[-1] == key:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((item, 1))
            keys.append(key)
    return runs


def _network_class(network: nn.Module) -> str | None:
    """``network: Detector`` for a Network subclass built from its lines alone (or lines and outputs)."""
    from ..network import Network

    cls = type(network)
    if cls is Network:
        return None
    parameters = [p for p in inspect.signature(cls.__init__).parameters.values()][1:]
    required = [p.name for p in parameters if p.default is inspect.Parameter.empty]
    if required not in (["lines"], ["lines", "outputs"]):
        raise DefinitionFileError(
            f"{cls.__name__}(...) takes {', '.join(required[1:])} besides its lines, and a definition file holds"
            " lines (and outputs) only",
            allowed=f"build the network without what makes it a {cls.__name__} (googlenet(aux_logits=False)), or"
            " save_pretrained, which writes the builder that made it",
        )
    try:
        return reference(f"{cls.__module__}:{cls.__qualname__}", "value")
    except (NameProblem, NeurlinkError) as error:
        raise DefinitionFileError(f"{cls.__name__} cannot be named in a file: {error}") from None


def _follow_num_classes(made_by: tuple, data: list[dict]) -> dict[str, Any]:
    """``{"num_classes": n}`` with :class:`Param` put in ``data`` wherever the lines follow it: the
    values that change by as much as num_classes when the builder is called with other counts."""
    name, keywords, _ = made_by
    builder = _BUILDERS.get(name)
    parameter = inspect.signature(builder).parameters.get("num_classes") if builder is not None else None
    if builder is None or parameter is None:
        return {}
    count = keywords.get("num_classes", parameter.default)
    if not isinstance(count, int) or isinstance(count, bool):
        return {}
    others = []
    for step in _ALTERNATES:
        try:
            with torch.device("meta"):
                other = builder(**{**keywords, "num_classes": count + step})
            others.append(encode_lines(other.__dict__["_definition"][0], set()))
        except Exception:
            return {}  # the builder makes other lines for other counts: the counts stay numbers
    found = _substitute(data, others, count)
    return {"num_classes": count} if found else {}


def _substitute(data: Any, others: list[Any], count: int) -> int:
    """Put Params into ``data`` where ``others`` (for count + each alternate) differ by the alternate."""
    if len(data) != len(others[0]) or any(len(other) != len(data) for other in others):
        return 0
    places: list[tuple[Any, Any, int]] = []
    if not _differences(data, others, places, count):
        return 0
    for container, key, offset in places:
        container[key] = Param("num_classes", offset)
    return len(places)


def _differences(value: Any, others: list[Any], places: list, count: int) -> bool:
    """Collect (container, key, value - count) where the values differ as num_classes does; False where
    the structures differ otherwise."""
    items: Any
    if isinstance(value, dict):
        if any(not isinstance(o, dict) or o.keys() != value.keys() for o in others):
            return False
        items = value.items()
    elif isinstance(value, list):
        if any(not isinstance(o, list) or len(o) != len(value) for o in others):
            return False
        items = enumerate(value)
    else:
        return all(type(o) is type(value) and o == value for o in others)
    for key, item in items:
        inner = [o[key] for o in others]
        if isinstance(item, int) and not isinstance(item, bool) and all(type(i) is int for i in inner):
            steps = [i - item for i in inner]
            if steps == list(_ALTERNATES):
                places.append((value, key, item - count))
                continue
        if not _differences(item, inner, places, count):
            return False
    return True


def _builder_call(made_by: tuple) -> str:
    name, keywords, _ = made_by
    try:
        return f"{name}({', '.join(f'{k}={value_text(encode_value(v, set(), k))}' for k, v in keywords.items())})"
    except NotData:
        return f"{name}(...)"


# --- the documents ------------------------------------------------------------------------------------


def _yaml(document: dict, made_by: tuple | None, trusted: list[str]) -> str:
    out = []
    if made_by is not None:
        out.append(f"# {made_by[0]} of neurlink's zoo as its lines, written by neurlink {__version__} (net.to_file):")
        out.append("# edit them, and build them with neurlink.from_file(path).")
    if trusted:
        out.append(f"# Its classes in {', '.join(trusted)} are imported with from_file(path, trusted={trusted!r}).")
    for key, value in document.items():
        if value is None:
            continue
        if key == "params":
            out.append("params:")
            out += [f"  {name}: {yaml_scalar(item)}" for name, item in value.items()]
        elif key == "lines":
            out.append("lines:")
            out += [f"  - {yaml_text(text)}" for text in value]
        elif isinstance(value, dict):  # scales: one per line
            out.append(f"{key}:")
            out += [f"  {_yaml_flow(name)}: {_yaml_flow(item)}" for name, item in value.items()]
        else:
            out.append(f"{key}: {_yaml_flow(value)}")
    return "\n".join(out) + "\n"


def _yaml_flow(value: Any) -> str:
    """A value in YAML's flow style (``{width: 0.5, depth: 0.33}``, ``[p3, p4]``): strings as JSON
    writes them where a plain one would not read back inside braces."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml_flow(k)}: {_yaml_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_yaml_flow, value)) + "]"
    if value is None:
        return "null"
    if isinstance(value, str) and any(c in value for c in ",[]{}"):
        return json.dumps(value, ensure_ascii=False)
    return yaml_scalar(value)


def _json(document: dict) -> str:
    out = ["{"]
    entries = []
    for key, value in document.items():
        if value is None:
            continue
        if key == "lines":
            body = ",\n".join(f"    {json.dumps(text, ensure_ascii=False)}" for text in value)
            entries.append(f'  "lines": [\n{body}\n  ]')
        else:
            entries.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False, allow_nan=False)}")
    out.append(",\n".join(entries))
    out.append("}")
    return "\n".join(out) + "\n"


def _check_reads_back(network: nn.Module, text: str, kind: str, trusted: list[str], *, attributes: bool) -> None:
    """The text, read back on the meta device, makes the network's modules, tensors and (with
    ``attributes``) attributes."""
    try:
        again = from_text(text, kind, file="the written definition", trusted=trusted, device="meta")
    except NeurlinkError as error:
        raise DefinitionFileError(f"the written definition does not build again: {error}") from None
    difference = _first_difference(_layout(again), _layout(network))
    if difference is not None:
        raise DefinitionFileError(
            f"the network no longer matches its definition lines (a module was replaced or added after the build):"
            f" {difference[1]}",
            allowed="write a network as built (changing weights is fine), or build the changed definition",
        )
    built = dict(again.named_modules())
    for path, module in network.named_modules() if attributes else ():
        made = _attributes(built[path])
        for key, value in _attributes(module).items():
            if key not in made or not _same_value(made[key], value):
                raise DefinitionFileError(
                    f"module {path or '(the network)'!r}: its attribute {key!r} is {_short(value)}, but its line makes"
                    f" {_short(made.get(key))}: a definition file holds lines, not attributes set after the build",
                    allowed="save_pretrained, which records such attributes, or a line that makes the value",
                )
