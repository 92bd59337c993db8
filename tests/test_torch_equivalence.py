"""Derived layers compute exactly what the hand-written torch.nn layers compute, given the same weights."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neurlink.nerves as nv


def single(net):
    """The module of the last line of a two-line network."""
    return net.get_submodule(str(len(net.lines) - 1))


def copy_weights(conv: nn.Module, reference: nn.Module) -> None:
    reference.load_state_dict(conv.state_dict())


def test_7x7_stride2_conv_equals_torch_padding_3():
    net = nv.build([((3, 1), nv.Input()), ((64, 2), nv.Conv2d(7))])
    reference = nn.Conv2d(3, 64, 7, stride=2, padding=3)
    copy_weights(single(net).conv, reference)
    for size in [(224, 224), (31, 17)]:
        x = torch.randn(2, 3, *size)
        torch.testing.assert_close(net(x), reference(x), rtol=0, atol=0)


def test_conv_bn_relu_equals_sequential():
    net = nv.build([((3, 1), nv.Input()), ((16, 2), nv.Conv2d_BN_ReLU(3))])
    nerve = single(net)
    assert nerve.conv.bias is None  # a following norm makes the bias redundant
    reference = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
    reference[0].load_state_dict(nerve.conv.state_dict())
    with torch.no_grad():
        nerve.norm.weight.uniform_(0.5, 2)
        nerve.norm.bias.uniform_(-1, 1)
        nerve.norm.running_mean.uniform_(-1, 1)
        nerve.norm.running_var.uniform_(0.5, 2)
    reference[1].load_state_dict(nerve.norm.state_dict())
    net.eval(), reference.eval()
    x = torch.randn(2, 3, 20, 21)
    torch.testing.assert_close(net(x), reference(x), rtol=0, atol=0)


def test_relu_bn_order():
    net = nv.build([((3, 1), nv.Input()), ((16, 1), nv.Conv2d_ReLU_BN(3))])
    names = [name for name, _ in single(net).named_children()]
    assert names == ["conv", "act", "norm"]
    assert single(net).conv.bias is not None  # the ReLU between conv and norm makes the bias count


def test_plain_conv_has_bias_and_bias_override():
    net = nv.build([((3, 1), nv.Input()), ((10, 1), nv.Conv2d(1)), ((10, 1), nv.Conv2d_BN_ReLU(1, bias=True))])
    assert net.get_submodule("1.conv").bias is not None
    assert net.get_submodule("2.conv").bias is not None


def test_maxpool_equals_torch_3x3_stride2_padding1():
    net = nv.build([((8, 1), nv.Input()), ((8, 2), nv.MaxPool2d(3))])
    x = torch.randn(2, 8, 56, 57)
    torch.testing.assert_close(net(x), F.max_pool2d(x, 3, 2, 1), rtol=0, atol=0)


def test_even_kernel_stride1_equals_torch_same_padding():
    net = nv.build([((3, 1), nv.Input()), ((4, 1), nv.Conv2d(4, padding_mode="reflect"))])
    conv = single(net).conv
    reference = nn.Conv2d(3, 4, 4, padding="same", padding_mode="reflect")
    copy_weights(conv, reference)
    x = torch.randn(1, 3, 9, 10)
    torch.testing.assert_close(net(x), reference(x), rtol=0, atol=0)


def test_patchify_conv_has_no_padding():
    net = nv.build([((3, 1), nv.Input()), ((32, 16), nv.Conv2d(16))])
    reference = nn.Conv2d(3, 32, 16, stride=16)
    copy_weights(single(net).conv, reference)
    x = torch.randn(1, 3, 64, 48)
    torch.testing.assert_close(net(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize("kernel, padding, output_padding", [(4, 1, 0), (3, 1, 1), (2, 0, 0)])
def test_transposed_equals_torch_usual_choices(kernel, padding, output_padding):
    net = nv.build([((3, 1), nv.Input()), ((6, 2), nv.Conv2d(1)), ((5, 1), nv.ConvTransposed2d(kernel))])
    transposed = single(net).conv
    reference = nn.ConvTranspose2d(6, 5, kernel, 2, padding, output_padding)
    copy_weights(transposed, reference)
    x = torch.randn(1, 3, 16, 24)
    hidden = net(x, outputs=[1])[0]
    torch.testing.assert_close(net(x), reference(hidden), rtol=0, atol=0)


def test_padding_mode_reflect_equals_torch():
    net = nv.build([((3, 1), nv.Input()), ((4, 2), nv.Conv2d(3, padding_mode="circular"))])
    reference = nn.Conv2d(3, 4, 3, 2, 1, padding_mode="circular")
    copy_weights(single(net).conv, reference)
    x = torch.randn(1, 3, 12, 13)
    torch.testing.assert_close(net(x), reference(x), rtol=0, atol=0)


def test_grouped_dilated_conv_equals_torch():
    net = nv.build([((8, 1), nv.Input()), ((16, 1), nv.Conv1d(3, dilation=2, groups=4))])
    reference = nn.Conv1d(8, 16, 3, padding=2, dilation=2, groups=4)
    copy_weights(single(net).conv, reference)
    x = torch.randn(2, 8, 30)
    torch.testing.assert_close(net(x), reference(x), rtol=0, atol=0)


def test_adaptive_pool_and_interpolate_equal_torch():
    net = nv.build([((4, 1), nv.Input()), ((4, "(1, 1)"), nv.AvgPool2d()), ((4, 4), nv.Interpolate("bilinear"))])
    x = torch.randn(2, 4, 20, 21)
    pooled, resized = net(x, outputs=[1, 2])
    torch.testing.assert_close(pooled, F.adaptive_avg_pool2d(x, 1), rtol=0, atol=0)
    torch.testing.assert_close(resized, F.interpolate(pooled, size=(5, 6), mode="bilinear"), rtol=0, atol=0)


def test_avgpool_with_kernel_equals_torch():
    net = nv.build([((4, 1), nv.Input()), ((4, 2), nv.AvgPool2d(3))])
    x = torch.randn(1, 4, 11, 12)
    torch.testing.assert_close(net(x), F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), rtol=0, atol=0)


def test_skip_connect_projects_like_torchvision_downsample():
    net = nv.build(
        [
            ((8, 1), nv.Input()),
            ((16, 2), nv.Conv2d(3)),
            ((16, 2), nv.SkipConnect2d[[0, -1]](1, norm=nn.BatchNorm2d)),
        ]
    )
    project = net.get_submodule("2.project")
    reference = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16)).eval()
    reference[0].load_state_dict(project.conv.state_dict())
    net.eval()
    x = torch.randn(2, 8, 15, 16)
    hidden = net(x, outputs=[1])[0]
    torch.testing.assert_close(net(x), hidden + reference(x), rtol=0, atol=0)


def test_skip_connect_without_projection_is_a_plain_add():
    net = nv.build([((8, 1), nv.Input()), ((8, 1), nv.Conv2d(3)), ((8, 1), nv.SkipConnect2d[[0, 1]]())])
    assert single(net).project is None
    x = torch.randn(1, 8, 5, 5)
    torch.testing.assert_close(net(x), x + net(x, outputs=[1])[0])


def test_a_head_on_a_pooled_map_is_a_linear_layer_with_a_conv_weight():
    """The 1x1 conv of a "(1, 1)" line runs as F.linear (faster on CPU), equal to nn.Conv2d and nn.Linear."""
    import torch.nn.utils.prune as prune

    from neurlink.nn.pointwise import Conv2dOnPoints

    net = nv.build([((8, "(1, 1)"), nv.Input()), ((5, "(1, 1)"), nv.Conv2d(1))])
    head = net[1].conv
    assert isinstance(head, Conv2dOnPoints) and isinstance(head, torch.nn.Conv2d)
    x = torch.randn(3, 8, 1, 1, requires_grad=True)
    y = net(x)
    torch.testing.assert_close(y, torch.nn.functional.conv2d(x, head.weight, head.bias))
    y.sum().backward()
    torch.testing.assert_close(head.weight.grad.flatten(1), torch.ones(3, 5).T @ x.detach().flatten(1))
    prune.l1_unstructured(head, "weight", amount=0.5)  # pruning reads self.weight in forward, as for any conv
    torch.testing.assert_close(net(x), torch.nn.functional.conv2d(x, head.weight, head.bias))
    assert int((head.weight == 0).sum()) == 20
