"""A checkpoint keeps the definition file its network was read from: ``save_pretrained`` writes it beside
the weights (``definition.yaml`` or ``definition.json``), ``from_pretrained`` builds from it.

The file written is the one ``to_file`` writes: the person's text, comments and scales kept, with the
parameters the network was built with as its defaults, so it builds this network without keywords.
The core calls these through ``neurlink.definition_hooks`` (it does not import this package).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import _names
from ..definition_hooks import DefinitionFile
from ..network import Network
from .documents import MAX_BYTES
from .errors import DefinitionFileError
from .names import FROM_FILE
from .reading import Definition, read_definition
from .sources import FileSource, keep_source, source_of
from .writing import source_text

__all__ = ["keeps", "text_of", "check", "build"]


def keeps(network: nn.Module) -> bool:
    return source_of(network) is not None


def text_of(network: nn.Module) -> tuple[str, str, tuple[str, ...]] | None:
    """The text a checkpoint keeps (save_pretrained checks that it builds the network again, and records
    the attributes set after the build itself)."""
    source = source_of(network)
    if source is None:
        return None
    return source_text(source, source.kind), source.kind, source.trusted


def _read(file: DefinitionFile, trusted: tuple[str, ...]) -> Definition:
    if len(file.text.encode("utf-8")) > MAX_BYTES:  # (as from_file refuses it)
        raise DefinitionFileError(f"more than {MAX_BYTES:,} bytes is too large for a definition", file=file.shown)
    try:
        return read_definition(file.text, file.kind, file.shown, trusted, None, {})
    except DefinitionFileError as error:  # the advice to trust a module, as from_pretrained takes it
        if error.allowed:
            error.allowed = error.allowed.replace(FROM_FILE, _names.TRUSTING)
        raise


def check(file: DefinitionFile, trusted: tuple[str, ...]) -> None:
    """Every name of the file checked against the rule before anything is imported, its values made."""
    _read(file, trusted)


def build(file: DefinitionFile, trusted: tuple[str, ...]) -> Network:
    """The file's network, built where the caller's device context says; on the meta device (the first
    build of from_pretrained) with the bound on torch calls its own lines give."""
    definition = _read(file, trusted)
    network = definition.made_here(budget=torch.get_default_device().type == "meta")
    keep_source(network, FileSource(file.text, file.kind, file.shown, (), None, trusted))  # saved again, kept
    return network
