"""What the builder hands a nerve while constructing it.

``Nerve.__init__`` reads the current :class:`BuildContext` from a context variable,
so every module is an instance of a real, importable class (no classes are made at
run time) and concurrent builds in several threads cannot see each other's context.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from .shapes import Dims

__all__ = ["Link", "BuildContext", "building", "current"]


@dataclass(frozen=True)
class Link:
    """One selected input of a nerve: which line it comes from and what that line declared.

    ``dims`` lists every output of the line (one entry unless it is multi-output, or a
    single output was picked with ``nv.output``).
    """

    index: int
    tag: str | None
    dims: tuple[Dims, ...]
    output: int | None = None  # the picked output of a multi-output line
    rank: int | None = None  # the line's number of spatial dims, where known

    @property
    def channels(self) -> int:
        return self.dims[0].channels

    @property
    def shape(self):
        return self.dims[0].shape


@dataclass(frozen=True)
class BuildContext:
    input_links: tuple[Link, ...]
    target_dims: tuple[Dims, ...]


_CURRENT: ContextVar[BuildContext | None] = ContextVar("neurlink_build_context", default=None)


@contextmanager
def building(context: BuildContext):
    token = _CURRENT.set(context)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> BuildContext | None:
    return _CURRENT.get()
