"""Classes and functions named by import path in a saved definition, and the rule for importing them back.

A name is ``"module:attribute"`` (``"torch.nn:SiLU"``, ``"neurlink.nerves:Conv2d_BN_ReLU"``,
``"my_nerves:Residual"``): the part before the colon is imported, the part after it is followed
attribute by attribute. Reading a name back (:func:`resolve`) imports a module only when it is
neurlink, torch or a module the caller trusts (or a submodule of one), decided from the text before
anything is imported; every part must be a public ASCII name (no ``_private``, no ``__dunder__``);
and the object reached must be a module class (an ``nn.Module`` subclass, which every nerve is), a
function of ``torch.nn.functional``, ``torch.nn.init`` or ``neurlink.nn.functional``, or a class or
function defined in a trusted module. Nothing else: ``torch:load``, ``torch:hub.load`` and
``os:system`` are refused whatever is trusted around them.

>>> name_of(nn.SiLU)
'torch.nn:SiLU'
>>> resolve("torch.nn:SiLU", ()) is nn.SiLU
True
>>> resolve("os:system", ())
Traceback (most recent call last):
...
neurlink.errors.PretrainedError: 'os:system' names module 'os', which is not trusted: only neurlink and torch are imported unless the caller lists a module in trusted=
    allowed: from_pretrained(directory, trusted=['os']) imports it, if you trust its code
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterable

from torch import nn

from .errors import PretrainedError, a_kind

__all__ = ["name_of", "check", "resolve", "trusted_roots", "nameable", "trusting", "TRUSTING"]

_BUILT_IN_ROOTS = ("neurlink", "torch")
# functions of torch and neurlink a definition may name (torch:load, torch:hub.load never)
_FUNCTION_NAMESPACES = ("torch.nn.functional", "torch.nn.init", "neurlink.nn.functional")
# where a class or function is named when it is found there: the names users write
_PREFERRED = ("neurlink.nerves", "torch.nn", "neurlink.nn", "neurlink.models", *_FUNCTION_NAMESPACES)
_PUBLIC = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")  # ASCII, no leading underscore: no _private, no __dunder__
_MAX_NAME = 500


def nameable(function):
    """Mark a function of neurlink's own that a definition may name, as the zoo's lines do: a norm of the
    zoo's settings (``yolo_norm``, BatchNorm of eps 1e-3 and momentum 0.03) passed as ``norm=``. A neurlink
    function is named only so marked (or in ``neurlink.nn.functional``): never its loaders or builders."""
    function.__neurlink_nameable__ = True
    return function


# The advice to trust a module, as from_pretrained takes it; a definition file's names (definition_files.names)
# say it as the entry point reading the file takes it, from_file(path, ...), and the command line as --trust
TRUSTING = "from_pretrained(directory, trusted="


def trusting(module: str) -> str:
    """The call that trusts ``module``: ``from_pretrained(directory, trusted=['my_nerves'])``."""
    return f"{TRUSTING}[{module!r}])"


def trusted_roots(trusted) -> tuple[str, ...]:
    """The module names ``trusted`` lists (``"my_nerves"``, ``["a", "b.c"]`` or modules), checked."""
    if isinstance(trusted, str) or inspect.ismodule(trusted):
        trusted = (trusted,)
    if not isinstance(trusted, Iterable):
        raise PretrainedError(f"trusted={trusted!r} is not a list of module names", allowed="trusted=['my_nerves']")
    roots = []
    for item in trusted:
        name = item.__name__ if inspect.ismodule(item) else item
        if not isinstance(name, str) or not _is_dotted(name):
            raise PretrainedError(
                f"trusted: {item!r} is not a module name", allowed="importable module names, e.g. trusted=['my_nerves']"
            )
        roots.append(name)
    return tuple(roots)


def _is_dotted(text: str) -> bool:
    return 0 < len(text) <= _MAX_NAME and all(_PUBLIC.match(part) for part in text.split("."))


def _within(module: str, roots: Iterable[str]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in roots)


def check(name, trusted: tuple[str, ...]) -> tuple[str, list[str]]:
    """Parse a name and decide whether it may be imported, without importing anything."""
    shown = repr(name) if not isinstance(name, str) or len(name) <= 200 else repr(name[:200] + "...")
    form = "'module:Name' with public names, e.g. 'torch.nn:SiLU' or 'my_nerves:Residual'"
    if not isinstance(name, str):
        raise PretrainedError(f"{shown} is not a name (a string 'module:Name')", allowed=form)
    module, colon, attributes = name.partition(":")
    if not colon or not _is_dotted(module) or not _is_dotted(attributes):
        private = any(part.startswith("_") for part in re.split(r"[.:]", name))
        reason = "has a private or dunder part, which could reach anything" if private else "is malformed"
        raise PretrainedError(f"the name {shown} {reason}", allowed=form)
    if not _within(module, _BUILT_IN_ROOTS + trusted):
        raise PretrainedError(
            f"{shown} names module {module!r}, which is not trusted: only neurlink and torch are imported"
            " unless the caller lists a module in trusted=",
            allowed=f"{trusting(module.split('.')[0])} imports it, if you trust its code",
        )
    if _within(module, _BUILT_IN_ROOTS) and not _within(module, trusted) and module not in sys.modules:
        # importing a torch submodule runs its code and may load third-party packages: only reach
        # those torch and neurlink have already loaded (torch.nn, neurlink.models, ...)
        raise PretrainedError(
            f"{shown} names module {module!r}, which torch and neurlink do not load themselves",
            allowed="names in modules already imported (torch.nn, torch.nn.functional, neurlink...), or"
            f" {trusting(module)} if you trust it",
        )
    return module, attributes.split(".")


def resolve(name, trusted: tuple[str, ...]):
    """The class or function ``name`` names, imported under the rule above (a PretrainedError if not)."""
    module_name, attributes = check(name, trusted)
    try:
        value = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or whatever a trusted module raises while importing
        missing = error.name if isinstance(error, ModuleNotFoundError) else None
        allowed = None
        if missing is not None and (module_name == missing or module_name.startswith(missing + ".")):
            allowed = f"put the folder holding {missing.replace('.', '/')}.py on sys.path (PYTHONPATH), or run from it"
        raise PretrainedError(
            f"{name!r}: module {module_name!r} cannot be imported: {error}", allowed=allowed
        ) from None
    for attribute in attributes:
        try:
            # read as stored, never computed: a module's __getattr__ (torch's lazy submodules) would import
            # what the rule above refuses (torch:onnx.ONNXProgram imports torch.onnx), a descriptor run code
            value = inspect.getattr_static(value, attribute)
        except AttributeError:
            lazy = inspect.ismodule(value) and f"{value.__name__}.{attribute}" not in sys.modules
            raise PretrainedError(
                f"{name!r}: {module_name!r} has no attribute path {'.'.join(attributes)!r}"
                + (f" (module {value.__name__}.{attribute} is not loaded, and a definition loads none)" if lazy else "")
            ) from None
    if not _acceptable(value, module_name, attributes, trusted):
        what = getattr(value, "__qualname__", None) or getattr(value, "__name__", "")
        where = getattr(value, "__module__", None)
        what = f"{where}.{what}" if isinstance(where, str) and isinstance(what, str) else what
        raise PretrainedError(
            f"{name!r} reaches the {type(value).__name__} {what}, which a definition may not name",
            allowed="an nn.Module class (nerves included), a function of torch.nn.functional, torch.nn.init or"
            " neurlink.nn.functional, a norm function of the zoo's, or a class or function defined in a trusted"
            " module",
        )
    return value


def _acceptable(value, module_name: str, attributes: list[str], trusted: tuple[str, ...]) -> bool:
    defined_in = getattr(value, "__module__", None) or ""
    if isinstance(value, type):
        return issubclass(value, nn.Module) or _within(defined_in, trusted)
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        if module_name in _FUNCTION_NAMESPACES:
            # F.relu, not F.torch.load: a function the namespace itself holds, torch's or neurlink's
            return len(attributes) == 1 and _within(defined_in, _BUILT_IN_ROOTS)
        if _within(defined_in, ("neurlink",)) and inspect.getattr_static(value, "__neurlink_nameable__", False) is True:
            return True  # a function neurlink marks as one its lines name (nameable)
        return _within(defined_in, trusted) and not _within(defined_in, _BUILT_IN_ROOTS)
    return False


def name_of(value) -> str:
    """The name of a class or function, one that :func:`resolve` reads back as the same object.

    Raises ``ValueError`` saying why there is none (a lambda, a local class, ``__main__``).
    """
    if not (isinstance(value, type) or inspect.isfunction(value) or inspect.isbuiltin(value)):
        raise ValueError(f"{a_kind(type(value).__name__)} is neither data nor a class or function")
    short = getattr(value, "__name__", "")
    qualname = getattr(value, "__qualname__", short)
    if short == "<lambda>":
        raise ValueError("a lambda has no import path: define a function in a module")
    if "<locals>" in qualname:
        raise ValueError(f"{qualname} is defined inside a function: define it at the top of a module")
    name = None
    for namespace in _PREFERRED:
        if getattr(sys.modules.get(namespace), short, None) is value:
            name = f"{namespace}:{short}"
            break
    if name is None:
        module = getattr(value, "__module__", None)
        if not module or module in ("__main__", "builtins") or module.startswith("__"):
            raise ValueError(f"{short} is defined in {module or 'no module'}, which cannot be imported elsewhere")
        name = f"{module}:{qualname}"
    try:
        found = resolve(name, (name.partition(":")[0],))
    except PretrainedError as error:
        raise ValueError(error.reason) from None
    if found is not value:
        raise ValueError(f"{name} names another object")
    return name
