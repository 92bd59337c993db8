"""The errors of definition files: each names the file, its line and column, then the line as written.

A mistake found while the file is read (its YAML, a name, a parameter) is a :class:`DefinitionFileError`.
A mistake the build finds in a line (dims that do not fit, a tag that names no earlier line) keeps its
class (a ``DimsError``, an ``UnknownTagError``, which is also a ``KeyError``) and is raised as a copy
that is a ``DefinitionFileError`` too, with the file's place in front of the message:

.. code-block:: text

    net.yaml:4:5: line 2: (8, 3), Conv2d(3)
        ratio 1 -> 3 ...

So does a mistake the network's checks find on a call (a line's module returning other dims than the
line declares, an ``OutputError``): the network read from a file carries where each line is written
(:data:`FilePlaces`) and the core asks :func:`placed` for the copy.
"""

from __future__ import annotations

from typing import Any

from ..errors import NeurlinkError

__all__ = ["DefinitionFileError", "DefinitionFileNotFoundError", "FilePlaces", "in_file", "at_place", "placed"]

# Where each line of a definition is written in its file, as plain data (a network read from the file
# carries it through pickling and deepcopy): the file's name, then one item per line of ``lines:`` (``* n``
# writes n definition lines) of the index of its first definition line, how many it writes, the file's
# line and column of its text, that text, and a note for its errors (what a scale made of its numbers).
FilePlaces = tuple[str, tuple[tuple[int, int, int, int, str, str], ...]]


class DefinitionFileError(NeurlinkError):
    """A definition file (``.yaml``, ``.yml``, ``.json``) cannot be read, built or written: the message
    starts with ``file:line:column`` and shows the file's line as written."""

    def __init__(
        self,
        reason: str = "",
        *,
        allowed: str | None = None,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        source: str | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(reason, allowed=allowed)
        self.file = file
        self.line = line  # 1-based, as editors count
        self.column = column
        self.source = source  # the definition line as the file writes it (or the file's line)
        self.offset = offset  # where in ``source`` the mistake is, for a caret under it

    def place(self, file: str, line: int | None, column: int | None, source: str | None, offset: int | None) -> None:
        """Where the mistake is in the file."""
        self.file, self.line, self.column, self.source, self.offset = file, line, column, source, offset

    @property
    def position(self) -> str:
        """``file:line:column`` (as much of it as is known)."""
        text = self.file or "<definition>"
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text

    def __str__(self) -> str:
        message = self.reason + (f"\n    allowed: {self.allowed}" if self.allowed else "")
        if self.where:  # a mistake in a definition line: its path (line 4 > line 2) and the file's text
            head = f"{self.position}: {self.path}: "
            shown = head + (self.source if self.source is not None else self.where[-1][2])
            if self.source is not None and self.offset:
                shown += "\n" + " " * (len(head) + self.offset) + "^"
            if len(self.where) > 1:  # the innermost line is one a nerve made: as it wrote it
                shown += f"\n    in line {self.where[-1][0]} of its nerve: {self.where[-1][2]}"
            return f"{shown}\n    {message}"
        shown = f"{self.position}: {message}"
        if self.source is not None and self.line is not None:
            shown += f"\n    {self.line} | {self.source}"
            if self.offset:
                shown += "\n" + " " * (len(str(self.line)) + 7 + self.offset) + "^"
        return shown

    def __reduce__(self) -> tuple[Any, ...]:  # the place in the file survives pickling too
        base = _BASES.get(type(self), type(self))  # the build's class, for a copy of a build error
        state = (self.reason, self.allowed, self.where, self.file, self.line, self.column, self.source, self.offset)
        return (_rebuild, (base, *state))


class DefinitionFileNotFoundError(DefinitionFileError, FileNotFoundError):
    """``from_file`` was given a path that is no file. Also a ``FileNotFoundError``."""


_BASES: dict[type, type] = {}  # each class made here, and the class of the build error it copies
_IN_FILE: dict[type, type] = {}


def _in_file_class(cls: type[NeurlinkError]) -> type[DefinitionFileError]:
    """``cls`` and DefinitionFileError in one class (made once per class): ``except DimsError`` and
    ``except DefinitionFileError`` both catch the copy of a build error."""
    if issubclass(cls, DefinitionFileError):
        return cls
    made = _IN_FILE.get(cls)
    if made is None:
        made = type(cls.__name__, (DefinitionFileError, cls), {"__module__": __name__, "__doc__": cls.__doc__})
        _IN_FILE[cls] = made
        _BASES[made] = cls
    return made


def in_file(
    error: NeurlinkError, file: str, line: int | None, column: int | None, source: str | None, offset: int | None = None
) -> DefinitionFileError:
    """A copy of ``error`` (of its class and DefinitionFileError) placed at ``file:line:column``."""
    copy = _in_file_class(type(error))(error.reason, allowed=error.allowed)
    copy.where = list(error.where)
    copy.place(file, line, column, source, offset)
    return copy


def at_place(
    error: NeurlinkError,
    file: str,
    index: int,
    place: tuple[int, int, int, int, str, str],
    column: int | None = None,
    offset: int | None = None,
) -> DefinitionFileError:
    """A copy of ``error`` at the file's line that writes definition line ``index`` (``place``, an item of
    :data:`FilePlaces`), at ``column`` (default: where its text starts) and ``offset`` characters into its text."""
    first, repeat, line, start, source, note = place
    located = in_file(error, file, line, start if column is None else column, source, offset)
    if not located.where:
        located.where = [(index, None, source)]
    if repeat > 1:
        located.reason += f" (in repeat {index - first + 1} of {repeat} of this line)"
    if note:
        located.reason += f" ({note})"
    return located


def placed(error: NeurlinkError, places: FilePlaces) -> NeurlinkError:
    """``error``, raised in a line of a network read from a file while it ran, at that line of the file
    (``neurlink.definition_hooks``); ``error`` itself for a line the file does not write."""
    file, lines = places
    index = error.where[0][0] if error.where else -1
    place = next((item for item in lines if item[0] <= index < item[0] + item[1]), None)
    return error if place is None else at_place(error, file, index, place)


def _rebuild(base: type, reason: str, allowed: str | None, where: list, *place: Any) -> DefinitionFileError:
    error = _in_file_class(base)(reason, allowed=allowed)
    error.where = list(where)
    error.place(*place)
    return error
