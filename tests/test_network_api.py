"""The network as a container (len, indexing), dict inputs, declared outputs, and shape equality."""

from fractions import Fraction

import numpy as np
import pytest
import torch

import neurlink
import neurlink.nerves as nv
from neurlink.shapes import Dims, ShapeSpec


def two_inputs():
    return nv.build(two_inputs_lines())


def test_len_and_indexing_like_a_sequential():
    net = neurlink.resnet18()
    assert len(net) == 13
    assert net[12] is net.get_submodule("12") and net[-1] is net[12] and net["layer4"] is net[10]
    assert list(net) == [net[k] for k in range(1, 13)]
    with pytest.raises(neurlink.InputError, match=r"line 0 is an Input line"):
        net[0]
    with pytest.raises(neurlink.InputError, match="no line is tagged 'layer5'; did you mean 'layer4'"):
        net["layer5"]


def test_a_line_is_replaced_by_assignment_like_a_sequentials():
    net = nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv2d_BN_ReLU[-1, "stem"](3)), ((8, 1), torch.nn.ReLU())])
    x = torch.randn(1, 3, 8, 8)
    net(x)
    net[-1] = torch.nn.Tanh()
    net["stem"].norm = torch.nn.Identity()
    torch.testing.assert_close(net(x), torch.tanh(torch.relu(net[1].conv(x))))
    with pytest.raises(neurlink.InputError, match=r"line 0 is an Input line .*no module to replace"):
        net[0] = torch.nn.Identity()
    with pytest.raises(neurlink.NeurlinkError, match="is not an nn.Module"):
        net[1] = torch.relu


def test_a_nerve_is_indexed_by_its_sub_lines_tags_as_a_network_by_its_lines():
    from neurlink.models.unet import UnetDecoderBlock

    net = neurlink.unet_resnet18(num_classes=2)
    block = next(module for module in net.children() if isinstance(module, UnetDecoderBlock))
    tags = block.line_tags()
    assert list(tags) == ["conv1", "conv2"]
    assert block["conv2"] is block[tags["conv2"]] is block[-1] and block["conv1"] is block[-2]
    assert block["conv1"].conv.kernel_size == (3, 3)
    with pytest.raises(neurlink.InputError, match="no line is tagged 'conv3'; did you mean 'conv2' or 'conv1'"):
        block["conv3"]
    assert len(block) == 6 and list(block) == [block[k] for k in range(2, 6)]  # lines 0, 1: its inputs
    assert "conv1" in block and block["conv1"] in block and "conv3" not in block and net[1] not in block
    with pytest.raises(IndexError, match="line 0 is one of the nerve's inputs"):
        block[0]
    conv = net[1]  # the stem: a nerve that makes its modules itself
    assert conv.line_tags() == {} and bool(conv)
    for probe in (lambda: conv[0], lambda: len(conv), lambda: iter(conv), lambda: "x" in conv):
        with pytest.raises(TypeError, match="Conv2d_BN_ReLU has no lines of its own"):
            probe()
    assert "stage2" in neurlink.hrnet_w18_small() and "layer4" in net


def test_inputs_as_a_dict_keyed_by_their_tags():
    net = two_inputs()
    image, mask = torch.randn(1, 3, 8, 8), torch.randn(1, 1, 8, 8)
    torch.testing.assert_close(net({"mask": mask, "image": image}), net([image, mask]), rtol=0, atol=0)
    with pytest.raises(neurlink.InputError, match=r"expected \['image', 'mask'\], got \['image'\]"):
        net({"image": image})


def test_declared_outputs_are_what_every_caller_gets():
    torch.manual_seed(0)
    net = nv.build(two_inputs_lines(), outputs=["feat", -1])
    x = [torch.randn(1, 3, 8, 8), torch.randn(1, 1, 8, 8)]
    for _ in range(2):  # the checked first call and the flat forward agree
        feat, pooled = net(x)
        assert feat.shape == (1, 8, 4, 4) and pooled.shape == (1, 8, 2, 2)
    program = torch.export.export(net, (x,))
    got = program.module()(x)
    torch.testing.assert_close(got[1], pooled)
    with pytest.raises(neurlink.SelectorError, match="outputs=\\['fet'\\]: no line is tagged 'fet'"):
        nv.build(two_inputs_lines(), outputs=["fet"])


def two_inputs_lines():
    return [
        ((3, 1), nv.Input["image"]()),
        ((1, 1), nv.Input["mask"]()),
        ((4, 1), nv.Concat[["image", "mask"]]()),
        ((8, 2), nv.Conv2d[-1, "feat"](3)),
        ((8, 4), nv.MaxPool2d(2)),
    ]


def test_shape_equality_is_an_equivalence_with_matching_hashes():
    one, two = ShapeSpec(2), ShapeSpec((2, 2))
    assert one != two and one.same_as(two, 2) and not one.same_as(ShapeSpec((2, 2, 2)), 2)
    assert ShapeSpec(0.5) == ShapeSpec(Fraction(1, 2)) and hash(ShapeSpec(0.5)) == hash(ShapeSpec(Fraction(1, 2)))
    assert len({ShapeSpec(2), ShapeSpec((2, 2)), ShapeSpec(2.0)}) == 2
    assert Dims(8, 2) == (8, 2) and Dims(8, 2) != Dims(8, (2, 2))


def test_numpy_and_fraction_ratios_and_channels():
    net = nv.build(
        [((np.int64(3), 1), nv.Input()), ((8, np.int64(2)), nv.Conv2d(3)), ((8, Fraction(2, 3)), nv.Interpolate())]
    )
    assert net(torch.randn(1, 3, 12, 12)).shape == (1, 8, 18, 18)
    assert ShapeSpec(np.float32(0.5)) == ShapeSpec(0.5)
    with pytest.raises(neurlink.DimsError):
        ShapeSpec(np.bool_(True))


def test_a_plain_module_with_an_inline_attribute_and_identity_norms():
    class Odd(torch.nn.Module):
        inline = "not a nerve's method"

        def forward(self, x):
            return x * 2

    net = nv.build([((3, 1), nv.Input()), ((3, 1), Odd()), ((4, 1), nv.Conv2d(1, norm=torch.nn.Identity()))])
    x = torch.randn(1, 3, 4, 4)
    for _ in range(2):
        assert net(x).shape == (1, 4, 4, 4)
    assert net[2].conv.bias is not None and net[2].norm is None


def test_compile_fullgraph_with_outputs_on_the_first_call():
    torch._dynamo.reset()
    net = two_inputs().eval()
    compiled = torch.compile(net, fullgraph=True, backend="eager")
    x = [torch.randn(1, 3, 8, 8), torch.randn(1, 1, 8, 8)]
    got = compiled(x, outputs=["feat"])[0]
    torch.testing.assert_close(got, net(x, outputs=["feat"])[0])
    torch._dynamo.reset()


def test_the_collector_keeps_running_during_a_build():
    import gc
    import threading

    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(gc.isenabled())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        neurlink.resnet50()
    finally:
        stop.set()
        watcher.join()
    assert seen and all(seen) and gc.get_freeze_count() == 0


def test_the_lines_to_return_are_given_by_keyword_not_as_the_second_argument():
    """The second argument is output_intermediate (positional since the legacy ONNX exporter passes it so):
    a list there would return every line, not the lines listed."""
    net = neurlink.resnet18(num_classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(neurlink.NeurlinkError, match=r"output_intermediate=\['layer4'\] is not True or False"):
        net(x, ["layer4"])
    assert len(net(x, True)) == len(net) and net(x, False).shape == (1, 10, 1, 1)
