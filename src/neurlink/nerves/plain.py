"""``Module``: a plain torch module on a line that reads any earlier line, and carries a tag.

A plain ``nn.Module`` written as a line's last element reads the previous line. ``nv.Module[sel, tag](m)``
gives it the selector and tag a nerve takes, ``Nerve[sel, tag](...)``; the line is then built as the plain
module is (copied, checked for its rank and layout, its parameters under the line's own name):

>>> import torch
>>> import neurlink.nerves as nv
>>> from torch import nn
>>> net = nv.build(
...     [
...         ((8, 1), nv.Input()),
...         ((8, 1), nn.ReLU()),
...         ((8, 1), nv.Module[0, "bn"](nn.BatchNorm2d(8))),  # reads line 0, not line 1
...     ]
... )
>>> net["bn"] is net[2], sorted(net.state_dict())[:2]
(True, ['2.bias', '2.num_batches_tracked'])
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import DefinitionError, NeurlinkError, a_kind
from ..lines import NerveDef
from ..nerve import Nerve

__all__ = ["Module"]


class Module(Nerve):
    """``nv.Module[selector, tag](module)``: the plain torch ``module`` reading the selected line(s) (one
    argument per line, as a nerve's forward), tagged ``tag``. ``nv.Module[sel](m)`` selects only,
    ``nv.Module[None, "tag"](m)``... reads nothing; ``nv.Module(m)`` is ``m`` itself.

    The line's module is a copy of ``module`` itself (not a nerve holding it): ``state_dict`` keys and
    ``net[k]`` are those of a plain module on the line.
    """

    wraps_module = True  # the line table builds the module it holds, as a plain module's line

    def __init__(self, module: nn.Module) -> None:  # the signature an argument error shows
        raise NeurlinkError("nv.Module(...) is built by nv.build as the plain module it holds")

    @staticmethod
    def module_of(definition: NerveDef) -> nn.Module:
        """The plain module of ``nv.Module[...](module)``, checked (DefinitionError, not yet located)."""
        args: tuple[Any, ...] = definition.args
        if definition.kwargs or len(args) != 1:
            raise DefinitionError(
                f"{definition!r} takes one module", allowed="nv.Module[selector, tag](nn.BatchNorm2d(8))"
            )
        (module,) = args
        if isinstance(module, NerveDef):
            raise DefinitionError(
                f"{definition!r} holds a nerve, which takes its selector and tag itself",
                allowed=f"{module.cls.__name__}[selector, tag](...)",
            )
        if isinstance(module, type) and issubclass(module, nn.Module):
            raise DefinitionError(
                f"{definition!r} holds the class {module.__name__}, not a module",
                allowed=f"nv.Module[selector, tag]({module.__name__}(...))",
            )
        if not isinstance(module, nn.Module):
            raise DefinitionError(
                f"{definition!r} holds {a_kind(type(module).__name__)}, not an nn.Module",
                allowed="nv.Module[selector, tag](nn.BatchNorm2d(8)), a torch module",
            )
        return module
