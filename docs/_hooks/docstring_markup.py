"""A Griffe extension that makes neurlink's docstrings read as Markdown in the API reference.

The docstrings are written for ``help()`` and doctest: Sphinx roles (``:class:`~neurlink.X```)
and bare ``>>>`` sessions. Markdown would show the roles literally and read ``>>>`` as three nested
block quotes, so each role becomes a cross-reference (autorefs) and each session a ``pycon``
block. The source stays as it is: only the text handed to mkdocstrings changes.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re

import griffe

_LOG = logging.getLogger("mkdocs.plugins.neurlink")  # mkdocs --strict fails on a warning of its loggers

# :class:`~neurlink.errors.StateDictError`, :func:`neurlink.summary`, :mod:`neurlink.nn.to_size`
_ROLE = re.compile(r":(?:class|func|meth|attr|mod|obj|exc|data):`(~?)([\w.]+)`")


def _role(match: re.Match) -> str:
    short, target = match.group(1), match.group(2)
    shown = target.rsplit(".", 1)[-1] if short else target
    if not target.startswith("neurlink."):
        # a name relative to its module, or outside neurlink: there is no page to link to
        return f"`{shown}`"
    try:
        canonical = _canonical(target)
    except (AttributeError, ImportError):
        # said here: raised inside Griffe's loading, it would drop the whole module without a word
        _LOG.warning("docstring_markup: the role target %r names nothing neurlink has", target)
        return f"`{shown}`"
    return f"[`{shown}`][{canonical}]"


def _canonical(target: str) -> str:
    """Where the object is defined (``neurlink.errors.NeurlinkError`` for ``neurlink.NeurlinkError``):
    the reference documents it there, not under each name that re-exports it."""
    module, _, rest = target.partition(".")
    obj = importlib.import_module(module)
    for part in rest.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(f"{obj.__name__}.{part}")
    if inspect.ismodule(obj):
        return obj.__name__
    return f"{obj.__module__}.{obj.__qualname__}"


def _fence_sessions(text: str) -> str:
    """Wrap each ``>>>`` session (up to the next blank line) in a ``pycon`` fence."""
    out: list[str] = []
    in_session = False
    for line in text.splitlines():
        starts = line.lstrip().startswith(">>>")
        if starts and not in_session:
            out.append("```pycon")
            in_session = True
        elif in_session and not line.strip():
            out.append("```")
            in_session = False
        out.append(line)
    if in_session:
        out.append("```")
    return "\n".join(out)


class DocstringMarkup(griffe.Extension):
    """Rewrite every docstring's roles and sessions when Griffe loads the object."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _fence_sessions(_ROLE.sub(_role, obj.docstring.value))
