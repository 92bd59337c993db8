"""A small encoder-decoder in the grammar: the network the README draws (docs/tiny_unet.svg).

$ neurlink summary examples/tiny_unet.py:tiny_unet --input 1x3x64x64 --depth 2
$ neurlink graph examples/tiny_unet.py:tiny_unet --input 1x3x64x64 --depth 2 -o docs/tiny_unet.svg
"""

import neurlink.nerves as nv
from neurlink import nn


class Residual(nv.Nerve):
    """Two 3x3 convs and an identity skip: line 0 is the block's input."""

    def __init__(self) -> None:
        super().__init__()
        dims = self.target_dims[0]
        self.add(
            [
                (dims, nv.Conv2d_BN_ReLU(3)),
                (dims, nv.Conv2d_BN_ReLU(3, act=None)),
                (dims, nv.Add[[0, -1]]()),
                (dims, nn.ReLU(inplace=True)),
            ]
        )


def tiny_unet(classes: int = 2) -> nv.Network:
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 1), nv.Conv2d_BN_ReLU[-1, "full"](3)),
            ((32, 2), nv.Conv2d_BN_ReLU(3)),  # stride 2, derived
            ((32, 2), Residual[-1, "half"]()),
            ((64, 4), nv.Conv2d_BN_ReLU(3)),
            ((32, 2), nv.ConvTransposed2d_BN_ReLU(4)),  # upsample x2: padding derived
            ((64, 2), nv.Concat[["half", -1]]()),  # a skip from the encoder
            ((16, 1), nv.ConvTransposed2d_BN_ReLU(4)),
            ((32, 1), nv.Concat[["full", -1]]()),
            ((classes, 1), nv.Conv2d(1)),
        ]
    )
