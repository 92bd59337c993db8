"""Ultralytics' YOLOv8 and YOLO11 blocks written as lines (``neurlink.models.yolo_blocks``), each against
Ultralytics' own module (ultralytics 8.4.190) with the same weights: every block of YOLOv8 n and s and
YOLO11 n, s and m as Ultralytics' ``parse_model`` makes it from the YAML, and more settings of each built
directly. Outputs in eval at odd sizes, outputs, gradients and running statistics in training, parameter
counts, the weights found through the sub-lines' tags under Ultralytics' names, and the mistakes the blocks
refuse, naming the line."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import fx, nn
from ultralytics.nn import tasks as ultralytics_tasks
from ultralytics.nn.modules import block as ultralytics_blocks

import neurlink
import neurlink.nerves as nv
from neurlink.errors import DimsError, NerveArgumentError
from neurlink.interop import load_by_structure, to_reference_state_dict
from neurlink.interop.structure import structure_pairs
from neurlink.models.yolo_blocks import (
    C2PSA,
    SPPF,
    AttentionHeads,
    Bottleneck,
    C2f,
    C3k,
    C3k2,
    PSAAttention,
    PSABlock,
    conv,
    yolo_norm,
)

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

SIZES = ((13, 17), (7, 5))  # odd sizes, as every block keeps its input's shape


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomize(reference: nn.Module, seed: int) -> None:
    """Random conv weights of a small scale and random norm affines and statistics, with Ultralytics' norm
    settings (its ``initialize_weights``: eps 0.001, momentum 0.03), so a swapped tensor changes the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / fan_in**0.5)
            if isinstance(module, nn.BatchNorm2d):
                module.eps, module.momentum = 1e-3, 0.03
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.2)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                module.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=generator)))


# Where Ultralytics registers a module before one that runs first (so before one of an earlier line):
# C2f's and C2PSA's cv2 before m, C3k's cv3 (and cv2) before m, Attention's proj before pe.
ORDERS: dict[type, dict[str, str]] = {
    ultralytics_blocks.Bottleneck: {},
    ultralytics_blocks.C2f: {"cv2": "last"},
    ultralytics_blocks.C3k2: {"cv2": "last"},  # and with C3k blocks, theirs (order_of)
    ultralytics_blocks.C3k: {"m": "after:cv1"},
    ultralytics_blocks.SPPF: {},
    ultralytics_blocks.C2PSA: {"cv2": "last", "*.attn.proj": "last"},
    ultralytics_blocks.PSABlock: {"attn.proj": "last"},
    ultralytics_blocks.Attention: {"proj": "last"},
}


def order_of(reference: nn.Module) -> dict[str, str]:
    order = ORDERS[type(reference)]
    if isinstance(reference, ultralytics_blocks.C3k2) and isinstance(reference.m[0], ultralytics_blocks.C3k):
        return {**order, "m.*.m": "after:cv1"}  # each C3k's blocks m before its cv2 and cv3
    return order


def one_block(c1: int, c2: int, block: Any) -> nv.Network:
    return nv.build([((c1, 1), nv.Input()), ((c2, 1), block)])


