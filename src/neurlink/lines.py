"""Parsing one definition line into a :class:`LineSpec`.

A line is ``(dims_1, ..., dims_n, nerve)``: the dims of each output, then either a
deferred nerve definition (``Conv2d(3)``, ``Add[[1, 2], "sum"]()``) or a plain
``nn.Module`` that takes the previous line's output.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NoReturn

from torch import nn

from .errors import DefinitionError, DimsError, NeurlinkError, SelectorError
from .shapes import Dims

__all__ = [
    "PREVIOUS",
    "NerveDef",
    "SelectedNerve",
    "OutputOf",
    "output",
    "LineSpec",
    "parse_line",
    "flatten",
    "written",
]


class _Previous:
    """The selector of a line that names none: the previous line."""

    def __repr__(self) -> str:
        return "PREVIOUS"

    def __reduce__(self) -> str:
        return "PREVIOUS"


PREVIOUS = _Previous()


class OutputOf:
    """Selects output ``index`` of a multi-output line (see :func:`output`)."""

    __slots__ = ("selector", "index")

    def __init__(self, selector: int | str, index: int) -> None:
        if isinstance(selector, (list, slice, OutputOf)) or selector is None:
            raise SelectorError(
                f"output({selector!r}, {index!r}) must name one line",
                allowed="output(line, k) with line an int index or a tag",
            )
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise SelectorError(
                f"output({selector!r}, {index!r}): the output index must be an int >= 0",
                allowed="output(line, k) with k the zero-based output of that line",
            )
        self.selector = selector
        self.index = index

    def __repr__(self) -> str:
        return f"output({self.selector!r}, {self.index})"


def output(line: int | str, index: int) -> OutputOf:
    """Select one output of a multi-output line: ``nv.Add[[nv.output("heads", 1), -1]]()``.

    Selecting a multi-output line without ``output`` passes all its outputs together, as a tuple.
    """
    return OutputOf(line, index)


class NerveDef:
    """A deferred nerve: what ``Conv2d(3)`` or ``Conv2d[sel, tag](3)`` records.

    The module is made only when the line is built, so one definition repeated in
    ``[line] * 3`` gives three modules with their own parameters.
    """

    __slots__ = ("cls", "args", "kwargs", "selector", "tag")

    def __init__(
        self,
        cls: type[nn.Module],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        selector: Any = PREVIOUS,
        tag: str | None = None,
    ) -> None:
        self.cls = cls
        self.args = args
        self.kwargs = kwargs
        self.selector = selector
        self.tag = tag

    def __repr__(self) -> str:
        head = self.cls.__name__
        if self.selector is not PREVIOUS or self.tag is not None:
            if self.tag is None:
                head += f"[{_fmt(self.selector)}]"
            else:
                selector = "" if self.selector is PREVIOUS else _fmt(self.selector) + ", "
                head += f"[{selector}{self.tag!r}]"
        arguments = [_fmt(a) for a in self.args] + [f"{k}={_fmt(v)}" for k, v in self.kwargs.items()]
        return f"{head}({', '.join(arguments)})"

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NeurlinkError(
            f"{self!r} is a definition, not a layer: it records what a line makes and is built by nv.build."
            f" Put it in a line, e.g. nv.build([((3, 1), nv.Input()), ((16, 2), {self!r})]), and call the network"
        )


class SelectedNerve:
    """``Conv2d[selector, tag]``: a nerve class with its inputs chosen, waiting for its arguments."""

    __slots__ = ("cls", "selector", "tag")

    def __init__(self, cls: type[nn.Module], key: Any) -> None:
        self.cls = cls
        if isinstance(key, tuple) and len(key) == 2:
            self.selector, self.tag = key
        elif getattr(cls, "is_input", False) and isinstance(key, str):
            self.selector, self.tag = PREVIOUS, key  # Input["x"] can only mean a tag
        else:
            self.selector, self.tag = key, None

    def __call__(self, *args: Any, **kwargs: Any) -> NerveDef:
        return NerveDef(self.cls, args, kwargs, self.selector, self.tag)

    def __repr__(self) -> str:
        return repr(NerveDef(self.cls, (), {}, self.selector, self.tag))[:-2]


def _fmt(value: Any) -> str:
    """Short source-like text of an argument: classes by name, slices with colons."""
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return getattr(value, "__name__", repr(value))
    if isinstance(value, slice):
        parts = [
            _fmt(value.start) if value.start is not None else "",
            _fmt(value.stop) if value.stop is not None else "",
        ]
        if value.step is not None:
            parts.append(_fmt(value.step))
        return ":".join(parts)
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, functools.partial):  # norm=partial(BatchNorm2d, eps=0.001), not its <class ...> repr
        arguments = [_fmt(value.func), *map(_fmt, value.args), *(f"{k}={_fmt(v)}" for k, v in value.keywords.items())]
        return f"partial({', '.join(arguments)})"
    if isinstance(value, nn.Module):
        return _module_text(value)
    return repr(value)


def _module_text(module: nn.Module) -> str:
    text = repr(module)
    return text if "\n" not in text else f"{type(module).__name__}(...)"


@dataclass(frozen=True)
class LineSpec:
    """One parsed line: the declared dims of each output, and what makes them."""

    dims: tuple[Dims, ...]
    nerve: Any  # NerveDef or nn.Module
    written: str

    @property
    def tag(self) -> str | None:
        return self.nerve.tag if isinstance(self.nerve, NerveDef) else None

    @property
    def selector(self) -> Any:
        return self.nerve.selector if isinstance(self.nerve, NerveDef) else PREVIOUS


def written(line: Any) -> str:
    """The line as the user wrote it (best effort even for a malformed line)."""
    if isinstance(line, tuple):
        inner = ", ".join(_module_text(x) if isinstance(x, nn.Module) else _written_item(x) for x in line)
        return f"({inner}{',' if len(line) == 1 else ''})"
    return _module_text(line) if isinstance(line, nn.Module) else _written_item(line)


def _written_item(value: Any) -> str:
    if isinstance(value, type):
        return value.__name__  # ``nv.Conv2d`` shows as Conv2d
    if isinstance(value, tuple):  # a dims pair computed by a nerve: its ratio as the number it is
        return "(" + ", ".join(map(_written_item, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        return repr(float(value)) if Fraction(float(value)) == value else repr(value)
    return repr(value)


_LINE_FORM = "((channels, shape), ..., Nerve(...)), e.g. ((64, 2), nv.Conv2d_BN_ReLU(7))"


def parse_line(line: Any) -> LineSpec:
    """Check the form of one line and parse its dims. Raises DefinitionError (not yet located)."""
    text = written(line)
    if not isinstance(line, tuple) or len(line) < 2:
        raise DefinitionError("a line must be a tuple of one or more dims followed by a nerve", allowed=_LINE_FORM)
    *raw_dims, nerve = line
    if isinstance(nerve, type) and issubclass(nerve, nn.Module):
        raise DefinitionError(
            f"{nerve.__name__} is a class, not a definition: call it, e.g. {nerve.__name__}(...)",
            allowed=_LINE_FORM,
        )
    if isinstance(nerve, SelectedNerve):
        raise DefinitionError(f"{nerve!r} is not called: write {nerve!r}(...)", allowed=_LINE_FORM)
    if not isinstance(nerve, (NerveDef, nn.Module)):
        if any(isinstance(x, (NerveDef, SelectedNerve, nn.Module)) for x in raw_dims):
            raise DefinitionError("the nerve must be the last element of its line, after the dims", allowed=_LINE_FORM)
        raise DefinitionError(
            f"the last element {nerve!r} is neither a nerve definition nor an nn.Module", allowed=_LINE_FORM
        )
    dims = []
    for raw in raw_dims:
        if isinstance(raw, NerveDef):
            raise DimsError("a nerve definition must be the last element of its line", allowed=_LINE_FORM)
        dims.append(Dims.parse(raw))
    return LineSpec(tuple(dims), nerve, text)


def flatten(lines: Iterable[Any]) -> Iterator[Any]:
    """Lines in order, with nested lists expanded (``[line] * 3`` is three lines)."""
    for line in lines:
        if isinstance(line, list):
            yield from flatten(line)
        else:
            yield line
