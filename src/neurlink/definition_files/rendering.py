"""Writing one line in the notation: the data ``_config`` encodes a line as, back into text a person reads.

The inverse of ``notation.py``: ``{"dims": [[64, 2]], "nerve": {"class": "neurlink.nerves:Conv2d_BN_ReLU",
"selector": -1, "tag": "stem", "args": [7]}}`` is ``(64, 2), Conv2d_BN_ReLU[-1, "stem"](7)``. Names
are the shortest that read back as the same object (``names.reference``), a torch module's
arguments leave out those equal to its constructor's defaults, and a parameter stands where the
file declares one (:class:`Param`).
"""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any

import torch
from torch import nn

from .. import _names
from .._config import NotData, Reader
from ..pretrained import _attributes, _layout, _same_value
from .names import LINE, VALUE, NameProblem, reference

__all__ = ["Param", "line_text", "value_text", "yaml_scalar", "yaml_text"]


class Param:
    """A declared parameter where a value was (``num_classes``), with ``offset`` added (``num_classes + 64``)."""

    def __init__(self, name: str, offset: int = 0) -> None:
        self.name, self.offset = name, offset

    def __repr__(self) -> str:  # what the repeat grouping compares
        return f"Param({self.name!r}, {self.offset})"

    @property
    def text(self) -> str:
        if self.offset == 0:
            return self.name
        return f"{self.name} {'+' if self.offset > 0 else '-'} {abs(self.offset)}"


def line_text(data: dict, repeat: int = 1) -> str:
    dims = ", ".join(f"({value_text(channels)}, {_shape_text(shape)})" for channels, shape in data["dims"])
    nerve = _call_text(data["nerve"], LINE) if "nerve" in data else _module_text(data["module"], LINE)
    return f"{dims}, {nerve}" + (f" * {repeat}" if repeat > 1 else "")


def _shape_text(shape: Any) -> str:
    if isinstance(shape, str) and shape.startswith("tokens("):
        return shape  # tokens(4) reads back as the text it makes
    return value_text(shape)


@functools.lru_cache(maxsize=4096)
def _name(path: str, place: str) -> str:
    try:
        return reference(path, place)
    except NameProblem as problem:
        raise NotData(path, problem.reason) from None


def _call_text(data: dict, place: str) -> str:
    head = _name(data["class"], place)
    if "selector" in data or "tag" in data:
        cls = _names.resolve(data["class"], (data["class"].partition(":")[0],))
        head += _selection_text(data.get("selector"), "selector" in data, data.get("tag"), cls)
    return f"{head}({_arguments_text(data.get('args', []), data.get('kwargs', {}))})"


def _selection_text(selector: Any, given: bool, tag: Any, cls: Any) -> str:
    if tag is None:
        return f"[{_key_text(selector)}]"
    if not given:  # the previous line: Input["x"], and Nerve[-1, "x"] for any other
        return f"[{value_text(tag)}]" if getattr(cls, "is_input", False) else f"[-1, {value_text(tag)}]"
    return f"[{_key_text(selector)}, {value_text(tag)}]"


def _key_text(selector: Any) -> str:
    if isinstance(selector, dict) and "slice" in selector:  # Concat["stem":4], as a key only
        start, stop, step = (None if part is None else value_text(part) for part in selector["slice"])
        return f"{start or ''}:{stop or ''}" + (f":{step}" if step is not None else "")
    return value_text(selector)


def _arguments_text(args: list, kwargs: dict) -> str:
    for key in kwargs:
        if not key.isidentifier():
            raise NotData(key, f"the keyword {key!r} is not a name a call can pass")
    return ", ".join([*(value_text(item) for item in args), *(f"{key}={value_text(v)}" for key, v in kwargs.items())])