def assert_equal_to(ours: nv.Network, reference: nn.Module, c1: int, seed: int = 0) -> None:
    """Ours with the reference's weights computes what it computes: in eval at odd sizes, and in training
    (the outputs, every gradient, the running statistics after the step)."""
    order = order_of(reference)
    randomize(reference, seed)
    load_by_structure(ours, reference, order=order)
    assert count(ours) == count(reference)
    generator = torch.Generator().manual_seed(seed + 1)
    ours.eval(), reference.eval()
    with torch.no_grad():
        for size in SIZES:
            x = torch.randn(2, c1, *size, generator=generator)
            expected = reference(x)
            torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)  # the first call checks the lines
            torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)  # then the flat forward
    ours.train(), reference.train()
    x = torch.randn(2, c1, *SIZES[0], generator=generator)
    mine, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, expected = ours(mine), reference(theirs)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    upstream = torch.randn(expected.shape, generator=generator)
    y.backward(upstream)
    expected.backward(upstream)
    torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-5, atol=1e-5)
    parameters = dict(reference.named_parameters())
    pairs = [pair for pair in structure_pairs(ours, reference.state_dict(), order) if pair.reference in parameters]
    assert len(pairs) == len(parameters)
    for pair in pairs:
        grad = ours.get_parameter(pair.neurlink).grad
        assert grad is not None, pair.neurlink
        torch.testing.assert_close(grad, parameters[pair.reference].grad, rtol=1e-5, atol=1e-5, msg=pair.neurlink)
    exported = to_reference_state_dict(ours, reference, order=order)  # the running statistics after the step
    for key, tensor in reference.state_dict().items():
        torch.testing.assert_close(exported[key], tensor, rtol=1e-5, atol=1e-6, msg=key)


# --- every block of the models, as parse_model makes it from Ultralytics' YAML ---------------------------

MODELS = ("yolov8n", "yolov8s", "yolo11n", "yolo11s", "yolo11m")
BLOCKS = (ultralytics_blocks.C3k2, ultralytics_blocks.C2f, ultralytics_blocks.SPPF, ultralytics_blocks.C2PSA)


@functools.cache
def parsed(model: str) -> nn.Sequential:
    """Ultralytics' layers of a model, as ``DetectionModel`` makes them from the YAML (without the forward
    it runs to find the strides): its ``parse_model`` scales the rows' repeats and channels."""
    definition = ultralytics_tasks.yaml_model_load(f"{model}.yaml")
    layers, _ = ultralytics_tasks.parse_model(copy.deepcopy(definition), ch=3, verbose=False)
    return layers


def block_rows() -> Iterator[tuple[str, int]]:
    # the indices of the blocks in yolov8.yaml and yolo11.yaml (checked against the parsed layers below)
    v8 = (2, 4, 6, 8, 9, 12, 15, 18, 21)
    v11 = (2, 4, 6, 8, 9, 10, 13, 16, 19, 22)
    for model in MODELS:
        for index in v8 if model.startswith("yolov8") else v11:
            yield model, index


def ours_for(layer: nn.Module) -> tuple[int, int, Any]:
    """(c1, c2, our block) with the settings Ultralytics' layer was made with, read from its modules."""
    c1, c2 = layer.cv1.conv.in_channels, layer.cv2.conv.out_channels
    if isinstance(layer, ultralytics_blocks.C3k2):  # (a C2f too: first)
        c3k = isinstance(layer.m[0], ultralytics_blocks.C3k)
        shortcut = (layer.m[0].m[0] if c3k else layer.m[0]).add
        return c1, c2, C3k2(len(layer.m), c3k, layer.c / c2, shortcut=shortcut)
    if isinstance(layer, ultralytics_blocks.C2f):
        return c1, c2, C2f(len(layer.m), layer.m[0].add, expansion=layer.c / c2)
    if isinstance(layer, ultralytics_blocks.SPPF):
        activated = not isinstance(layer.cv1.act, nn.Identity)
        return c1, c2, SPPF(layer.m.kernel_size, layer.n, layer.add, cv1_act=activated)
    assert isinstance(layer, ultralytics_blocks.C2PSA)
    return c1, c2, C2PSA(len(layer.m), layer.c / c1)


def test_the_rows_are_the_yaml_blocks() -> None:
    for model in MODELS:
        blocks = [index for index, layer in enumerate(parsed(model)) if isinstance(layer, BLOCKS)]
        assert blocks == [index for name, index in block_rows() if name == model]
    # what parse_model sets beyond the rows: C3k2's c3k on every row of the m model, SPPF's cv1 activated
    rows = [layer for layer in parsed("yolo11m") if isinstance(layer, ultralytics_blocks.C3k2)]
    assert len(rows) == 8 and all(isinstance(layer.m[0], ultralytics_blocks.C3k) for layer in rows)
    assert all(not isinstance(parsed(model)[9].cv1.act, nn.Identity) for model in MODELS)
    assert isinstance(ultralytics_blocks.SPPF(8, 8).cv1.act, nn.Identity)  # the class itself: YOLO26's


