"""What the core asks of ``neurlink.definition_files``: one set of functions, registered in :data:`HOOKS`
when neurlink is imported.

That package reads and writes definition files and builds on the core, so the core never imports it
(``tests/test_layering.py``); the three places where the core meets a file go through here instead:
``Network.to_file`` writes one, an error a line raises on a call is placed at that line of the file
the network was read from, and a checkpoint keeps that file beside the weights and builds from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .errors import NeurlinkError

__all__ = ["DefinitionFile", "DefinitionFileHooks", "HOOKS", "hooks", "keeps_definition_file"]


@dataclass(frozen=True)
class DefinitionFile:
    """A definition file as a checkpoint keeps it."""

    text: str
    kind: str  # "yaml" or "json"
    shown: str  # its path, as errors name it
    trusted: tuple[str, ...] = ()  # the modules its network was read with (when saving)


@dataclass(frozen=True)
class DefinitionFileHooks:
    write: Callable[[nn.Module, str | os.PathLike[str]], None]  # Network.to_file
    # an error a line raised on a call, placed by the network's ``_file_places`` (plain data) at the file's line
    place: Callable[[NeurlinkError, Any], NeurlinkError]
    keeps: Callable[[nn.Module], bool]  # whether a network was read from a file (and keeps it)
    # for a network read from a file: the file's text as a checkpoint keeps it, its kind, the modules it trusts
    text_of: Callable[[nn.Module], tuple[str, str, tuple[str, ...]] | None]
    # the network a file's text makes where the device context says, its meta build bounded by its own lines
    build: Callable[[DefinitionFile, tuple[str, ...]], nn.Module]
    check: Callable[[DefinitionFile, tuple[str, ...]], None]  # every name of the file checked, nothing built


HOOKS: DefinitionFileHooks | None = None  # set by neurlink.definition_files when neurlink is imported


def hooks() -> DefinitionFileHooks:
    if HOOKS is None:
        raise NeurlinkError("definition files need neurlink.definition_files: import neurlink")
    return HOOKS


def keeps_definition_file(network: nn.Module) -> bool:
    """Whether ``network`` was read from a definition file, which its checkpoint keeps (and builds it from,
    as the class the file names: a ``Detector`` read from one is saved as one)."""
    return HOOKS is not None and HOOKS.keeps(network)
