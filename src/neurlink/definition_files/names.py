"""How a definition file names classes and functions: short names, a few aliases, import paths.

A short name is looked up in the namespaces of its place. The nerve of a line is looked up in
``neurlink.nerves``, then in the zoo's blocks (``neurlink.models``), then in ``torch.nn`` and
``neurlink.nn`` (a plain module); a value (``act=SiLU``, ``norm=BatchNorm2d``) in ``torch.nn``,
``neurlink.nn``, ``torch.nn.functional``, ``neurlink.nn.functional``, then the nerves and blocks.
So ``Conv2d(3)`` ending a line is the nerve and ``norm=BatchNorm2d`` torch's class. ``nn.``, ``nv.``,
``F.``, ``init.`` and ``models.`` name a namespace explicitly (``nv.BatchNorm2d`` as a value), and any
other dotted name is an import path (``my_nerves.Residual``, ``torch.nn.SiLU``), whose module is one
torch or neurlink has loaded or one the caller trusts.

Every name is then checked by the rule of ``neurlink._names`` (what ``from_pretrained`` applies): a
module outside neurlink, torch and ``trusted`` is never imported, nor a private name followed, and
what a name reaches must be a module class, a nerve, or a function of torch's functional namespaces
(or of a trusted module). The rule is applied to every name of a file before any module is imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterable
from typing import Any

from .. import _names
from ..errors import PretrainedError, did_you_mean

__all__ = ["LINE", "VALUE", "ALIASES", "NameProblem", "look_up", "reference", "short_names"]

LINE, VALUE = "line", "value"  # the two places a name is written: a line's nerve, or a value
NAMESPACES = {
    LINE: ("neurlink.nerves", "neurlink.models", "torch.nn", "neurlink.nn"),
    VALUE: (
        "torch.nn",
        "neurlink.nn",
        "torch.nn.functional",
        "neurlink.nn.functional",
        "neurlink.nerves",
        "neurlink.models",
    ),
}
ALIASES = {
    "nn": ("torch.nn", "neurlink.nn"),  # neurlink.nn is torch.nn and a few modules more
    "nv": ("neurlink.nerves",),
    "F": ("torch.nn.functional", "neurlink.nn.functional"),
    "init": ("torch.nn.init",),
    "models": ("neurlink.models",),
}
_BUILT_IN = ("neurlink", "torch")


class NameProblem(Exception):
    """A name that reaches nothing a file may name: the reason and what is allowed."""

    def __init__(self, reason: str, allowed: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.allowed = reason, allowed


def _static(module_name: str, attribute: str) -> Any:
    """An attribute of a loaded module as stored (never computed, nothing imported), or None."""
    module = sys.modules.get(module_name)
    if module is None:
        return None
    try:
        return inspect.getattr_static(module, attribute)
    except AttributeError:
        return None


def _problem(error: PretrainedError) -> NameProblem:
    """A name refused by the rule of ``_names``, its advice (``from_pretrained(directory, trusted=['m'])``)
    as a file's reader takes it: ``from_file(path, trusted=['m'])`` (a checkpoint's reader says it as
    from_pretrained again, and the command line as --trust)."""
    allowed = error.allowed.replace(_names.TRUSTING, FROM_FILE) if error.allowed else None
    return NameProblem(error.reason, allowed)


FROM_FILE = "from_file(path, trusted="


def _trusting(module: str) -> str:
    """The call that trusts ``module``, as a file's reader takes it."""
    return f"{FROM_FILE}[{module!r}])"


def look_up(
    parts: list[str], place: str, trusted: tuple[str, ...], *, resolve: bool, also: Iterable[str] = ()
) -> tuple[str, Any]:
    """``(import path, object)`` of the name ``parts`` (``["SiLU"]``, ``["my_nerves", "Residual"]``)
    written at ``place``. With ``resolve=False`` nothing is imported: the object is None where it is in a
    module not loaded yet (a trusted one). A name that may not be named is a NameProblem (one that names
    nothing suggests the closest names, ``also`` among them: the file's parameters)."""
    if len(parts) == 1:
        return _short(parts[0], place, also)
    head, rest = parts[0], ".".join(parts[1:])
    if head in ALIASES:
        candidates = [f"{module}.{rest}" for module in ALIASES[head]]
    else:
        candidates = [".".join(parts)]
    problem: NameProblem | None = None
    for dotted in candidates:
        name = _split(dotted, trusted, resolve)
        try:
            if not resolve and name.partition(":")[0] not in sys.modules:
                _names.check(name, trusted)  # decided from the text alone: nothing is imported
                return name, None
            return name, _names.resolve(name, trusted)
        except PretrainedError as error:
            problem = problem or _missing(name, parts, trusted) or _problem(error)
    assert problem is not None
    raise problem