@pytest.mark.parametrize(("model", "index"), list(block_rows()), ids=lambda value: str(value))
def test_every_block_of_the_models_is_ultralytics(model: str, index: int) -> None:
    layer = copy.deepcopy(parsed(model)[index])
    c1, c2, block = ours_for(layer)
    assert_equal_to(one_block(c1, c2, block), layer, c1, seed=index)


# --- more settings, each block built directly ------------------------------------------------------------

U = ultralytics_blocks
SETTINGS = [  # (c1, c2, ours, Ultralytics' module of the same arguments)
    pytest.param(32, 32, Bottleneck(), U.Bottleneck(32, 32), id="Bottleneck"),
    pytest.param(16, 32, Bottleneck(), U.Bottleneck(16, 32), id="Bottleneck-no-add"),
    pytest.param(24, 24, Bottleneck(False, 4, (1, 3), 1.0), U.Bottleneck(24, 24, False, 4, (1, 3), 1.0), id="groups"),
    pytest.param(
        16, 16, Bottleneck(True, 1, ((3, 1), (1, 5))), U.Bottleneck(16, 16, True, 1, ((3, 1), (1, 5))), id="k"
    ),
    pytest.param(24, 40, C2f(3, True, 2, 0.25), U.C2f(24, 40, 3, True, 2, 0.25), id="C2f-3"),
    pytest.param(48, 16, C2f(), U.C2f(48, 16), id="C2f"),
    pytest.param(32, 48, C3k(), U.C3k(32, 48), id="C3k"),
    pytest.param(32, 32, C3k(2, False, 2, 0.75, 5), U.C3k(32, 32, 2, False, 2, 0.75, 5), id="C3k-5"),
    pytest.param(40, 24, C3k2(2, True, 0.5, 2, False), U.C3k2(40, 24, 2, True, 0.5, False, 2, False), id="C3k2"),
    pytest.param(16, 32, C3k2(3), U.C3k2(16, 32, 3), id="C3k2-3"),
    pytest.param(24, 24, SPPF(3, 2, True, cv1_act=False), U.SPPF(24, 24, 3, 2, True), id="SPPF-yolo26"),
    pytest.param(24, 40, SPPF(cv1_act=False), U.SPPF(24, 40), id="SPPF-no-act"),
    pytest.param(128, 128, C2PSA(2), U.C2PSA(128, 128, 2), id="C2PSA-2"),
    pytest.param(96, 96, C2PSA(1, 0.75), U.C2PSA(96, 96, 1, 0.75), id="C2PSA-72"),  # 72 channels, one head
    pytest.param(128, 128, PSABlock(0.25, 4, False), U.PSABlock(128, 0.25, 4, False), id="PSABlock"),
    pytest.param(64, 64, PSABlock(), U.PSABlock(64, num_heads=1), id="PSABlock-default"),
    pytest.param(192, 192, PSAAttention(), U.Attention(192, 3), id="Attention"),
    pytest.param(48, 48, PSAAttention(2, 1.0), U.Attention(48, 2, 1.0), id="Attention-ratio"),
]


@pytest.mark.parametrize(("c1", "c2", "block", "reference"), SETTINGS)
def test_settings_are_ultralytics(c1: int, c2: int, block: Any, reference: nn.Module) -> None:
    assert_equal_to(one_block(c1, c2, block), copy.deepcopy(reference), c1)


# --- the lines ---------------------------------------------------------------------------------------------


