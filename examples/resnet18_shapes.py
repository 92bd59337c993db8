"""ResNet-18 written in the grammar by hand, printing every line's output shape.

This reproduces the printout of the original neurlink README:

    $ python examples/resnet18_shapes.py
"""

import torch

import neurlink.nerves as nv
from neurlink import nn


class BasicBlock(nv.Nerve):
    """Two 3x3 convs and a skip connection; the stride comes from the line's declared ratio."""

    def __init__(self) -> None:
        super().__init__()
        dims_out = self.target_dims[0]
        self.add(
            [
                (dims_out, nv.Conv2d_BN_ReLU(3)),  # line 0 is the block's input
                (dims_out, nv.Conv2d_BN_ReLU(3, act=None)),
                (dims_out, nv.SkipConnect2d[[0, -1]](1, norm=nn.BatchNorm2d)),
                (dims_out, nn.ReLU(inplace=True)),
            ]
        )


def resnet18(num_classes: int = 1000) -> nv.Network:
    block = BasicBlock()
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((64, 2), nv.Conv2d_BN_ReLU(7)),  # 7x7 conv, stride 2
            ((64, 4), nv.MaxPool2d(3)),  # 3x3 max pool, stride 2
            [((64, 4), block)] * 2,
            [((128, 8), block)] * 2,  # the first block of a stage downsamples
            [((256, 16), block)] * 2,
            [((512, 32), block)] * 2,
            ((512, "(1, 1)"), nv.AvgPool2d()),  # adaptive pooling to an absolute shape
            ((num_classes, "(1, 1)"), nv.Conv2d(1)),  # the classifier, with its bias
        ]
    )


def main() -> None:
    model = resnet18()
    x = torch.randn((2, 3, 224, 224))
    for y in model(x, output_intermediate=True):
        print(y.shape)


if __name__ == "__main__":
    main()
