"""A network built from a file keeps the file: ``to_file`` and ``save_pretrained`` write it back as it was written.

``from_file`` records the file's text on the network it builds, with the keywords it was read with
(``num_classes=10``, ``scale="s"``). Writing the network then gives the person's file again, its
comments, parameters and scales kept, where only the values that made this network change: each
parameter set by keyword becomes its default in the text, and the chosen scale the file's
``scale:``. Reading the written file without keywords builds the same network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from torch import nn

from .documents import Node, read_document
from .rendering import yaml_scalar

__all__ = ["FileSource", "keep_source", "source_of", "edited_text"]


@dataclass(frozen=True)
class FileSource:
    """The text a network was read from, and what ``from_file`` was told besides it."""

    text: str
    kind: str  # "yaml" or "json"
    file: str  # where it was read from, as errors name it
    params: tuple[tuple[str, Any], ...]  # the parameters set by keyword, in the order given
    scale: str | None  # the scale chosen by keyword
    trusted: tuple[str, ...]  # the modules it was read with


def keep_source(network: nn.Module, source: FileSource) -> None:
    object.__setattr__(network, "_definition_file", source)  # (plain data: pickled and copied with the network)


def source_of(network: nn.Module) -> FileSource | None:
    source = network.__dict__.get("_definition_file")
    return source if isinstance(source, FileSource) else None


def values_of(source: FileSource) -> tuple[Node, dict[str, Any], str | None]:
    """The file's tree, the parameters' values the network was built with, and its scale (None: the file's own)."""
    root = read_document(source.text, source.file, source.kind)
    declared = root.value.get("params")
    params = {name: node.value for name, node in declared.value.items()} if declared is not None else {}
    for name, value in source.params:  # (an int given for a float stays a float: 1 is written 1.0)
        params[name] = float(value) if type(params[name]) is float and type(value) is int else value
    return root, params, source.scale


def edited_text(source: FileSource) -> str | None:
    """The file's own text with the keywords it was read with written in as its defaults; None where
    the file is not laid out for an edit in place (a YAML mapping in braces that a line must go into)."""
    root, params, scale = values_of(source)
    starts = [0] + [k + 1 for k, c in enumerate(source.text) if c == "\n"]

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    edits: list[tuple[int, int, str]] = []  # (start, end, the text in their place)
    declared = root.value.get("params")
    for name, node in declared.value.items() if declared is not None else ():
        value = params[name]
        if type(node.value) is type(value) and node.value == value:
            continue
        assert node.end is not None  # a parameter's default is a scalar
        edits.append((offset(node.line, node.column), offset(*node.end), _scalar(value, source.kind)))
    written = root.value.get("scale")
    if scale is not None and (written is None or written.value != scale):  # (chosen by keyword: written out)
        if written is not None and written.end is not None:
            edits.append((offset(written.line, written.column), offset(*written.end), _scalar(scale, source.kind)))
        else:  # a line of its own before lines:
            key = root.keys["lines"]
            if source.kind == "json":
                edits.append((offset(key.line, key.column),) * 2 + (f'"scale": {json.dumps(scale)}, ',))
            elif key.column == 1:
                edits.append((offset(key.line, 1),) * 2 + (f"scale: {yaml_scalar(scale)}\n",))
            else:
                return None
    text = source.text
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _scalar(value: Any, kind: str) -> str:
    return json.dumps(value, ensure_ascii=False) if kind == "json" else yaml_scalar(value)
