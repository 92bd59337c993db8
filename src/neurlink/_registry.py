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
import functools
import inspect
import operator
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from torch import nn

from .errors import NerveArgumentError, NeurlinkError, UnknownModelError, did_you_mean

__all__ = ["register_model", "list_models", "create_model"]

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


WeightsLoader = Callable[[nn.Module, str, Any, dict], nn.Module]


@overload
def register_model(builder: Builder, *, name: str | None = None, weights: WeightsLoader | None = None) -> Builder: ...


@overload
def register_model(
    builder: None = None, *, name: str | None = None, weights: WeightsLoader | None = None
) -> Callable[[Builder], Builder]: ...


def register_model(
    builder: Builder | None = None, *, name: str | None = None, weights: WeightsLoader | None = None
) -> Builder | Callable[[Builder], Builder]:
    """Register a model builder under its function name (or ``name``): ``@register_model``.

    Also usable as ``@register_model(name="my_net")``. A name can be registered once;
    registering it again raises :class:`~neurlink.NeurlinkError`.

    The builder is returned wrapped: the network it returns remembers the name and the keywords it
    was called with (``save_pretrained`` writes them), and ``weights=`` is taken from its keywords
    and handed to ``weights(network, name, weights, keywords)``, the loader of the published weights
    of that name (torchvision's for the zoo's families). A builder without a loader keeps a ``weights``
    parameter of its own; one without either refuses ``weights=`` with a NeurlinkError.
    """

    def register(function: Builder) -> Builder:
        key = function.__name__ if name is None else name
        if not isinstance(key, str) or not key:
            raise NeurlinkError(f"a model name must be a non-empty string, got {key!r}")
        if key in _BUILDERS:
            # A silent replacement would make create_model(key) depend on import order.
            raise NeurlinkError(f"a model named {key!r} is already registered ({_describe(_BUILDERS[key])})")
        wrapped = _recording(function, key, weights)
        _BUILDERS[key] = wrapped
        return cast(Builder, wrapped)  # functools.wraps: the builder's signature (with weights= where it loads them)

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


def _recording(function: Callable[..., nn.Module], name: str, load_weights: WeightsLoader | None) -> Callable:
    """``function``, noting on the network it returns how it was called, and taking ``weights=``."""
    signature = inspect.signature(function)
    own_weights = load_weights is None and "weights" in signature.parameters

    @functools.wraps(function)
    def builder(*args: Any, **kwargs: Any) -> nn.Module:
        weights = None if own_weights else kwargs.pop("weights", None)
        if weights is not None and load_weights is None:
            raise NeurlinkError(
                f"{name} has no published weights to load by name (weights={weights!r})",
                allowed=f"{name}(...) without weights=, and load a state_dict into it",
            )
        args, kwargs = _check_num_classes(name, signature, args, kwargs)
        network = function(*args, **kwargs)
        keywords = _keywords(signature, args, kwargs)
        if keywords is not None and isinstance(network, nn.Module):
            # what save_pretrained writes for a zoo model: the builder's name and keywords
            object.__setattr__(network, "_made_by", (name, keywords, function.__module__))
        if weights is not None and load_weights is not None:  # (refused above without a loader)
            network = load_weights(network, name, weights, keywords or {})
        return network

    if load_weights is not None and not own_weights:  # help() and inspect show the keyword
        parameters = list(signature.parameters.values())
        weights_parameter = inspect.Parameter("weights", inspect.Parameter.KEYWORD_ONLY, default=None)
        at = next((k for k, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD), len(parameters))
        # a function takes any attribute; typeshed's functools._Wrapped does not declare __signature__
        shown = signature.replace(parameters=[*parameters[:at], weights_parameter, *parameters[at:]])
        builder.__signature__ = shown  # type: ignore[attr-defined]
    return builder


def _check_num_classes(name: str, signature: inspect.Signature, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """A classifier's width, checked at the builder (timm's ``num_classes=0``, no classifier, would
    otherwise be an error about channels on a line of the zoo's definition) and passed on as an int
    (a NumPy int, a 0-d tensor)."""
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return args, kwargs  # the builder's own call raises it
    if "num_classes" not in bound.arguments:
        return args, kwargs
    value = bound.arguments["num_classes"]
    try:
        count = -1 if isinstance(value, bool) else operator.index(value)
    except TypeError:
        count = -1
    if count < 1:
        raise NerveArgumentError(
            f"{name}: num_classes={value!r} is not a positive int",
            allowed="num_classes >= 1; for the features before the classifier, call the network with"
            " outputs=[...] naming a line (net.lines lists them and their tags)",
        )
    bound.arguments["num_classes"] = count
    return bound.args, bound.kwargs


def _keywords(signature: inspect.Signature, args: tuple, kwargs: dict) -> dict | None:
    """The call's arguments as keywords (``resnet18(10)`` is ``{"num_classes": 10}``), or None
    when they cannot all be passed by keyword."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    keywords: dict = {}
    for key, value in bound.arguments.items():
        kind = signature.parameters[key].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            keywords.update(value)
        elif kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            return None
        else:
            keywords[key] = value
    return keywords
