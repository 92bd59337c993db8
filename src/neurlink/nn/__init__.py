"""``torch.nn`` plus ``DropPath``, ``LayerNorm2d``, ``LayerScale``, the modules token nerves hold (``Attention``,
``ClassToken``, ``PositionEmbedding``, ``SinCosPositionEmbedding``, ``WindowAttention``), einops' ``Rearrange``
and ``I`` (= ``Identity``).

Every name of ``torch.nn`` is reachable here (``neurlink.nn.Conv2d is torch.nn.Conv2d``),
looked up on first use rather than star-imported.
"""

from typing import Any

import torch.nn as _torch_nn
from einops.layers.torch import Rearrange as Rearrange
from torch.nn import Identity as I  # noqa: E741, F401 - the seed's short name for Identity

from . import functional as functional
from .attention import Attention as Attention
from .channels import LayerNorm2d as LayerNorm2d
from .channels import LayerScale as LayerScale
from .drop_path import DropPath as DropPath
from .tokens import ClassToken as ClassToken
from .tokens import PositionEmbedding as PositionEmbedding
from .tokens import SinCosPositionEmbedding as SinCosPositionEmbedding
from .window import WindowAttention as WindowAttention


def __getattr__(name: str) -> Any:
    try:
        return getattr(_torch_nn, name)
    except AttributeError:
        raise AttributeError(f"module 'neurlink.nn' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    own = {"DropPath", "LayerNorm2d", "LayerScale", "Rearrange", "I", "functional"}
    own |= {"Attention", "ClassToken", "PositionEmbedding", "SinCosPositionEmbedding", "WindowAttention"}
    return sorted(set(dir(_torch_nn)) | own)
