"""``SqueezeExcitation``: channel attention from the global average of a 2d line.

>>> import torch
>>> import neurlink.nerves as nv
>>> from torch import nn
>>> net = nv.build(
...     [
...         ((3, 1), nv.Input()),
...         ((32, 2), nv.Conv2d_BN_ReLU(3)),
...         ((32, 2), nv.SqueezeExcitation(8, scale_act=nn.Hardsigmoid)),  # 32 -> 8 -> 32 weights per channel
...     ]
... )
>>> net(torch.randn(2, 3, 16, 16)).shape
torch.Size([2, 32, 8, 8])
>>> net.state_dict()["2.fc1.weight"].shape
torch.Size([8, 32, 1, 1])
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

from ..interpreter import Ops, optional_child
from ..nerve import Nerve
from ._args import Act, check_shape_ranks, keeps_dims, make_act, positive_int

__all__ = ["SqueezeExcitation"]


class SqueezeExcitation(Nerve):
    """``x * scale_act(fc2(act(fc1(mean(x)))))``: torchvision's ``SqueezeExcitation``.

    ``fc1`` and ``fc2`` are 1x1 convs with biases from the line's channels to ``squeeze_channels``
    and back; ``act`` (default ``nn.ReLU``) and ``scale_act`` (default ``nn.Sigmoid``; MobileNetV3:
    ``nn.Hardsigmoid``) are classes, modules or None. The line keeps the dims it reads.
    """

    spatial_rank = 2

    def __init__(self, squeeze_channels: int, *, act: Act = nn.ReLU, scale_act: Act = nn.Sigmoid) -> None:
        super().__init__()
        self.expect_links(1)
        name = type(self).__name__
        positive_int("squeeze_channels", squeeze_channels, name)
        check_shape_ranks(self, 2)
        keeps_dims(self)
        channels = self.target_dims[0].channels
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.register_module("act", make_act(act, name))
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.register_module("scale_act", make_act(scale_act, name))

    def _steps(self, ops: Ops, x: torch.Tensor) -> torch.Tensor:
        scale = ops.function(F.adaptive_avg_pool2d, x, 1)
        scale = ops.module("fc1", scale)
        if optional_child(self, "act") is not None:
            scale = ops.module("act", scale)
        scale = ops.module("fc2", scale)
        if optional_child(self, "scale_act") is not None:
            scale = ops.module("scale_act", scale)
        return ops.function(operator.mul, scale, x)
