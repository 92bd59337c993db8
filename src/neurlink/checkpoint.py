"""Loading a state_dict into a network whose definition may have changed.

torch reports a checkpoint that does not fit as a dump of keys (``size mismatch for
3.1.conv.weight: ...``). A neurlink network knows which line every key belongs to, so
:func:`check_state_dict` reports the lines that differ instead, each as written, with the
parameters that do not fit and both shapes, before anything is copied:

>>> import torch
>>> import neurlink.nerves as nv
>>> old = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3)), ((4, 2), nv.Conv2d(1))])
>>> new = nv.build([((3, 1), nv.Input()), ((16, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3)), ((4, 2), nv.Conv2d(1))])
>>> new.load_state_dict(old.state_dict())
Traceback (most recent call last):
...
neurlink.errors.CheckpointError: the state_dict does not fit this network: 2 lines differ
  line 1 ('stem'): ((16, 2), Conv2d_BN_ReLU[-1, 'stem'](3))
      conv.weight: the network has (16, 3, 3, 3), the state_dict (8, 3, 3, 3)
      norm.weight: the network has (16,), the state_dict (8,)
      norm.bias: the network has (16,), the state_dict (8,)
      norm.running_mean: the network has (16,), the state_dict (8,)
      norm.running_var: the network has (16,), the state_dict (8,)
  line 2: ((4, 2), Conv2d(1))
      conv.weight: the network has (4, 16, 1, 1), the state_dict (4, 8, 1, 1)

"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .errors import CheckpointError, a_kind
from .lines_module import LinesModule

__all__ = ["check_state_dict"]

_MAX_LINES_SHOWN = 20  # a checkpoint of another model entirely: enough to see that, not a page per key


def check_state_dict(network: nn.Module, state_dict, *, strict: bool = True) -> None:
    """Raise :class:`~neurlink.errors.CheckpointError` if ``state_dict`` does not fit ``network``.

    Tensors of the wrong shape (and values that are not tensors) are errors in either mode, as in
    torch; with ``strict`` so is every key the network lacks and every key it has that is missing.
    """
    if not isinstance(state_dict, Mapping):
        return  # torch's own TypeError says what a state_dict is
    if any(module._load_state_dict_pre_hooks for module in network.modules()):
        return  # a hook may rename or fill in keys: only torch's own loading sees the keys it ends with
    own = network.state_dict(keep_vars=True)
    problems: dict[tuple, list[str]] = {}  # line path -> what does not fit, in key order

    def report(key: str, text: str) -> None:
        path, rest = _line_of(network, key)
        problems.setdefault(path, []).append(text.format(name=rest or key))

    for key, param in own.items():
        if key not in state_dict:
            if strict and not _filled_in_by_torch(network, key, state_dict):
                report(key, f"missing: {{name}} {_shape(param)}")
            continue
        value = state_dict[key]
        if not torch.overrides.is_tensor_like(param):
            continue  # a module's extra state (get_extra_state): its own set_extra_state reads it
        if not torch.overrides.is_tensor_like(value):
            report(
                key,
                f"{{name}}: the network has a tensor {_shape(param)}, the state_dict {a_kind(type(value).__name__)}",
            )
        elif not nn.parameter.is_lazy(param) and not _same_shape(param, value):
            report(key, f"{{name}}: the network has {_shape(param)}, the state_dict {_shape(value)}")
    if strict:
        for key, value in state_dict.items():
            if key not in own:
                report(key, f"unexpected: {{name}} {_shape(value)}")
    if problems:
        raise CheckpointError(_message(network, problems, list(state_dict)))


def _same_shape(param: torch.Tensor, value: torch.Tensor) -> bool:
    if param.dim() == 0 and tuple(value.shape) == (1,):  # torch still loads a 0.3-era 1-element tensor
        return True
    return tuple(param.shape) == tuple(value.shape)


def _filled_in_by_torch(network: nn.Module, key: str, state_dict) -> bool:
    """A batch norm's ``num_batches_tracked``, which torch adds itself to a checkpoint without version metadata."""
    prefix, _, name = key.rpartition(".")
    if name != "num_batches_tracked":
        return False
    try:
        module = network.get_submodule(prefix)
    except AttributeError:
        return False
    if not isinstance(module, nn.modules.batchnorm._NormBase):
        return False
    version = (getattr(state_dict, "_metadata", None) or {}).get(prefix, {}).get("version")
    return version is None or version < 2


def _shape(value) -> str:
    shape = getattr(value, "shape", None)
    return str(tuple(shape)) if shape is not None else type(value).__name__


def _line_of(network: nn.Module, key: str) -> tuple[tuple, str]:
    """The path of lines a key belongs to, as ``((index, tag, written), ...)``, and the rest of the key."""
    module: nn.Module | None = network
    parts, path = key.split("."), []
    while len(parts) > 1 and isinstance(module, LinesModule) and module._table is not None:
        entry = next((e for e in module._table.entries if e.name == parts[0]), None)
        if entry is None:
            break
        path.append((entry.index, entry.tag, entry.written))
        module, parts = module._modules.get(entry.name or ""), parts[1:]
    return tuple(path), ".".join(parts) if path else key


def _message(network: nn.Module, problems: dict[tuple, list[str]], given_keys: list[str]) -> str:
    lines = sorted((path for path in problems if path), key=lambda path: [index for index, _, _ in path])
    rows = ["the state_dict does not fit this network"]
    if lines:
        rows[0] += f": {len(lines)} line{'s differ' if len(lines) != 1 else ' differs'}"
    for path in lines[:_MAX_LINES_SHOWN]:
        where = " > ".join(f"line {index}" + (f" ({tag!r})" if tag is not None else "") for index, tag, _ in path)
        rows.append(f"  {where}: {path[-1][2]}")
        rows.extend(f"      {text}" for text in problems[path])
    if len(lines) > _MAX_LINES_SHOWN:
        rows.append(f"  ... and {len(lines) - _MAX_LINES_SHOWN} more lines")
    if () in problems:
        keys = problems[()]
        rows.append(f"  keys of no line ({len(keys)}):")
        rows.extend(f"      {text}" for text in keys[:_MAX_LINES_SHOWN])
        if len(keys) > _MAX_LINES_SHOWN:
            rows.append(f"      ... and {len(keys) - _MAX_LINES_SHOWN} more")
        prefix = _common_wrapper_prefix(given_keys)
        if prefix:
            rows.append(
                f"    every key starts with {prefix!r}: a state_dict of a wrapper (DistributedDataParallel,"
                " torch.compile); strip it with torch.nn.modules.utils.consume_prefix_in_state_dict_if_present"
            )
    return "\n".join(rows)


def _common_wrapper_prefix(keys: list[str]) -> str | None:
    for prefix in ("module.", "_orig_mod."):
        if keys and all(key.startswith(prefix) for key in keys):
            return prefix
    return None