def _module_text(data: dict, place: str) -> str:
    """A torch module as its class called with the arguments that make it: those that give the module
    it makes without them (its repr and attributes, made on the meta device) are left out."""
    kwargs = dict(data.get("kwargs", {}))
    full = _made(data)
    if full is not None:
        cls = type(full)
        try:
            parameters = inspect.signature(cls).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        for key in list(kwargs):
            if getattr(parameters.get(key), "default", inspect.Parameter.empty) is inspect.Parameter.empty:
                continue
            fewer = {k: v for k, v in kwargs.items() if k != key}
            made = _made({**data, "kwargs": fewer})
            if made is not None and _same_module(made, full):
                kwargs = fewer
    return f"{_name(data['class'], place)}({_arguments_text(data.get('args', []), kwargs)})"


def _made(data: dict) -> nn.Module | None:
    """The module ``data`` describes, made on the meta device as a file makes it (None if it is not made)."""
    try:
        with torch.device("meta"):
            return Reader((data["class"].partition(":")[0],), resolve=True).module(data, "module")
    except Exception:  # (a PretrainedError too): written with every argument
        return None


def _same_module(made: nn.Module, full: nn.Module) -> bool:
    mine, theirs = _attributes(made), _attributes(full)
    return (
        repr(made) == repr(full)
        and mine.keys() == theirs.keys()
        and all(_same_value(mine[key], theirs[key]) for key in mine)
        and _layout(made) == _layout(full)
    )


def value_text(data: Any) -> str:
    """A value as the notation writes it."""
    if isinstance(data, Param):
        return data.text
    if data is None or isinstance(data, bool):
        return repr(data)
    if isinstance(data, int):
        return str(data)
    if isinstance(data, float):
        return repr(data)
    if isinstance(data, str):
        return _string_text(data)
    if isinstance(data, list):
        return "[" + ", ".join(map(value_text, data)) + "]"
    ((key, inner),) = data.items()
    if key == "tuple":
        items = [value_text(item) for item in inner]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if key == "dict":
        return "{" + ", ".join(f"{_string_text(k)}: {value_text(v)}" for k, v in inner.items()) + "}"
    if key == "slice":
        return "slice(" + ", ".join(map(value_text, inner)) + ")"
    if key == "output":
        return f"output({value_text(inner[0])}, {value_text(inner[1])})"
    if key == "fraction":
        return f"Fraction({inner[0]}, {inner[1]})"
    if key == "float":
        return inner  # inf, -inf, nan
    if key == "dtype":
        return f"torch.{inner}"
    if key == "dims":
        return f"Dims({value_text(inner[0])}, {_shape_text(inner[1])})"
    if key == "shape":
        return f"Shape({_shape_text(inner)})"
    if key == "object":
        return _name(inner, VALUE)
    if key == "partial":
        arguments = _arguments_text([inner["func"], *inner.get("args", [])], inner.get("kwargs", {}))
        return f"partial({arguments})"
    if key == "nerve":
        return _call_text(inner, VALUE)
    if key == "module":
        return _module_text(inner, VALUE)
    raise NotData(data, f"{key!r} is not a kind of value the notation writes")


def _string_text(text: str) -> str:
    """A string literal in double quotes where that is plain (as the files are written by hand)."""
    written = repr(text)
    if written.startswith("'") and '"' not in text:
        written = '"' + written[1:-1].replace("\\'", "'") + '"'
    return written


def yaml_scalar(value: Any) -> str:
    """A number, bool or string as YAML writes it, read back by PyYAML (YAML 1.1) as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text.replace("e", ".0e") if "e" in text and "." not in text else text  # YAML 1.1 wants the dot
    return yaml_text(str(value))


def yaml_text(text: str) -> str:
    """A string as a plain YAML scalar where it reads back as itself, else in double quotes (JSON's)."""
    plain = (
        text
        and text == text.strip()
        and text[0] not in "-?:,[]{}#&*!|>'\"%@`"
        and ": " not in text
        and " #" not in text
        and not text.endswith(":")
        and text.isprintable()
        and not any(c in text for c in "\t")
    )
    if plain:
        import yaml

        from .documents import NUMBER_LIKE  # (1e-3: text to PyYAML, but refused by the reader as a number)

        if yaml.safe_load(f"- {text}") == [text] and not NUMBER_LIKE.match(text):
            return text
    return json.dumps(text, ensure_ascii=False)
