"""A definition as JSON data: the lines of a network, or the zoo builder and keywords that made it.

``config.json`` holds ``format``, ``format_version``, ``neurlink_version``, ``dtype`` and either
``model`` (``{"name": "resnet18", "keywords": {"num_classes": 10}}``) or ``lines`` and ``outputs``.
A line is ``{"dims": [[64, 2]], "nerve": {...}}`` or ``{"dims": [...], "module": {...}}``, and
every value in it is written as

| value | JSON |
|---|---|
| None, bool, int, str, a finite float, a list | itself (a list as an array) |
| tuple, dict (str keys), slice | ``{"tuple": [...]}``, ``{"dict": {...}}``, ``{"slice": [start, stop, step]}`` |
| ``nv.output(line, k)``, ``Fraction``, inf / nan | ``{"output": [line, k]}``, ``{"fraction": [n, d]}``, ``{"float": "inf"}`` |
| ``torch.float16``, dims, a shape | ``{"dtype": "float16"}``, ``{"dims": [channels, shape]}``, ``{"shape": written}`` |
| a class or function | ``{"object": "torch.nn:SiLU"}`` (see ``_names.py``) |
| ``functools.partial(f, *a, **k)`` | ``{"partial": {"func": f, "args": [...], "kwargs": {...}}}`` |
| a nerve definition ``Cls[sel, tag](*a, **k)`` | ``{"nerve": {"class": ..., "selector": ..., "tag": ..., "args": [...], "kwargs": {...}}}`` |
| a plain module | ``{"module": {"class": ..., "args": [...], "kwargs": {...}}}``, arguments from ``_module_args.py`` |

Reading never evaluates anything: every JSON value is checked against this table (unknown keys,
wrong types and nesting deeper than ``MAX_DEPTH`` are errors naming where they are), and a name is
imported only under the rule of ``_names.py``, after every name of the file has passed it.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Set
from fractions import Fraction
from typing import Any, NoReturn

import torch
from torch import nn

from . import _names
from ._module_args import module_arguments
from .errors import DimsError, PretrainedError, a_kind
from .lines import PREVIOUS, NerveDef, OutputOf, flatten
from .nerve import Nerve
from .shapes import Dims, ShapeSpec

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "MAX_DEPTH",
    "encode_lines",
    "encode_value",
    "Reader",
    "keeps_no_locals",
]

FORMAT = "neurlink"
FORMAT_VERSION = 2  # 2: weights_id, the save that pairs config.json with its weights
READABLE_VERSIONS = (1, 2)
MAX_DEPTH = 64  # values nest this deep at most (a definition nests a few levels)
MAX_DEFINITION_BYTES = 4 * 2**20  # a definition file is kilobytes; one of megabytes is not one
_MAX_LIST = 1_000_000  # items of one array
# Limits a real network never meets, checked as a file is read, before anything is built: a config of a
# few hundred kilobytes could otherwise ask for millions of links or modules (minutes, gigabytes)
MAX_LINES = 10_000  # lines of one definition (resnet152 has 55; an unrolled transformer a few thousand)
MAX_LINKS_PER_LINE = 1_000  # lines one line selects
MAX_LINKS = 100_000  # selections in all
MAX_STRING = 10_000  # characters of one string (a shape string is a few)
MAX_INT = 2**40  # magnitude of an integer value (dims, sizes, counts)
_NOT_FROM_A_FILE = ("device", "dtype")  # where tensors go is the loader's to say (from_pretrained(device=))
_DTYPES = {str(dtype).removeprefix("torch."): dtype for dtype in vars(torch).values() if isinstance(dtype, torch.dtype)}


class NotData(Exception):
    """A value that cannot be written as data: ``where`` it is (``act``, ``args[1]``) and why."""

    def __init__(self, value: Any, reason: str, where: str = "") -> None:
        super().__init__(reason)
        self.value, self.reason, self.where = value, reason, where
        self.line: int | None = None  # the index of the line it is in, once known


# --- writing ------------------------------------------------------------------------------------


def encode_lines(lines, names: set[str]) -> list[dict]:
    """Lines as JSON data, collecting every import path in ``names``; ``NotData`` with ``.line`` set."""
    encoded = []
    for index, line in enumerate(flatten(lines)):
        try:
            encoded.append(_encode_line(line, names))
        except NotData as error:
            error.line = index
            raise
    return encoded


def _encode_line(line, names: set[str]) -> dict:
    *dims, nerve = line
    written = [_encode_dims(Dims.parse(d)) for d in dims]
    if isinstance(nerve, NerveDef):
        return {"dims": written, "nerve": _encode_nerve(nerve, names)}
    return {"dims": written, "module": _encode_module(nerve, names)}


def _encode_dims(dims: Dims) -> list:
    return [dims.channels, encode_value(dims.shape.written, set())]


def _encode_nerve(nerve: NerveDef, names: set[str]) -> dict:
    data: dict = {"class": _object_name(nerve.cls, names, "the nerve")}
    if nerve.selector is not PREVIOUS:
        data["selector"] = encode_value(nerve.selector, names, "selector")
    if nerve.tag is not None:
        data["tag"] = encode_value(nerve.tag, names, "tag")
    data.update(_encode_arguments(nerve.args, nerve.kwargs, names))
    return data


def _encode_module(module: nn.Module, names: set[str]) -> dict:
    try:
        args, kwargs = module_arguments(module)
    except ValueError as error:
        raise NotData(module, str(error), "the module") from None
    return {"class": _object_name(type(module), names, "the module"), **_encode_arguments(args, kwargs, names)}


def _encode_arguments(args, kwargs, names: set[str]) -> dict:
    data: dict = {}
    if args:
        data["args"] = [encode_value(value, names, f"args[{k}]") for k, value in enumerate(args)]
    if kwargs:
        data["kwargs"] = {key: encode_value(value, names, key) for key, value in kwargs.items()}
    return data


def _object_name(value, names: set[str], where: str) -> str:
    try:
        name = _names.name_of(value)
    except ValueError as error:
        raise NotData(value, str(error), where) from None
    names.add(name)
    return name


def encode_value(value, names: set[str], where: str = "value", depth: int = 0) -> object:
    """One value as JSON data (the table above); ``NotData`` naming where it is and why."""
    if depth > MAX_DEPTH:
        raise NotData(value, f"nests deeper than {MAX_DEPTH} levels", where)

    def inner(item, suffix: str):
        return encode_value(item, names, where + suffix, depth + 1)

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float) or isinstance(value, numbers.Real) and not isinstance(value, numbers.Rational):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, Fraction):
        return {"fraction": [value.numerator, value.denominator]}
    if isinstance(value, list):
        return [inner(item, f"[{k}]") for k, item in enumerate(value)]
    if isinstance(value, tuple) and type(value) is tuple:
        return {"tuple": [inner(item, f"[{k}]") for k, item in enumerate(value)]}
    if isinstance(value, dict) and type(value) is dict:
        if not all(isinstance(key, str) for key in value):
            raise NotData(value, "a dict is written with string keys only", where)
        return {"dict": {key: inner(item, f"[{key!r}]") for key, item in value.items()}}
    if isinstance(value, slice):
        return {"slice": [inner(value.start, ".start"), inner(value.stop, ".stop"), inner(value.step, ".step")]}
    if isinstance(value, OutputOf):
        return {"output": [inner(value.selector, ".line"), value.index]}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, Dims):
        return {"dims": _encode_dims(value)}
    if isinstance(value, ShapeSpec):
        return {"shape": inner(value.written, "")}
    if isinstance(value, NerveDef):
        return {"nerve": _encode_nerve(value, names)}
    if isinstance(value, functools.partial) and type(value) is functools.partial:
        data = {"func": inner(value.func, ".func")}
        data.update(_encode_arguments(value.args, value.keywords, names))
        return {"partial": data}
    if isinstance(value, nn.Module):
        return {"module": _encode_module(value, names)}
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return {"object": _object_name(value, names, where)}
    raise NotData(value, f"{a_kind(type(value).__name__)} is not data neurlink writes", where)


def keeps_no_locals(value, depth: int = 0) -> bool:
    """Whether a definition holds no lambda or local class (which pickle cannot write either)."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, (list, tuple)):
        return all(keeps_no_locals(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(keeps_no_locals(item, depth + 1) for item in value.values())
    if isinstance(value, NerveDef):
        return keeps_no_locals((value.cls, value.args, value.kwargs, value.selector), depth + 1)
    if isinstance(value, functools.partial):
        return keeps_no_locals((value.func, value.args, value.keywords), depth + 1)
    if isinstance(value, nn.Module):
        value = type(value)
    qualname = getattr(value, "__qualname__", "") if callable(value) else ""
    return not isinstance(qualname, str) or "<lambda>" not in qualname and "<locals>" not in qualname


# --- reading ------------------------------------------------------------------------------------


class Reader:
    """Reads values and lines back. With ``resolve=False`` it only checks (names included, against
    ``trusted``, importing nothing); with ``resolve=True`` it imports and builds the values."""

    def __init__(self, trusted: tuple[str, ...], *, resolve: bool) -> None:
        self.trusted = trusted
        self.resolve = resolve

    # errors name where in the file a value is: lines[3].nerve.kwargs.act
    @staticmethod
    def fail(where: str, reason: str, allowed: str | None = None) -> NoReturn:
        raise PretrainedError(f"{where}: {reason}", allowed=allowed)

    def name(self, data, where: str):
        try:
            if not self.resolve:
                _names.check(data, self.trusted)
                return None
            return _names.resolve(data, self.trusted)
        except PretrainedError as error:
            raise PretrainedError(f"{where}: {error.reason}", allowed=error.allowed) from None

    def obj(self, data, keys: set[str], where: str, required: Set[str] = frozenset()) -> dict:
        if not isinstance(data, dict):
            self.fail(where, f"expected an object, got {_kind(data)}")
        unknown = sorted(set(data) - keys)
        if unknown:
            self.fail(where, f"unknown key {unknown[0]!r}", allowed=", ".join(sorted(keys)))
        missing = sorted(required - set(data))
        if missing:
            self.fail(where, f"the key {missing[0]!r} is missing")
        return data

    def array(self, data, where: str, length: int | None = None) -> list:
        if not isinstance(data, list) or len(data) > _MAX_LIST:
            self.fail(where, f"expected an array, got {_kind(data)}")
        if length is not None and len(data) != length:
            self.fail(where, f"expected an array of {length}, got {len(data)} items")
        return data

    def integer(self, data, where: str) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail(where, f"expected an integer, got {_kind(data)}")
        if abs(data) > MAX_INT:
            self.fail(where, f"an integer of {len(str(data))} digits, larger than any size or count")
        return data

    def lines(self, data, where: str = "lines") -> list:
        data = self.array(data, where)
        if len(data) > MAX_LINES:
            self.fail(where, f"{len(data):,} lines; a definition read from a file has at most {MAX_LINES:,}")
        links = 0
        for k, item in enumerate(data):  # (a selection of every earlier line by each line is quadratic)
            count = _selected(item, k)
            if count > MAX_LINKS_PER_LINE:
                self.fail(
                    f"{where}[{k}]",
                    f"selects {count:,} lines; a line read from a file selects at most {MAX_LINKS_PER_LINE:,}",
                )
            links += count
            if links > MAX_LINKS:
                self.fail(where, f"selects more than {MAX_LINKS:,} lines in all (by line {k}), more than any network")
        return [self.line(item, f"{where}[{k}]") for k, item in enumerate(data)]

    def line(self, data, where: str) -> tuple:
        data = self.obj(data, {"dims", "nerve", "module"}, where, {"dims"})
        if ("nerve" in data) == ("module" in data):
            self.fail(where, "a line has one of 'nerve' and 'module'")
        dims = tuple(self.dims(item, f"{where}.dims[{k}]") for k, item in enumerate(self.array(data["dims"], where)))
        if "nerve" in data:
            return (*dims, self.nerve(data["nerve"], f"{where}.nerve"))
        return (*dims, self.module(data["module"], f"{where}.module"))

    def dims(self, data, where: str) -> tuple:
        channels, shape = self.array(data, where, 2)
        return (self.integer(channels, f"{where}[0]"), self.value(shape, f"{where}[1]", 1))

    def arguments(self, data: dict, where: str, depth: int, torch_call: bool = False) -> tuple[tuple, dict]:
        """A call's arguments; ``torch_call`` for a module or a ``partial`` (a nerve's own keywords, such as
        an Input's ``dtype``, are the nerve's to read)."""
        args = self.array(data.get("args", []), f"{where}.args")
        kwargs = data.get("kwargs", {})
        if not isinstance(kwargs, dict):
            self.fail(f"{where}.kwargs", f"expected an object, got {_kind(kwargs)}")
        for key in _NOT_FROM_A_FILE if torch_call else ():
            if key in kwargs:  # "device": "cpu" would allocate during the shape-only (meta) build
                self.fail(
                    f"{where}.kwargs.{key}",
                    f"a file does not choose its tensors' {key}",
                    allowed=f"no {key} keyword: from_pretrained(path, device=...) places the network, and the"
                    " weights give its dtype",
                )
        return (
            tuple(self.value(item, f"{where}.args[{k}]", depth + 1) for k, item in enumerate(args)),
            {key: self.value(item, f"{where}.kwargs.{key}", depth + 1) for key, item in kwargs.items()},
        )

    def nerve(self, data, where: str, depth: int = 0) -> NerveDef | None:
        data = self.obj(data, {"class", "selector", "tag", "args", "kwargs"}, where, {"class"})
        cls = self.name(data["class"], f"{where}.class")
        if self.resolve and not (isinstance(cls, type) and issubclass(cls, Nerve)):
            self.fail(f"{where}.class", f"{data['class']!r} is not a nerve class")
        selector = self.value(data["selector"], f"{where}.selector", depth + 1) if "selector" in data else PREVIOUS
        tag = data.get("tag")
        if tag is not None and not isinstance(tag, str):
            self.fail(f"{where}.tag", f"a tag is a string, got {_kind(tag)}")
        args, kwargs = self.arguments(data, where, depth)
        return NerveDef(cls, args, kwargs, selector, tag) if self.resolve else None

    def module(self, data, where: str, depth: int = 0) -> nn.Module | None:
        data = self.obj(data, {"class", "args", "kwargs"}, where, {"class"})
        cls = self.name(data["class"], f"{where}.class")
        if self.resolve and not (isinstance(cls, type) and issubclass(cls, nn.Module) and not issubclass(cls, Nerve)):
            self.fail(f"{where}.class", f"{data['class']!r} is not a module class (a nerve is written as 'nerve')")
        args, kwargs = self.arguments(data, where, depth, torch_call=True)
        if not self.resolve:
            return None
        self._no_placement(cls, args, kwargs, where)
        try:
            return cls(*args, **kwargs)
        except Exception as error:
            self.fail(where, f"{cls.__name__}(...) raised {type(error).__name__}: {error}")

    def _no_placement(self, func: Any, args: tuple, kwargs: dict, where: str) -> None:
        """``device`` or ``dtype`` given by position (``Linear(20000, 10000, True, "cpu")``): refused as by keyword."""
        try:
            given = inspect.signature(func).bind_partial(*args, **kwargs).arguments
        except (TypeError, ValueError):
            return  # the call itself raises it
        for key in _NOT_FROM_A_FILE:
            if given.get(key) is not None:  # (None: the default, the loader's choice)
                self.fail(f"{where}.args", f"a file does not choose its tensors' {key} (given by position here)")

    def value(self, data, where: str, depth: int = 0):
        if depth > MAX_DEPTH:
            self.fail(where, f"values nest deeper than {MAX_DEPTH} levels")
        if isinstance(data, str) and len(data) > MAX_STRING:
            self.fail(where, f"a string of {len(data):,} characters; a definition's are at most {MAX_STRING:,}")
        if isinstance(data, int) and not isinstance(data, bool) and abs(data) > MAX_INT:
            self.fail(where, f"an integer of {len(str(data))} digits, larger than any size or count")
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if isinstance(data, list):
            return [self.value(item, f"{where}[{k}]", depth + 1) for k, item in enumerate(self.array(data, where))]
        if not isinstance(data, dict) or len(data) != 1:
            self.fail(where, f"expected a value, got {_kind(data)}", allowed=_VALUE_KEYS)
        (key, inner), nested = next(iter(data.items())), depth + 1
        if key == "tuple":
            return tuple(self.value(item, f"{where}[{k}]", nested) for k, item in enumerate(self.array(inner, where)))
        if key == "dict":
            items = self.obj(inner, set(inner) if isinstance(inner, dict) else set(), where)
            return {name: self.value(item, f"{where}.{name}", nested) for name, item in items.items()}
        if key == "slice":
            start, stop, step = (self.value(v, f"{where}.slice", nested) for v in self.array(inner, where, 3))
            return slice(start, stop, step)
        if key == "output":
            line, index = self.array(inner, where, 2)
            line = self.value(line, f"{where}.output", nested)
            try:
                return OutputOf(line, index)
            except PretrainedError:
                raise
            except Exception as error:
                self.fail(where, str(error))
        if key == "fraction":
            numerator, denominator = (self.integer(v, f"{where}.fraction") for v in self.array(inner, where, 2))
            if denominator == 0:
                self.fail(where, "a fraction with denominator 0")
            return Fraction(numerator, denominator)
        if key == "float":
            if inner not in ("inf", "-inf", "nan"):
                self.fail(where, f"{inner!r} is not 'inf', '-inf' or 'nan'")
            return float(inner)
        if key == "dtype":
            if not isinstance(inner, str) or inner not in _DTYPES:
                self.fail(where, f"{inner!r} is not a torch dtype")
            return _DTYPES[inner]
        if key in ("dims", "shape"):
            written = (
                self.dims(inner, f"{where}.dims") if key == "dims" else self.value(inner, f"{where}.shape", nested)
            )
            try:
                return (Dims(*written) if key == "dims" else ShapeSpec(written)) if self.resolve else None
            except DimsError as error:
                self.fail(where, error.reason)
        if key == "object":
            return self.name(inner, f"{where}.object")
        if key == "partial":
            inner = self.obj(inner, {"func", "args", "kwargs"}, f"{where}.partial", {"func"})
            func = self.value(inner["func"], f"{where}.partial.func", nested)
            args, kwargs = self.arguments(inner, f"{where}.partial", nested, torch_call=True)
            if not self.resolve:
                return None
            if not callable(func):
                self.fail(f"{where}.partial.func", f"{func!r} is not callable")
            self._no_placement(func, args, kwargs, f"{where}.partial")
            return functools.partial(func, *args, **kwargs)
        if key == "nerve":
            return self.nerve(inner, f"{where}.nerve", nested)
        if key == "module":
            return self.module(inner, f"{where}.module", nested)
        self.fail(where, f"unknown value kind {key!r}", allowed=_VALUE_KEYS)


_VALUE_KEYS = "null, true/false, numbers, strings, arrays, or an object of one key: " + ", ".join(
    (
        "tuple",
        "dict",
        "slice",
        "output",
        "fraction",
        "float",
        "dtype",
        "dims",
        "shape",
        "object",
        "partial",
        "nerve",
        "module",
    )
)


def _selected(line, index: int) -> int:
    """About how many lines a line in a file selects (an upper bound: a slice counts every earlier line)."""
    nerve = line.get("nerve") if isinstance(line, dict) else None
    selector = nerve.get("selector") if isinstance(nerve, dict) else None
    return _selector_size(selector, index, 0)


def _selector_size(data, index: int, depth: int) -> int:
    if depth > MAX_DEPTH:
        return 0  # refused when the value is read
    if isinstance(data, list):
        return sum(_selector_size(item, index, depth + 1) for item in data)
    if isinstance(data, dict) and "slice" in data:
        return index
    return 1


def _kind(data) -> str:
    if isinstance(data, dict):
        return "an object with keys " + ", ".join(map(repr, list(data)[:5])) if data else "an empty object"
    if isinstance(data, list):
        return f"an array of {len(data)}"
    text = repr(data)
    return f"{type(data).__name__} {text if len(text) <= 60 else text[:60] + '...'}"
