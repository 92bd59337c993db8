"""Small definitions shared by the summary and diagram tests."""

import neurlink.nerves as nv


class Residual(nv.Nerve):
    """x + conv(x): a block of two lines, whose Add also selects the block's input (line 0)."""

    def __init__(self) -> None:
        super().__init__()
        dims = self.target_dims[0]
        self.add([(dims, nv.Conv2d_BN_ReLU(3)), (dims, nv.Add[[0, -1]]())])


class Split(nv.Nerve):
    """Two outputs: the first and the last four channels."""

    def __init__(self) -> None:
        super().__init__()
        self.expect_links(1, outputs=2)

    def forward(self, x):
        return x[:, :4], x[:, 4:]


def small() -> nv.Network:
    """A block (Add selecting the block's input), two outputs, a Concat skip."""
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3)),
            ((8, 2), Residual()),
            ((4, 2), (4, 2), Split()),
            ((12, 2), nv.Concat[[nv.output(3, 1), "stem"]]()),
            ((12, "(1, 1)"), nv.AvgPool2d()),
            ((10, "(1, 1)"), nv.Conv2d(1)),
        ]
    )
