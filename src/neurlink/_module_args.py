"""The constructor arguments of a plain module, recovered from its attributes, or a reason there are none.

A line may hold a module made outside the grammar (``nn.ReLU(inplace=True)``, ``nn.Dropout(0.2)``).
To write it as data without pickle, its class and constructor arguments are needed. torch's modules
keep their arguments as attributes of the same names (``inplace``, ``p``, ``eps``), so the arguments
are read from there and then checked: a module made again from them, on the meta device, must have
the same ``repr``, the same parameter and buffer names and shapes, and the same public attributes.
A module whose arguments cannot be recovered that way (a container, a module with state of its own)
is refused.

>>> from torch import nn
>>> module_arguments(nn.LeakyReLU(0.2, inplace=True))
((), {'negative_slope': 0.2, 'inplace': True})
>>> module_arguments(nn.Sequential(nn.ReLU()))
Traceback (most recent call last):
...
ValueError: Sequential(...) has children: only a module without children is written as its class and arguments
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

__all__ = ["module_arguments"]

_PLAIN = (type(None), bool, int, float, str, tuple, list, dict, torch.dtype)


def module_arguments(module: nn.Module) -> tuple[tuple, dict]:
    """``(args, kwargs)`` that make ``module`` again; ``ValueError`` saying why when there are none."""
    cls = type(module)
    shown = _shown(module)
    if module._modules:
        raise ValueError(f"{shown} has children: only a module without children is written as its class and arguments")
    try:
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        raise ValueError(f"{shown}: the signature of {cls.__name__}.__init__ cannot be read") from None
    args, kwargs = [], {}
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        present = parameter.name in module.__dict__
        value = module.__dict__.get(parameter.name)
        if parameter.name in module._parameters or parameter.name in module._buffers:
            # ``bias=True``/``False`` of a conv or linear, kept as the parameter itself (or None)
            tensor = module._parameters.get(parameter.name, module._buffers.get(parameter.name))
            present, value = True, tensor is not None
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            if present and isinstance(value, dict) and all(isinstance(key, str) for key in value):
                kwargs.update(value)  # einops' Rearrange(pattern, **axes_lengths) keeps them as a dict
            continue
        if not present or not isinstance(value, _PLAIN):
            if parameter.default is inspect.Parameter.empty:
                raise ValueError(f"{shown}: its argument {parameter.name!r} is not kept as an attribute")
            continue  # e.g. a conv's bias, kept as a Parameter: the check below says if the default fits
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[parameter.name] = value
    try:
        with torch.device("meta"):
            again = cls(*args, **kwargs)
    except Exception as error:
        raise ValueError(f"{shown} cannot be made again from {kwargs}: {type(error).__name__}: {error}") from None
    if _fingerprint(again) != _fingerprint(module):
        raise ValueError(f"{shown} has state of its own: its constructor arguments cannot be recovered")
    return tuple(args), kwargs


def _fingerprint(module: nn.Module) -> tuple:
    tensors = [(name, tuple(value.shape)) for name, value in module.state_dict(keep_vars=True).items()]
    public: dict[str, Any] = {}
    for name, value in vars(module).items():
        if name.startswith("_") or name == "training":
            continue
        if isinstance(value, torch.Tensor):
            public[name] = ("tensor", tuple(value.shape))  # a tensor outside the state_dict never matches
            if name not in dict(module.named_buffers()) and name not in dict(module.named_parameters()):
                public[name] = ("unregistered tensor", id(value))
        else:
            public[name] = value if isinstance(value, _PLAIN) else (type(value), id(value))
    return type(module), repr(module), tensors, public


def _shown(module: nn.Module) -> str:
    text = repr(module)
    return text if "\n" not in text and len(text) <= 120 else f"{type(module).__name__}(...)"
