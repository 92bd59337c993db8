"""What the command line's MODEL names: a zoo model, a directory written by ``save_pretrained``, or
``path/to/file.py:function``.

A file is imported with ``importlib`` (as ``python file.py`` would run it, its folder first
on ``sys.path``) and the function is called without arguments; it returns a network, or a
list of definition lines, which is built. Every mistake becomes a :class:`CommandError`
whose message says what is wrong and where (``file.py:12``), never a traceback.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
from pathlib import Path

import torch
from torch import nn

from ..errors import NeurlinkError, did_you_mean
from ..lines_module import LinesModule
from ..models import create_model, list_models
from ..network import build
from ..pretrained import from_pretrained

__all__ = ["CommandError", "load_network", "is_file_spec", "describe_failure", "as_command_line"]


class CommandError(Exception):
    """A user mistake on the command line: printed as one message, exit status 1."""


def is_file_spec(model: str) -> bool:
    """Whether MODEL names a file (``net.py:make``, ``dir/net.py``) rather than a zoo model."""
    path = model.rpartition(":")[0] if ":" in model else model
    return path.endswith(".py") or "/" in model or "\\" in model


def load_network(
    model: str, *, device: torch.device | str | None = None, keywords: dict | None = None, trusted=()
) -> nn.Module:
    """Build MODEL (``resnet50``, ``path/to/saved`` or ``path/to/file.py:function``), on ``device`` when
    given, passing ``keywords`` to the builder (``num_classes=10``); a saved directory imports the
    modules in ``trusted``."""
    # a zoo name means the zoo, even beside a folder of that name (a cloned repository's resnet18/):
    # a saved directory of such a name is given as a path, ./resnet18
    if Path(model).is_dir() and model not in list_models():
        return _from_directory(model, device, keywords or {}, trusted)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        if is_file_spec(model):
            return _from_file(model, keywords or {})
        return _from_zoo(model, keywords or {})


def _from_directory(path: str, device, keywords: dict, trusted) -> nn.Module:
    if keywords:
        raise CommandError(f"{path}: a saved network takes no builder keywords (--arg): its config.json has them")
    if trusted and os.getcwd() not in sys.path and "" not in sys.path:
        # `--trust my_nerves` names a module beside the user; last, so that a file there never shadows a
        # module of Python's or an installed package that neurlink imports afterwards
        sys.path.append(os.getcwd())
    try:
        return from_pretrained(path, device=device, trusted=trusted)
    except NeurlinkError as error:
        raise CommandError(as_command_line(str(error), "the current folder")) from None


def as_command_line(message: str, searched: str) -> str:
    """The Python advice of a message as the command line's: ``from_pretrained(directory, trusted=['m'])``
    or ``from_file(path, trusted=['m'])`` as ``--trust m``, and where a trusted module is looked for
    (``searched``: the folders --trust puts on ``sys.path``)."""
    message = re.sub(r"from_(?:pretrained|file)\((?:directory|path), trusted=\['([^']+)'\]\)", r"--trust \1", message)
    return re.sub(
        r"put the folder holding (\S+\.py) on sys\.path \(PYTHONPATH\), or run from it",
        rf"run neurlink from the folder holding \1, or put that folder on PYTHONPATH (--trust looks in {searched})",
        message,
    )


def _from_zoo(name: str, keywords: dict) -> nn.Module:
    names = list_models()
    if name not in names:
        hint = did_you_mean(name, names)
        raise CommandError(
            f"unknown model {name!r}{hint} ('neurlink list' shows the {len(names)} models of the zoo;"
            " a file is given as path/to/file.py:function)"
        )
    try:
        return create_model(name, **keywords)
    except NeurlinkError as error:
        raise CommandError(f"{name}: {error}") from None
    except TypeError as error:  # a keyword the builder does not take
        raise CommandError(f"{name}: {error}") from None


def _from_file(spec: str, keywords: dict) -> nn.Module:
    text, _, function_name = spec.rpartition(":") if ":" in spec else (spec, "", "")
    path = Path(text)
    if not path.is_file():
        raise CommandError(f"{text}: no such file")
    module = _import(path)
    if not function_name:
        raise CommandError(
            f"{spec}: name the function that returns the network, as {text}:function{_functions(module)}"
        )
    function = getattr(module, function_name, None)
    if not callable(function):
        raise CommandError(f"{text} defines no function {function_name!r}{_functions(module)}")
    try:
        result = function(**keywords)
        if isinstance(result, list):  # definition lines: build them
            result = build(result)
    except Exception as error:
        raise CommandError(describe_failure(error, path, f"{text}:{function_name}()")) from None
    if not isinstance(result, LinesModule) or getattr(result, "_table", None) is None:
        raise CommandError(
            f"{text}:{function_name}() returned {type(result).__name__}, not a network:"
            " return nv.build([...]) (or the list of lines)"
        )
    return result


def _import(path: Path):
    name = "_neurlink_model_" + re.sub(r"\W", "_", path.stem)  # never shadows an installed module
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)  # its sibling modules import as they would under `python file.py`
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        _undo_import(name, folder, added)
        raise CommandError(f"{path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        _undo_import(name, folder, added)
        raise CommandError(f"{error.filename or path}:{error.lineno}: syntax error: {error.msg}") from None
    except Exception as error:
        _undo_import(name, folder, added)
        raise CommandError(describe_failure(error, path, f"importing {path}")) from None
    return module


def _undo_import(name: str, folder: str, added: bool) -> None:
    """A failed import leaves sys.modules and sys.path as they were."""
    sys.modules.pop(name, None)
    if added and folder in sys.path:
        sys.path.remove(folder)


def describe_failure(error: BaseException, path: Path, doing: str) -> str:
    """One message for an exception raised by a user's file, located at its last line in that file."""
    where = ""
    target = str(path.resolve())
    frames = [f for f in traceback.extract_tb(error.__traceback__) if str(Path(f.filename).resolve()) == target]
    if frames:
        where = f" (at {path}:{frames[-1].lineno})"
    if isinstance(error, NeurlinkError):
        return f"{doing}{where}: {error}"
    return f"{doing} raised {type(error).__name__}{where}: {error}"


def _functions(module) -> str:
    names = [
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value) and not name.startswith("_") and value.__module__ == module.__name__
    ]
    return f"; it defines: {', '.join(names)}" if names else ""