def _missing(name: str, parts: list[str], trusted: tuple[str, ...]) -> NameProblem | None:
    """For ``name`` (``"my_nerves:Residul"``) whose module is loaded but holds no such attribute: the
    problem, with the public classes and functions where the path stops (did-you-mean), else None."""
    module, _, attributes = name.partition(":")
    value: Any = sys.modules.get(module)
    try:
        _names.check(name, trusted)
    except PretrainedError:
        return None  # refused for its text (a private part, a module not trusted): _names says how
    if value is None:
        return None
    for depth, attribute in enumerate(attributes.split(".")):  # noqa: B007 (where it stops is read after)
        try:
            value = inspect.getattr_static(value, attribute)
        except AttributeError:
            break
    else:
        return None  # it is there: refused for what it is, which _names says
    where = ".".join([module, *attributes.split(".")[:depth]])
    public = sorted(
        key
        for key, item in (getattr(value, "__dict__", None) or {}).items()
        if not key.startswith("_")
        and (isinstance(item, type) or inspect.isfunction(item))
        and _names._acceptable(item, where, [key], trusted)  # what the file may name: no typing.Iterable
    )
    reason = f"{'.'.join(parts)}: {where} has no {attribute!r}{did_you_mean(attribute, public)}"
    if _unloaded_module(value, f"{where}.{attribute}") and not _is_trusted(module, trusted):
        reason += f" (module {where}.{attribute} is not loaded, and a file imports none of torch's or neurlink's)"
    few = public and len(public) <= 12  # (torch.nn's hundreds are no help)
    return NameProblem(reason, allowed=f"a class or function of {where}: {', '.join(public)}" if few else None)


def _unloaded_module(parent: Any, name: str) -> bool:
    """Whether ``name`` is a submodule of the package ``parent`` that is not loaded (found, not imported)."""
    if not hasattr(parent, "__path__") or name in sys.modules:
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _short(name: str, place: str, also: Iterable[str]) -> tuple[str, Any]:
    refused: NameProblem | None = None
    for namespace in NAMESPACES[place]:
        if _static(namespace, name) is None:
            continue
        path = f"{namespace}:{name}"
        try:
            return path, _names.resolve(path, ())
        except PretrainedError as error:  # e.g. a zoo builder (resnet50) as a value: not something to name
            refused = refused or _problem(error)
    if refused is not None:
        raise refused
    raise NameProblem(
        f"unknown name {name!r}{did_you_mean(name, [*also, *short_names(place)])}",
        allowed="a nerve (Conv2d_BN_ReLU, Bottleneck), a torch.nn class (SiLU, BatchNorm2d), a parameter the"
        f" file declares, or an import path (my_nerves.Residual, read with {_trusting('my_nerves')})",
    )


def short_names(place: str) -> list[str]:
    """The names a short name may be at ``place`` (for did-you-mean)."""
    found: set[str] = set()
    for namespace in NAMESPACES[place]:
        module = sys.modules.get(namespace)
        if module is not None:  # its classes and functions (not the modules it imports)
            found |= {
                name
                for name, value in vars(module).items()
                if not name.startswith("_") and (isinstance(value, type) or inspect.isfunction(value))
            }
    return sorted(found)


def _split(dotted: str, trusted: tuple[str, ...], resolve: bool) -> str:
    """``"module:attribute.path"`` for a dotted name: its longest prefix that is a module of ``trusted``
    (imported, with ``resolve``: the rule allows it) or a loaded module of neurlink or torch."""
    parts = dotted.split(".")
    for k in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:k])
        if _is_trusted(module, trusted):
            if module in sys.modules:
                return f"{module}:{'.'.join(parts[k:])}"
            if not resolve:
                continue  # which prefix is a module is known only by importing: the rule checks the text
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as error:
                if error.name is not None and module.startswith(error.name):
                    continue  # no such module: an attribute of a shorter one
                break  # the trusted module's own import failed: _names.resolve says how
            except Exception:
                break
            return f"{module}:{'.'.join(parts[k:])}"
        if _is_trusted(module, _BUILT_IN) and module in sys.modules:
            return f"{module}:{'.'.join(parts[k:])}"
    return f"{'.'.join(parts[:-1])}:{parts[-1]}"


def _is_trusted(module: str, trusted: tuple[str, ...]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in trusted)


def reference(path: str, place: str) -> str:
    """The shortest text a file names the object of ``path`` (``"torch.nn:SiLU"``) with at ``place``
    that reads back as that object: ``SiLU``, ``nv.BatchNorm2d``, ``my_nerves.Residual``."""
    module, _, attributes = path.partition(":")
    trusted = (module,)
    target = _names.resolve(path, trusted)
    texts = [attributes] if "." not in attributes else []
    texts += [f"{alias}.{attributes}" for alias, modules in ALIASES.items() if module in modules]
    texts.append(f"{module}.{attributes}")
    for text in texts:
        try:
            _, found = look_up(text.split("."), place, trusted, resolve=True)
        except NameProblem:
            continue
        if found is target:
            return text
    raise NameProblem(f"{path} cannot be named in a file: no name reads back as it")
