"""Vector lines ``(C, "()")``: tensors (N, C), Linear heads, MLPs."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neurlink
import neurlink.nerves as nv


def test_a_linear_head_after_a_pool_equals_torch():
    torch.manual_seed(0)
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d_BN_ReLU(3)),
            ((8, "(2, 2)"), nv.AvgPool2d()),
            ((10, "()"), nv.Linear()),
        ]
    ).eval()
    x = torch.randn(4, 3, 16, 16)
    features = net(x, outputs=[2])[0]
    linear = net.get_submodule("3.linear")
    assert linear.in_features == 8 * 2 * 2 and linear.out_features == 10
    expected = F.linear(torch.flatten(features, 1), linear.weight, linear.bias)
    for _ in range(2):
        out = net(x)
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert F.cross_entropy(out, torch.randint(0, 10, (4,))).dim() == 0


def test_an_mlp_of_vector_lines():
    torch.manual_seed(0)
    mlp = nv.build(
        [
            ((16, "()"), nv.Input()),
            ((32, "()"), nv.Linear()),
            ((32, "()"), nn.BatchNorm1d(32)),
            ((32, "()"), nn.ReLU()),
            ((32, "()"), nv.Add[[-1, 1]]()),
            ((10, "()"), nv.Linear(bias=False)),
        ]
    )
    x = torch.randn(5, 16)
    assert mlp(x).shape == (5, 10) and mlp.get_submodule("5.linear").bias is None
    summary = neurlink.summary(mlp, (2, 16))
    assert summary.rows[-1].output_shapes == ((2, 10),) and summary.rows[-1].declared_shapes is None
    program = torch.export.export(mlp.eval(), (x,))
    torch.testing.assert_close(program.module()(x), mlp(x))


@pytest.mark.parametrize(
    "lines, message",
    [
        ([((16, "()"), nv.Input()), ((8, 2), nv.Conv2d(3))], "Conv2d is 2d, but its input line 0 holds vectors"),
        ([((3, 1), nv.Input()), ((10, "()"), nv.Linear())], "Linear flattens its input, which must have a fixed size"),
        ([((3, 1), nv.Input()), ((3, "(1, 1)"), nv.AvgPool2d()), ((10, 1), nv.Linear())], "Linear makes vectors"),
    ],
)
def test_vector_mistakes_name_their_line(lines, message):
    with pytest.raises(neurlink.DimsError, match=message):
        nv.build(lines)


def test_a_vector_input_takes_two_dims():
    net = nv.build([((16, "()"), nv.Input()), ((4, "()"), nv.Linear())])
    with pytest.raises(neurlink.InputError, match=r"expected a tensor of shape \(N, 16\), got \(5, 16, 3\)"):
        net(torch.randn(5, 16, 3))
