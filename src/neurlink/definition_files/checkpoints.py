"""A checkpoint keeps the definition file its network was read from: ``save_pretrained`` writes it beside
the weights (``definition.yaml`` or ``definition.json``), ``from_pretrained`` builds from it.

The file written is the one ``to_file`` writes: the person's text, comments and scales kept, with the
parameters the network was built with as its defaults, so it builds this network without keywords.
The core calls these two through ``pretrained.DEFINITION_FILES`` (it does not import this package).
"""

from __future__ import annotations

from torch import nn

from ..pretrained import DefinitionFileHooks
from .documents import MAX_BYTES
from .errors import DefinitionFileError
from .reading import read_definition
from .sources import FileSource, keep_source, source_of
from .writing import to_text

__all__ = ["HOOKS"]


def _text_of(network: nn.Module) -> tuple[str, str] | None:
    source = source_of(network)
    if source is None:
        return None
    # attributes set after the build are the config's to record (save_pretrained's "attributes")
    return to_text(network, source.kind, attributes=False), source.kind


def _build(text: str, kind: str, file: str, trusted: tuple[str, ...], check_only: bool) -> nn.Module | None:
    """The file's network, built where the caller's device context says (from_pretrained builds on meta
    first, within its budget), or with ``check_only`` its names checked and its values made, nothing built."""
    if len(text.encode("utf-8")) > MAX_BYTES:  # (as from_file refuses it)
        raise DefinitionFileError(f"{len(text.encode('utf-8')):,} bytes is too large for a definition", file=file)
    definition = read_definition(text, kind, file, trusted, None, {})
    if check_only:
        return None
    network = definition.made_here()
    keep_source(network, FileSource(text, kind, file, (), None, trusted))  # saved again, it keeps its file
    return network


def _keeps(network: nn.Module) -> bool:
    return source_of(network) is not None


HOOKS = DefinitionFileHooks(keeps=_keeps, text_of=_text_of, build=_build)
