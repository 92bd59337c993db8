"""``torch.nn`` plus ``DropPath``, ``LayerNorm2d``, ``LayerScale``, einops' ``Rearrange`` and ``I`` (= ``Identity``).

Every name of ``torch.nn`` is reachable here (``neurlink.nn.Conv2d is torch.nn.Conv2d``),
looked up on first use rather than star-imported.
"""

from typing import Any

import torch.nn as _torch_nn
from einops.layers.torch import Rearrange as Rearrange
from torch.nn import Identity as I  # noqa: E741, F401 - the seed's short name for Identity

from . import functional as functional
from .channels import LayerNorm2d as LayerNorm2d
from .channels import LayerScale as LayerScale
from .drop_path import DropPath as DropPath


def __getattr__(name: str) -> Any:
    try:
        return getattr(_torch_nn, name)
    except AttributeError:
        raise AttributeError(f"module 'neurlink.nn' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(dir(_torch_nn)) | {"DropPath", "LayerNorm2d", "LayerScale", "Rearrange", "I", "functional"})