def tagged_convs(nerve: nv.Nerve, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Every conv line of a block under the name its tags give it, nested blocks' through theirs."""
    for tag in nerve.line_tags():
        module = nerve[tag]
        if isinstance(module, nv.Conv2d_BN_ReLU):
            yield prefix + tag, module
        else:
            yield from tagged_convs(module, f"{prefix}{tag}.")


@pytest.mark.parametrize("model", ["yolov8s", "yolo11m"])
def test_the_tags_name_ultralytics_modules(model: str) -> None:
    """The sub-lines' tags are Ultralytics' paths: a mapping by name needs nothing but the tags."""
    for index in (index for name, index in block_rows() if name == model):
        layer = parsed(model)[index]
        c1, c2, block = ours_for(layer)
        with torch.device("meta"):
            ours = one_block(c1, c2, block)
        named = dict(tagged_convs(ours[1]))
        assert sorted(named) == sorted(name for name, module in layer.named_modules() if hasattr(module, "bn"))
        for name, module in named.items():
            theirs = layer.get_submodule(name)
            assert module.conv.weight.shape == theirs.conv.weight.shape, name
            assert (module.conv.stride, module.conv.padding, module.conv.groups) == (
                theirs.conv.stride,
                theirs.conv.padding,
                theirs.conv.groups,
            ), name
            assert type(module.act) is type(theirs.act) or (module.act is None and isinstance(theirs.act, nn.Identity))
            assert module.norm.eps == 1e-3 and module.norm.momentum == 0.03


def test_the_conv_line_is_ultralytics_conv_at_every_size() -> None:
    """``conv(3)`` from ratio 1 to 2 is Ultralytics' ``Conv(c1, c2, 3, 2)``: ceil(n / 2) at odd sizes too."""
    net = nv.build([((3, 1), nv.Input()), ((8, 2), conv(3)), ((16, 4), conv[-1, "down"](3)), ((16, 4), conv(1))])
    assert "(1): ((8, 2), Conv2d_BN_ReLU(3, norm=yolo_norm, act=SiLU))" in repr(net)
    assert "(2): ((16, 4), Conv2d_BN_ReLU[-1, 'down'](3, norm=yolo_norm, act=SiLU))" in repr(net)
    reference = nn.Sequential(
        ultralytics_tasks.Conv(3, 8, 3, 2), ultralytics_tasks.Conv(8, 16, 3, 2), ultralytics_tasks.Conv(16, 16, 1)
    )
    randomize(reference, 0)
    load_by_structure(net, reference).eval()
    reference.eval()
    with torch.no_grad():
        for size in ((13, 17), (7, 5), (1, 2), (64, 33)):
            x = torch.randn(1, 3, *size)
            torch.testing.assert_close(net(x), reference(x), rtol=1e-5, atol=1e-5)
    assert net["down"].conv.padding == (1, 1) and net["down"].conv.stride == (2, 2)
    norm = yolo_norm(4)
    assert (type(norm), norm.eps, norm.momentum) == (nn.BatchNorm2d, 1e-3, 0.03)


def test_the_flat_forward_copies_nothing_more() -> None:
    """C2f's halves are views of cv1's output (no copy before the concatenation Ultralytics makes too)."""
    net = one_block(16, 16, C2f(2, True)).eval()
    x = torch.randn(1, 16, 9, 11)
    with torch.no_grad():
        net(x), net(x)
    code = net._flat.graph_module.code
    assert code.count("torch.cat(") == 1 and code.count("split(") == 1
    assert "contiguous" not in code and "clone" not in code


def test_symbolic_trace_and_checkpoints_keep_the_blocks(tmp_path: Any) -> None:
    """fx records the attention as one call (``attend`` is ``fx.wrap``'ed); a network of the blocks saves
    and loads back as itself (its lines name the blocks by their import paths)."""
    stem = nv.Conv2d_BN_ReLU(3, act=nn.SiLU)
    lines = [((3, 1), nv.Input()), ((128, 2), stem), ((128, 2), C2PSA(1)), ((64, 2), C3k2(1, True, 0.25))]
    net = nv.build(lines).eval()
    x = torch.randn(1, 3, 21, 27)
    with torch.no_grad():
        expected = net(x)
        traced = fx.symbolic_trace(net)
        torch.testing.assert_close(traced(x), expected, rtol=0, atol=0)
        assert [node.target.__name__ for node in traced.graph.nodes if node.op == "call_function"].count("attend") == 1
        net.save_pretrained(tmp_path)
        loaded = neurlink.from_pretrained(tmp_path).eval()
        torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)
    assert repr(loaded) == repr(net)


