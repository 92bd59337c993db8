"""A nerve of one's own, named by ``residual.yaml`` beside it as ``my_nerves.Residual``.

A definition file imports nothing but neurlink and torch unless the caller trusts a module:
``neurlink.from_file("residual.yaml", trusted=["my_nerves"])`` imports this one (from ``sys.path``:
the command line adds the file's folder, ``neurlink summary residual.yaml --trust my_nerves``).
"""

import neurlink.nerves as nv
from neurlink import nn


class Residual(nv.Nerve):
    """A bottleneck block: 1x1 conv, 3x3 conv (strided when the line's ratio grows), 1x1 conv, a skip
    (projected when the dims change), then a ReLU. ``expansion``: output over hidden channels."""

    def __init__(self, expansion=4):
        super().__init__()
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        hidden = max(dims_out.channels // expansion, 1)
        self.add(
            [
                ((hidden, dims_in.shape), nv.Conv2d_BN_ReLU(1)),  # line 0 is the block's input
                ((hidden, dims_out.shape), nv.Conv2d_BN_ReLU(3)),
                (dims_out, nv.Conv2d_BN_ReLU(1, act=None)),
                (dims_out, nv.SkipConnect2d[[0, -1]](1, norm=nn.BatchNorm2d)),
                (dims_out, nn.ReLU()),
            ]
        )
