"""The one exception family neurlink raises for a user's mistake.

A :class:`DefinitionError` is raised while a definition is built. It is created
where the mistake is found, without knowing which line it belongs to; every
builder it passes through on its way out adds its line, so the message ends up
naming the whole path (``line 5 ('layer2') > line 2``) and the line as written.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "did_you_mean",
    "NeurlinkError",
    "DefinitionError",
    "SelectorError",
    "DimsError",
    "NerveArgumentError",
    "UnexpectedArgumentError",
    "SelectorIndexError",
    "UnknownTagError",
    "SelectorTypeError",
    "InputError",
    "LineIndexError",
    "LineTagError",
    "LineTypeError",
    "ForwardError",
    "OutputError",
    "UnknownModelError",
    "StateDictError",
    "CheckpointError",
    "PretrainedError",
    "CheckpointNotFoundError",
]


def did_you_mean(name: str, candidates: Iterable[str], *, cutoff: float = 0.5) -> str:
    """``"; did you mean 'a' or 'b'?"`` for the names of ``candidates`` closest to ``name``, or ``""``.

    A name that differs only in case comes first (``Silu``: ``SiLU``, then ``silu``), the one whose first
    letter has the case ``name``'s has before the others: a capital starts a class's name, by Python's habit.

    >>> did_you_mean("Silu", ["elu", "glu", "silu", "SiLU"])
    "; did you mean 'SiLU' or 'silu' or 'glu'?"
    """
    text, names = str(name), list(dict.fromkeys(str(c) for c in candidates))
    same = [c for c in names if c.lower() == text.lower() and c != text]
    same.sort(key=lambda c: (c[:1] != text[:1], -difflib.SequenceMatcher(None, text, c).ratio()))
    close = [c for c in difflib.get_close_matches(text, names, n=3, cutoff=cutoff) if c not in same]
    shown = (same + close)[:3]
    return f"; did you mean {' or '.join(map(repr, shown))}?" if shown else ""


def a_kind(noun: str) -> str:
    """``noun`` after its article, for messages that name a type: ``"an int"``, ``"a float"``, ``"an Identity"``.

    >>> a_kind("int"), a_kind("list"), a_kind("UnetDecoderBlock")
    ('an int', 'a list', 'a UnetDecoderBlock')
    """
    sounds = ("unet", "unif", "union", "unit", "univ", "use", "usu", "uti")  # a "you" sound: a unit, a UnetBlock
    vowel = noun[:1].lower() in "aeiou" and not noun.lower().startswith(sounds)
    return f"{'an' if vowel else 'a'} {noun}"


class NeurlinkError(Exception):
    """Base class of every error neurlink raises because of what a user wrote or passed.

    An error found inside a line records where: builders (and a running network) call
    :meth:`locate` on its way out, innermost first, and the message starts with the whole line
    path (``line 5 ('layer2') > line 2``) and the innermost line as written.
    """

    def __init__(self, reason: str = "", *, allowed: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.allowed = allowed
        # (index, tag, line as written), outermost first
        self.where: list[tuple[int, str | None, str]] = []

    def locate(self, index: int, tag: str | None, written: str) -> None:
        """Record that the error happened in ``line index``; builders call this innermost first."""
        self.where.insert(0, (index, tag, written))

    @property
    def path(self) -> str:
        """The line path, e.g. ``line 5 ('layer2') > line 2``."""
        return " > ".join(f"line {index}" + (f" ({tag!r})" if tag is not None else "") for index, tag, _ in self.where)

    def __str__(self) -> str:
        message = self.reason
        if self.allowed:
            message += f"\n    allowed: {self.allowed}"
        if not self.where:
            return message
        written = self.where[-1][2]
        return f"{self.path}: {written}\n    {message}"

    def __reduce__(self) -> tuple[Any, ...]:  # keep the location when pickled (e.g. across DDP workers)
        return (_rebuild_error, (type(self), self.reason, self.allowed, self.where))


def _rebuild_error(cls: type[NeurlinkError], reason: str, allowed: str | None, where: list[Any]) -> NeurlinkError:
    error = cls(reason, allowed=allowed)
    error.where = list(where)
    return error


class DefinitionError(NeurlinkError):
    """A line of a definition is wrong. Raised by ``nv.build``, never at call time."""


class SelectorError(DefinitionError):
    """A selector names no line, a line that is not before this one, or has the wrong form."""


class DimsError(DefinitionError):
    """Declared dims (channels, shape) are malformed or cannot be produced from the inputs."""


class NerveArgumentError(DefinitionError):
    """A nerve was given an argument it does not take or a value it cannot use."""


class UnexpectedArgumentError(NerveArgumentError, TypeError):
    """A nerve or a builder was given an argument its signature does not take. Also a ``TypeError``,
    which is what Python raises for such a call."""


class SelectorIndexError(SelectorError, IndexError):
    """A selector's line index, or ``nv.output``'s output index, is out of range. Also an ``IndexError``."""


class UnknownTagError(SelectorError, KeyError):
    """A selector names a tag no earlier line has. Also a ``KeyError``."""

    tag: str | None = None  # the tag selected


class SelectorTypeError(SelectorError, TypeError):
    """A selector (or ``outputs=`` of ``nv.build``) of a type that names no line: a float, a bool, a
    tuple. Also a ``TypeError``."""


class InputError(NeurlinkError):
    """A built network was called with inputs that contradict its Input lines (or that no line
    can take, such as a size no stride reaches the declared size from)."""


class LineIndexError(InputError, IndexError):
    """``net[k]`` or ``outputs=[k]`` with a line index the network does not have. Also an ``IndexError``,
    as a ``Sequential`` raises."""


class LineTagError(InputError, KeyError):
    """``net["tag"]`` or ``outputs=["tag"]`` with a tag no line has. Also a ``KeyError``."""


class LineTypeError(InputError, TypeError):
    """``net[...]`` or ``outputs=...`` with a value that names no line (a float, a slice, None, a bare
    tag where a list is expected). Also a ``TypeError``."""


class OutputError(NeurlinkError):
    """A line's module returned another tensor than its line declares (checked on the first call of
    every input size, while the network is as built)."""


class ForwardError(NeurlinkError, RuntimeError):
    """An exception raised inside a line while a network ran, re-raised naming the line; the original
    exception is its ``__cause__``. Also a ``RuntimeError``, as most of torch's own errors are."""


class UnknownModelError(NeurlinkError, KeyError):
    """``create_model`` was given a name no builder is registered under. Also a ``KeyError``, as a
    registry lookup raises."""


class StateDictError(NeurlinkError):
    """A state_dict does not fit a model: a missing or unused key, or a tensor of the wrong shape."""


class CheckpointError(StateDictError, RuntimeError):
    """``net.load_state_dict`` was given a state_dict of another definition; lists the lines that differ.

    Also a ``RuntimeError``, which is what torch raises there, so existing handlers keep working.
    """


class PretrainedError(NeurlinkError):
    """A saved network (``config.json`` and ``model.safetensors``) cannot be written or read back: a
    value of its definition that is not data, a missing or damaged file, a config naming code that is
    not trusted. The message names the file (or the line) and the value."""


class CheckpointNotFoundError(PretrainedError, FileNotFoundError):
    """``from_pretrained`` was given a directory that does not exist. Also a ``FileNotFoundError``."""
