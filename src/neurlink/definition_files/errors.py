"""The errors of definition files: each names the file, its line and column, then the line as written.

A mistake found while the file is read (its YAML, a name, a parameter) is a :class:`DefinitionFileError`.
A mistake the build finds in a line (dims that do not fit, a tag that names no earlier line) keeps its
class (a ``DimsError``, an ``UnknownTagError``, which is also a ``KeyError``) and is raised as a copy
that is a ``DefinitionFileError`` too, with the file's place in front of the message:

.. code-block:: text

    net.yaml:4:5: line 2: (8, 3), Conv2d(3)
        ratio 1 -> 3 ...
"""

from __future__ import annotations

from typing import Any

from ..errors import NeurlinkError

__all__ = ["DefinitionFileError", "DefinitionFileNotFoundError", "in_file"]


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


def _rebuild(base: type, reason: str, allowed: str | None, where: list, *place: Any) -> DefinitionFileError:
    error = _in_file_class(base)(reason, allowed=allowed)
    error.where = list(where)
    error.place(*place)
    return error