# --- mistakes ----------------------------------------------------------------------------------------------


def build_error(block: Any, c1: int = 32, c2: int = 32, shape: Any = 1) -> str:
    with pytest.raises((DimsError, NerveArgumentError)) as raised:
        nv.build([((c1, 1), nv.Input()), ((c2, shape), block)])
    return str(raised.value)


def test_mistakes_name_the_line() -> None:
    message = build_error(C2f(2, True), shape=2)
    assert message.startswith("line 1: ((32, 2), C2f(2, True))")
    assert "C2f keeps the shape 1 of its input line 0, but the line declares 2" in message
    assert "C3k2: c3k=0.25 is not a bool (C3k2's arguments are n, c3k, expansion" in build_error(C3k2(2, 0.25))
    assert "C2f: n=0 is not a positive int" in build_error(C2f(0))
    assert "C2f: shortcut=1 is not a bool" in build_error(C2f(1, 1))
    assert "Bottleneck: kernels[0]=2 is not an odd kernel size" in build_error(Bottleneck(kernels=(2, 3)))
    assert "Bottleneck: kernels=3 is not two kernel sizes" in build_error(Bottleneck(kernels=3))
    assert "SPPF: kernel_size=4 is not an odd kernel size" in build_error(SPPF(4))
    assert "C3k: kernel_size=0 is not an odd kernel size" in build_error(C3k(kernel_size=0))
    message = build_error(Bottleneck(groups=3))
    assert message.startswith("line 1: ((32, 1), Bottleneck(groups=3))")
    assert "groups=3 does not divide the 16 hidden and 32 output channels" in message
    message = build_error(C2f(1, True, 3))
    assert message.startswith("line 1 > line 3 ('m.0'): ((16, 1), Bottleneck[output(2, 1), 'm.0'](True, 3,")  # nested
    assert "groups=3 does not divide the 16 hidden and 16 output channels" in message
    assert "int(32 * 0.01) = 0 hidden channels" in build_error(C2f(expansion=0.01))
    assert "expansion=-1 is not a positive number" in build_error(C3k2(expansion=-1))
    message = build_error(C2PSA(), c2=64)
    assert "C2PSA keeps the dims of its input line 0, (32, 1), but this line declares (64, 1)" in message
    assert "the line's 128 channels do not divide into 3 heads" in build_error(PSAAttention(3), 128, 128)
    assert "int(16 * 0.01) = 0 key channels" in build_error(PSAAttention(2, 0.01))
    assert "PSABlock: shortcut=None is not a bool" in build_error(PSABlock(shortcut=None))
    assert "SPPF halves its input's channels, but line 0 has 1" in build_error(SPPF(), c1=1)


def test_attention_heads_check_their_lines() -> None:
    def error(qkv: int, outputs: tuple[Any, ...]) -> str:
        with pytest.raises(DimsError) as raised:
            nv.build([((3, 1), nv.Input()), ((qkv, 1), nv.Conv2d(1)), (*outputs, AttentionHeads(2, 16))])
        return str(raised.value)

    assert "reads 64 + 2 * 2 * 16 = 128 channels, but line 1 has 120" in error(120, ((64, 1), (64, 1)))
    assert "two outputs of the same dims" in error(128, ((64, 1), (32, 1)))
    assert "the line's 63 channels do not divide into 2 heads" in error(127, ((63, 1), (63, 1)))
    assert "keeps the shape 1 of its input line 1" in error(128, ((64, 2), (64, 2)))
