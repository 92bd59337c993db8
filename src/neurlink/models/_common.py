"""What the zoo's families share: stage lines tagged at their ends, and torchvision's initialisations."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .. import nerves as nv
from ..errors import NerveArgumentError, UnexpectedArgumentError

__all__ = [
    "build_initialised",
    "check_keywords",
    "stage_lines",
    "init_weights",
    "kaiming_fan_out",
    "uniform_by_outputs",
    "positive_number",
]


def stage_lines(
    blocks: Sequence[tuple[tuple[int, Any], type[nv.Nerve], dict[str, Any]]], tag: str = "stage"
) -> list[Any]:
    """Block lines from ``(dims, block class, keywords)``; the last block of every run of equal
    dims (a stage) is tagged ``stage1``, ``stage2``, ..., so ``outputs=[...]`` gives a pyramid."""
    lines: list[Any] = []
    stage = 0
    for index, (dims, block, keywords) in enumerate(blocks):
        if index + 1 == len(blocks) or blocks[index + 1][0] != dims:
            stage += 1
            lines.append((dims, block[-1, f"{tag}{stage}"](**keywords)))
        else:
            lines.append((dims, block(**keywords)))
    return lines


def build_initialised(
    lines: list[Any], init: Callable[[nv.Network], None], head_lines: int, **build: Any
) -> nv.Network:
    """``nv.build(lines, **build)`` then ``init(net)``, which sets every conv outside the last
    ``head_lines`` lines (and may set more), with each tensor written once.

    torchvision's constructors let every conv draw PyTorch's default init and then draw the family's
    over it; on ResNet-152 the first draw is a third of the build. Here the network is built on the
    meta device (shapes only), then each module's tensors are allocated on the device the caller builds
    on (``torch.device(...)`` or ``torch.set_default_device``) and initialised once: by ``init`` for
    the convs it overwrites, by the module's own ``reset_parameters()`` for the rest (norms and their
    running statistics, the head, a conv's bias). Where that may not be what the constructor gives (a
    module of a class that is not torch's own, whose ``__init__`` may set more; a tensor held outside
    parameters and buffers), the network is built again the ordinary way: no tensor is ever left as
    allocated, and every value is the one the constructor gives.
    """
    device = torch.get_default_device()
    if device.type == "meta" or _construction_is_intercepted():
        return _build_then_init(lines, init, build)  # (on meta, the family's init leaves tensors alone)
    with torch.device("meta"):
        net = nv.build(lines, **build)
    first_head = len(net.lines) - head_lines
    overwritten = {  # what init writes over: the weight of every bias-free conv outside the head
        id(module)
        for entry in net.lines[:first_head]
        if entry.name is not None
        for module in net.get_submodule(entry.name).modules()
        if isinstance(module, nn.Conv2d) and module.bias is None
    }
    owners = [
        module
        for module in net.modules()
        if any(t.is_meta for t in (*module._parameters.values(), *module._buffers.values()) if t is not None)
    ]
    # only torch's own classes (and neurlink's, which add none) are known to be initialised by
    # reset_parameters() alone: a subclass may set more in its __init__ (a parameter of its own, a gamma at 0)
    unsure = (
        any(not _resets_itself(type(module)) for module in owners)
        or any(isinstance(value, torch.Tensor) for module in net.modules() for value in vars(module).values())
        or any(nn.parameter.is_lazy(tensor) for tensor in (*net.parameters(), *net.buffers()))  # LazyBatchNorm2d
    )
    if unsure:
        return _build_then_init(lines, init, build)
    with torch.no_grad():
        for module in owners:
            module.to_empty(device=device, recurse=False)
            if id(module) not in overwritten:
                module.reset_parameters()  # type: ignore[operator]  # checked callable above
    init(net)
    net._start_checks(as_built=True)  # the same tree, its tensors allocated: still the network as built
    return net


def _build_then_init(lines: list[Any], init: Callable[[nv.Network], None], build: dict[str, Any]) -> nv.Network:
    net = nv.build(lines, **build)
    init(net)
    return net


# as torch defines them: a library that patches them (accelerate's init_empty_weights puts every
# parameter on meta) expects each module to be constructed, which the ordinary build does
_REGISTER = (nn.Module.register_parameter, nn.Module.register_buffer)


def _construction_is_intercepted() -> bool:
    """A tensor mode (FakeTensorMode) or patched registration sees tensors made: build as they expect."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    patched = (nn.Module.register_parameter, nn.Module.register_buffer) != _REGISTER
    return patched or _get_current_dispatch_mode() is not None


def _resets_itself(cls: type) -> bool:
    """Whether ``reset_parameters()`` gives a module of ``cls`` every value its constructor gives."""
    # torch's own, and neurlink's (whose reset_parameters, where there is one, is torch's of the same state)
    return cls.__module__.startswith(("torch.nn.modules.", "neurlink.nn.")) and callable(
        getattr(cls, "reset_parameters", None)
    )


def init_weights(net: nv.Network, head_lines: int, conv: Callable, head: Callable) -> None:
    """torchvision's init: ``conv(weight)`` for every conv and ``nn.Linear`` outside the last
    ``head_lines`` lines, ``head(weight)`` for those inside (torchvision's ``nn.Linear`` classifier,
    our 1x1 convs); biases zero, norms at weight 1 and bias 0 (their defaults)."""
    if next(net.parameters()).is_meta:
        return  # no values to set (and torch's init functions on meta tensors import torch._dynamo: seconds)
    entries = net.lines
    first_head = len(entries) - head_lines
    for entry in entries:
        if entry.name is None:  # an Input line
            continue
        init = head if entry.index >= first_head else conv
        for module in net.get_submodule(entry.name).modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                init(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)


def kaiming_fan_out(weight) -> None:
    nn.init.kaiming_normal_(weight, mode="fan_out")


def uniform_by_outputs(weight) -> None:
    """EfficientNet's classifier: uniform in ``+-1 / sqrt(out_features)``."""
    bound = 1.0 / math.sqrt(weight.shape[0])
    nn.init.uniform_(weight, -bound, bound)


def positive_number(name: str, value, owner: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise NerveArgumentError(f"{owner}: {name}={value!r} is not a positive number", allowed=f"{name} > 0")
    return value


def check_keywords(
    builder: str, keywords: dict[str, Any], blocks: tuple[type[nn.Module], ...], own: tuple[str, ...]
) -> None:
    """Name a keyword that neither the builder nor its blocks take, at the builder rather than deep
    in its first block; ``own`` are the builder's own keywords, the rest go to ``blocks``."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    takes = {
        name
        for block in blocks
        for name, parameter in inspect.signature(block.__init__).parameters.items()
        if name != "self" and parameter.kind not in variadic
    }
    unknown = sorted(key for key in keywords if key not in takes and key not in own)
    if not unknown:
        return
    hint = " (published weights: weights='DEFAULT')" if "pretrained" in unknown else ""
    blocks_text = ", ".join(f"{block.__name__}'s: {', '.join(sorted(takes))}" for block in blocks[:1])
    raise UnexpectedArgumentError(
        f"{builder}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}{hint}",
        allowed=f"{builder}'s own ({', '.join(own)})" + (f" and its blocks' ({blocks_text})" if blocks else ""),
    )
