"""The model registry: builders register by name, users list and create them by name.

>>> import torch, neurlink
>>> neurlink.list_models("resnet1*")
['resnet101', 'resnet152', 'resnet18']
>>> net = neurlink.create_model("resnet18", num_classes=10)
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 10, 1, 1])
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar, overload

from torch import nn

from ..errors import NeurlinkError, UnknownModelError, did_you_mean

__all__ = ["register_model", "list_models", "create_model"]

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


@overload
def register_model(builder: Builder, *, name: str | None = None) -> Builder: ...


@overload
def register_model(builder: None = None, *, name: str | None = None) -> Callable[[Builder], Builder]: ...


def register_model(builder=None, *, name=None):
    """Register a model builder under its function name (or ``name``): ``@register_model``.

    Also usable as ``@register_model(name="my_net")``. A name can be registered once;
    registering it again raises :class:`~neurlink.NeurlinkError`.
    """

    def register(function: Builder) -> Builder:
        key = function.__name__ if name is None else name
        if not isinstance(key, str) or not key:
            raise NeurlinkError(f"a model name must be a non-empty string, got {key!r}")
        if key in _BUILDERS:
            # A silent replacement would make create_model(key) depend on import order.
            raise NeurlinkError(f"a model named {key!r} is already registered ({_describe(_BUILDERS[key])})")
        _BUILDERS[key] = function
        return function

    if builder is None:
        return register
    return register(builder)


def list_models(pattern: str | None = None) -> list[str]:
    """The registered model names, sorted; with ``pattern``, those matching it (``fnmatch``: ``"resnet*"``)."""
    names = sorted(_BUILDERS)
    if pattern is None:
        return names
    return [name for name in names if fnmatch.fnmatchcase(name, pattern)]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``, passing ``kwargs`` to its builder.

    An unknown name raises :class:`~neurlink.errors.UnknownModelError` (a ``NeurlinkError``)
    suggesting the closest registered names.
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        hint = did_you_mean(name, _BUILDERS, cutoff=0.6)
        raise UnknownModelError(
            f"no model is registered as {name!r}{hint} (neurlink.list_models() lists the {len(_BUILDERS)} there are)"
        )
    return builder(**kwargs)


def _describe(function: Callable) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', function)!s}"
