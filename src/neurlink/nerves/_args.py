"""Checking the arguments of built-in nerves, with messages that say what is allowed."""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import DimsError, NerveArgumentError

__all__ = [
    "ntuple",
    "positive_int",
    "make_norm",
    "make_act",
    "check_shape_ranks",
    "keeps_dims",
    "probability",
    "DEFAULT",
]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"

    def __reduce__(self):
        return "DEFAULT"


# "the value this nerve class is named for" (Conv2d_BN_ReLU: BatchNorm2d, ReLU); Any, so that it is
# the default of keywords typed as what a caller passes.
DEFAULT: Any = _Default()

# norm=: a class or callable taking the channel count (nn.BatchNorm2d, functools.partial(nn.GroupNorm, 8)),
# a module (copied), or None; act=: a module class (nn.ReLU, made in place where it can be), a module, or None.
Norm = Callable[[int], nn.Module] | nn.Module | None
Act = Callable[..., nn.Module] | nn.Module | None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(name: str, value, owner: str) -> int:
    if not _is_int(value) or value < 1:
        raise NerveArgumentError(f"{owner}: {name}={value!r} is not a positive int", allowed=f"{name} >= 1")
    return value


def ntuple(name: str, value, rank: int, owner: str) -> tuple[int, ...]:
    """An int, or a tuple with one positive int per spatial dim."""
    values = (value,) * rank if _is_int(value) else value
    if not isinstance(values, (tuple, list)) or len(values) != rank or not all(_is_int(v) and v >= 1 for v in values):
        raise NerveArgumentError(
            f"{owner}: {name}={value!r} is not a positive int or a tuple of {rank}",
            allowed=f"{name} as an int >= 1 or a tuple of {rank} such ints ({owner} is {rank}d)",
        )
    return tuple(values)


def make_norm(norm, channels: int, owner: str) -> nn.Module | None:
    """``norm`` is None, a class/callable taking the channel count, or a module (copied)."""
    if norm is None or norm is nn.Identity or isinstance(norm, nn.Identity):
        return None
    if isinstance(norm, nn.Module):
        return _of_channels(copy.deepcopy(norm), channels, owner)
    if not callable(norm):
        raise NerveArgumentError(
            f"{owner}: norm={norm!r} is not callable", allowed="norm=nn.BatchNorm2d, a callable or None"
        )
    try:
        return _of_channels(norm(channels), channels, owner)
    except TypeError as error:
        raise NerveArgumentError(
            f"{owner}: norm={getattr(norm, '__name__', norm)!r} cannot be made from the channel count: "
            + (_class_instead(norm) or str(error)),
            allowed="a class or callable taking the channel count: nn.BatchNorm2d,"
            " functools.partial(nn.GroupNorm, 8), a module, or None",
        ) from None


def _of_channels(norm: nn.Module, channels: int, owner: str) -> nn.Module:
    """A norm module that says its channel count (BatchNorm's ``num_features``, GroupNorm's
    ``num_channels``) has the line's: a module given once for every line would fail at the first call."""
    for attribute in ("num_features", "num_channels"):
        count = getattr(norm, attribute, None)
        if isinstance(count, int) and count != channels:
            raise NerveArgumentError(
                f"{owner}: norm={type(norm).__name__}({attribute}={count}) is for {count} channels, but this line's"
                f" norm has {channels}",
                allowed="a class or callable that makes the norm from the channel count (norm=nn.BatchNorm2d,"
                " functools.partial(nn.GroupNorm, 8)), or a module of this line's channels",
            )
    return norm


def make_act(act, owner: str) -> nn.Module | None:
    """``act`` is None, a class/callable, or a module (copied). Classes that can work in place do."""
    if act is None or act is nn.Identity or isinstance(act, nn.Identity):
        return None
    if isinstance(act, nn.Module):
        return copy.deepcopy(act)
    if not callable(act):
        raise NerveArgumentError(f"{owner}: act={act!r} is not callable", allowed="act=nn.ReLU, a callable or None")
    # In place, like torchvision's ReLU(inplace=True): the conv/norm output it overwrites has no other reader.
    try:
        made = act(inplace=True) if _takes_inplace(act) else act()
    except TypeError as error:
        made, reason = None, str(error)
    if not isinstance(made, nn.Module):
        raise NerveArgumentError(
            f"{owner}: act={getattr(act, '__name__', act)!r} does not make a module"
            + (f": {_class_instead(act) or reason}" if made is None else ""),
            allowed="a module class (nn.ReLU, nn.SiLU), a module, or None",
        )
    return made


def _class_instead(value) -> str:
    """``"relu is the function torch.nn.functional.relu, not a module class; did you mean nn.ReLU?"`` for a
    function given where a class is (``act=F.relu``; ``act=relu`` in a file, whose lowercase name is the
    function of torch.nn.functional) that has a torch.nn class of its name, or ``""``."""
    name = getattr(value, "__name__", None)
    if not isinstance(name, str) or not (inspect.isfunction(value) or inspect.isbuiltin(value)):
        return ""
    key = name.replace("_", "").lower()
    found = [c for c, k in vars(nn).items() if isinstance(k, type) and c.lower() in (key, key + "2d")]
    if not found:
        return ""
    module = getattr(value, "__module__", None)
    what = f"the function {module}.{name}" if isinstance(module, str) else "a function"
    return f"{name} is {what}, not a module class; did you mean nn.{found[0]}?"


@functools.lru_cache(maxsize=256)
def _takes_inplace(factory) -> bool:
    try:
        return "inplace" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def check_shape_ranks(nerve, rank: int) -> None:
    """A nerve of ``rank`` spatial dims reads and declares shapes written with ``rank`` values (or one)."""
    name = type(nerve).__name__
    link, declared = nerve.input_links[0], nerve.target_dims[0].shape
    for shape, whose in ((link.shape, f"its input line {link.index} declares"), (declared, "this line declares")):
        if shape.rank not in (None, rank):
            raise DimsError(
                f"{name} is {rank}d, but {whose} shape {shape!r}, which has {shape.rank} dims",
                allowed=f"shapes of {rank} values (or one value for every dim), or a {shape.rank}d nerve",
            )


def keeps_dims(nerve) -> None:
    """A nerve that changes no dims: its line declares the dims of the line it reads."""
    link, declared = nerve.input_links[0], nerve.target_dims[0]
    if not link.dims[0].same_as(declared):
        raise DimsError(
            f"{type(nerve).__name__} keeps the dims of its input line {link.index}, {link.dims[0]!r},"
            f" but this line declares {declared!r}",
            allowed=f"{link.dims[0]!r} on this line",
        )


def probability(name: str, value, owner: str) -> float:
    """A drop probability in [0, 1], as torch's Dropout and torchvision's StochasticDepth take it."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise NerveArgumentError(f"{owner}: {name}={value!r} is not a probability", allowed=f"0 <= {name} <= 1")
    return float(value)
