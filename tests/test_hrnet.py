"""HRNet: timm's nine HRNets in the grammar, timm's weights both ways, any input size."""

from __future__ import annotations

import pytest
import timm
import torch
from networks import assert_same_outputs, count, randomize_batchnorm
from torch import nn

import neurlink
from neurlink import nv
from neurlink.interop import load_timm, to_timm_state_dict
from neurlink.interop.timm import _pairs
from neurlink.models.hrnet import HRModule, HRTransition
from neurlink.models.resnet import Bottleneck

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

# timm's parameter counts (timm.create_model(name), timm 1.0.31).
PARAMETERS = {
    "hrnet_w18_small": 13_187_464,
    "hrnet_w18_small_v2": 15_597_464,
    "hrnet_w18": 21_299_004,
    "hrnet_w30": 37_712_220,
    "hrnet_w32": 41_232_680,
    "hrnet_w40": 57_557_160,
    "hrnet_w44": 67_064_984,
    "hrnet_w48": 77_469_864,
    "hrnet_w64": 128_059_944,
}
# the four models whose outputs are compared with timm's at 224 and 256
COMPARED = ["hrnet_w18_small", "hrnet_w18_small_v2", "hrnet_w18", "hrnet_w32"]


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_parameter_count_on_meta(name: str) -> None:
    with torch.device("meta"):
        net = neurlink.create_model(name)
    assert count(net) == PARAMETERS[name]
    assert name in neurlink.list_models("hrnet*")


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_every_builder_trains_and_round_trips_through_timm(name: str) -> None:
    torch.manual_seed(0)
    net = getattr(neurlink, name)(num_classes=10)
    assert count(net) == PARAMETERS[name] - 2049 * 990  # a 10-class classifier (weights and bias) instead of 1000
    y = net(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 10, 1, 1) and not y.isnan().any()
    y.square().mean().backward()
    missing = [key for key, p in net.named_parameters() if p.grad is None or not p.grad.isfinite().all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"
    # strict both ways: timm takes our weights with every key, and gives them back unchanged
    reference = timm.create_model(name, num_classes=10)
    state = to_timm_state_dict(net)
    assert list(state) == list(reference.state_dict())
    reference.load_state_dict(state, strict=True)
    again = load_timm(getattr(neurlink, name)(num_classes=10), reference).state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(again[key], value), key


@pytest.mark.parametrize("name", COMPARED)
def test_timm_weights_give_timm_outputs(name: str) -> None:
    generator = torch.Generator().manual_seed(0)
    reference = timm.create_model(name)
    randomize_batchnorm(reference, generator)
    net = load_timm(getattr(neurlink, name)(), reference).eval()
    with torch.no_grad():
        for size in (224, 256):
            x = torch.randn(1, 3, size, size, generator=generator)
            for _ in range(2):  # the first call runs the lines one by one and checks them, the second the flat graph
                assert_same_outputs(net(x), reference(x))


def test_training_step_equals_timm() -> None:
    """Gradients and running statistics in train mode, tensor for tensor."""
    torch.manual_seed(0)
    reference = timm.create_model("hrnet_w18_small", num_classes=5)
    net = load_timm(neurlink.hrnet_w18_small(num_classes=5), reference)
    x = torch.randn(2, 3, 64, 64)
    for _ in range(2):  # the verified first call, then the flat graph
        net.zero_grad(), reference.zero_grad()
        net(x).flatten(1).square().sum().backward()
        reference(x).square().sum().backward()
    ours = dict(net.named_parameters())
    theirs = dict(reference.named_parameters())
    for pair in _pairs(net):
        if pair.reference in theirs:
            expected = theirs[pair.reference].grad
            torch.testing.assert_close(ours[pair.neurlink].grad.reshape(expected.shape), expected, rtol=1e-4, atol=1e-5)
    reference.load_state_dict(to_timm_state_dict(net))  # running statistics included, strictly


def test_any_input_size_and_the_stage4_branches() -> None:
    torch.manual_seed(0)
    net = neurlink.hrnet_w18_small(num_classes=10).eval()
    reference = timm.create_model("hrnet_w18_small", num_classes=10).eval()
    x = torch.randn(1, 3, 225, 200)
    with pytest.raises(RuntimeError, match="size"):  # timm: a size mismatch inside a fuse layer
        reference(x)
    with torch.no_grad():
        assert net(x).shape == (1, 10, 1, 1)
        (branches,) = net(x, outputs=["stage4"])
    assert isinstance(branches, (tuple, list))
    # C, 2C, 4C, 8C channels at ceil(H / 4), ceil(H / 8), ceil(H / 16), ceil(H / 32)
    assert [tuple(b.shape) for b in branches] == [(1, 16, 57, 50), (1, 32, 29, 25), (1, 64, 15, 13), (1, 128, 8, 7)]
    with torch.no_grad():
        (w18,) = neurlink.hrnet_w18().eval()(torch.randn(1, 3, 97, 131), outputs=["stage4"])
    assert [tuple(b.shape) for b in w18] == [(1, 18, 25, 33), (1, 36, 13, 17), (1, 72, 7, 9), (1, 144, 4, 5)]


def test_stem_and_stage_tags() -> None:
    with torch.device("meta"):
        net = neurlink.hrnet_w18()
    assert [t for t in ("stem", "stage2", "stage3", "stage4") if isinstance(net[t], nn.Module)] == [
        "stem",
        "stage2",
        "stage3",
        "stage4",
    ]
    assert isinstance(net["stage4"], HRModule) and len(net["stage4"].target_dims) == 4


# --- HRNet written by a user ------------------------------------------------------------------


HEAD = [  # timm's classification head, for 3 classes
    ((128, 4), Bottleneck[nv.output("stage4", 0)]()),
    ((256, 8), nv.Conv2d_BN_ReLU(3, bias=True)),
    ((256, 8), Bottleneck[nv.output("stage4", 1)]()),
    ((256, 8), nv.Add[[-1, -2]]()),
    ((512, 16), nv.Conv2d_BN_ReLU(3, bias=True)),
    ((512, 16), Bottleneck[nv.output("stage4", 2)]()),
    ((512, 16), nv.Add[[-1, -2]]()),
    ((1024, 32), nv.Conv2d_BN_ReLU(3, bias=True)),
    ((1024, 32), Bottleneck[nv.output("stage4", 3)]()),
    ((1024, 32), nv.Add[[-1, -2]]()),
    ((2048, 32), nv.Conv2d_BN_ReLU(1, bias=True)),
    ((2048, "(1, 1)"), nv.AvgPool2d()),
    ((3, "(1, 1)"), nv.Conv2d(1)),
]


def small_hrnet(width: int = 8):
    """An HRNet of timm's shape written by hand: 2 stage-1 blocks, then 2, 3 and 4 branches."""
    c = width
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((64, 2), nv.Conv2d_BN_ReLU(3)),
            ((64, 4), nv.Conv2d_BN_ReLU(3)),
            [((64, 4), Bottleneck())] * 2,
            ((c, 4), (2 * c, 8), HRTransition()),
            ((c, 4), (2 * c, 8), HRModule(blocks=1)),
            ((c, 4), (2 * c, 8), (4 * c, 16), HRTransition()),
            [((c, 4), (2 * c, 8), (4 * c, 16), HRModule(blocks=(1, 2, 1)))] * 2,
            ((c, 4), (2 * c, 8), (4 * c, 16), (8 * c, 32), HRTransition()),
            ((c, 4), (2 * c, 8), (4 * c, 16), (8 * c, 32), HRModule[-1, "stage4"](blocks=1)),
            *HEAD,
        ]
    )


def test_a_user_written_hrnet_maps_to_timm() -> None:
    from timm.models.hrnet import HighResolutionNet

    def stage(modules, branches, blocks):
        return dict(
            num_modules=modules,
            num_branches=branches,
            block_type="BASIC",
            num_blocks=blocks,
            num_channels=tuple(8 * 2**i for i in range(branches)),
            fuse_method="SUM",
        )

    config = dict(
        stem_width=64,
        stage1=dict(
            num_modules=1,
            num_branches=1,
            block_type="BOTTLENECK",
            num_blocks=(2,),
            num_channels=(16,),
            fuse_method="SUM",
        ),
        stage2=stage(1, 2, (1, 1)),
        stage3=stage(2, 3, (1, 2, 1)),
        stage4=stage(1, 4, (1, 1, 1, 1)),
    )
    generator = torch.Generator().manual_seed(1)
    reference = HighResolutionNet(config, num_classes=3)
    randomize_batchnorm(reference, generator)
    net = load_timm(small_hrnet(), reference).eval()
    x = torch.randn(2, 3, 96, 64, generator=generator)
    with torch.no_grad():
        assert_same_outputs(net(x), reference(x))
        assert_same_outputs(net(x), reference(x))


def test_hr_module_fuse_layers_follow_the_declared_ratios() -> None:
    """Up: a 1x1 conv + norm, then resized; down: one stride-2 conv per doubling, act between them."""
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((4, 2), nv.Conv2d_BN_ReLU(3)),
            ((4, 2), (8, 4), (16, 16), HRTransition()),  # branch 0 passes; new ones are 1 and 3 doublings down
            ((4, 2), (8, 4), (16, 16), HRModule(blocks=1)),
        ]
    )
    transition, module = net[2], net[3]
    # each part is a sub-line tagged with timm's name: branch 1 is one doubling from branch 0, branch 2 three
    assert list(transition.line_tags()) == ["branch1.0", "branch2.0", "branch2.1", "branch2.2"]
    fuse = [tag for tag in module.line_tags() if tag.startswith("fuse_layers.")]
    assert fuse == [
        *("fuse_layers.0.1", "fuse_layers.0.2", "fuse_layers.1.0.0", "fuse_layers.1.2"),
        *("fuse_layers.2.0.0", "fuse_layers.2.0.1", "fuse_layers.2.0.2", "fuse_layers.2.1.0", "fuse_layers.2.1.1"),
    ]
    assert [tag for tag in module.line_tags() if tag.startswith("branches.")] == [
        "branches.0.0",
        "branches.1.0",
        "branches.2.0",
    ]
    down = [module[f"fuse_layers.2.0.{k}"] for k in range(3)]  # ratio 2 -> 16: three convs
    assert [d.conv.stride for d in down] == [(2, 2)] * 3
    assert [d.conv.out_channels for d in down] == [4, 4, 16]
    assert [type(d.act).__name__ for d in down] == ["ReLU", "ReLU", "NoneType"]  # no act after the last
    up = module["fuse_layers.0.2"]
    assert (up.conv.kernel_size, up.conv.out_channels) == ((1, 1), 4)
    shapes = [tuple(y.shape) for y in net(torch.randn(1, 3, 35, 35))]
    assert shapes == [(1, 4, 18, 18), (1, 8, 9, 9), (1, 16, 3, 3)]


def test_hr_module_equals_hand_written_torch() -> None:
    """Two branches, one BasicBlock each, fused: against plain torch.nn with the same weights."""
    torch.manual_seed(0)
    net = nv.build(
        [
            ((4, 1), nv.Input()),
            ((8, 2), nv.Input()),
            ((4, 1), (8, 2), nv.Bundle[[0, 1]]()),
            ((4, 1), (8, 2), HRModule(blocks=1)),
        ]
    ).eval()
    module = net[3]
    state = module.state_dict()
    a, b = torch.randn(1, 4, 9, 9), torch.randn(1, 8, 5, 5)

    def conv_bn(prefix, x, stride=1, relu=True):
        w = state[f"{prefix}.conv.weight"]
        y = nn.functional.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2)
        y = nn.functional.batch_norm(
            y,
            state[f"{prefix}.norm.running_mean"],
            state[f"{prefix}.norm.running_var"],
            state[f"{prefix}.norm.weight"],
            state[f"{prefix}.norm.bias"],
        )
        return y.relu() if relu else y

    def basic(line, x):
        return (conv_bn(f"{line}.2", conv_bn(f"{line}.1", x), relu=False) + x).relu()

    tags = module.line_tags()  # the sub-line of each part
    branch0, branch1 = basic(tags["branches.0.0"], a), basic(tags["branches.1.0"], b)
    up = conv_bn(str(tags["fuse_layers.0.1"]), branch1, relu=False)
    up = nn.functional.interpolate(up, size=(9, 9), mode="nearest")
    down = conv_bn(str(tags["fuse_layers.1.0.0"]), branch0, stride=2, relu=False)
    with torch.no_grad():
        out0, out1 = net([a, b])
    torch.testing.assert_close(out0, (branch0 + up).relu())
    torch.testing.assert_close(out1, (down + branch1).relu())


@pytest.mark.parametrize(
    ("lines", "error", "message"),
    [
        (
            [((8, 4), (16, 8), (32, 16), HRModule())],
            neurlink.DimsError,
            "reads 2 branch\\(es\\), but the line declares 3",
        ),
        ([((8, 4), (16, 16), HRModule())], neurlink.DimsError, "an HR module keeps every branch's ratio"),
        (
            [((8, 4), (16, 8), HRModule(blocks=(1, 2, 3)))],
            neurlink.NerveArgumentError,
            "blocks=\\(1, 2, 3\\) for 2 branches",
        ),
        ([((8, 4), (16, 8), HRModule(blocks=0))], neurlink.NerveArgumentError, "blocks=0 is not a positive int"),
        ([((8, 4), HRTransition())], neurlink.DimsError, "goes from 2 branches to 1"),
        (
            [((8, 4), (16, 8), (32, 24), HRTransition())],
            neurlink.DimsError,
            "no chain of stride-2 convs goes from ratio 8 to 24",
        ),
        ([((8, 4), (16, 16), HRTransition())], neurlink.DimsError, "an existing branch keeps its ratio"),
        ([((8, "(4, 4)"), (16, 8), HRTransition())], neurlink.DimsError, "has an absolute shape"),
        ([((8, 4), (16, 8), HRModule[[1, 1]]())], neurlink.DimsError, "takes one line"),
    ],
)
def test_branch_nerve_errors_name_the_line(lines, error, message) -> None:
    with pytest.raises(error, match=message) as raised:
        nv.build([((3, 1), nv.Input()), ((8, 4), nv.Conv2d(3)), ((8, 4), (16, 8), HRTransition()), *lines])
    assert "line 3" in str(raised.value)


# --- Bundle -----------------------------------------------------------------------------------


def test_bundle_makes_one_line_of_several_outputs() -> None:
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((4, 1), nv.Conv2d[-1, "a"](3)),
            ((6, 2), nv.Conv2d[0, "b"](3)),
            ((4, 1), (6, 2), nv.Bundle[["a", "b"]]()),
            ((6, 2), nv.Identity[nv.output(-1, 1)]()),
        ],
        outputs=[3, -1],
    )
    x = torch.randn(1, 3, 9, 9)
    (a, b), last = net(x)
    with torch.no_grad():
        torch.testing.assert_close(a, net[1](x))
        torch.testing.assert_close(b, net[2](x))
        assert last is b or torch.equal(last, b)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            ((4, 1), (6, 1), nv.Bundle[[1, 2]]()),
            "Bundle output 1 is line 2 \\(6, 2\\), but the line declares \\(6, 1\\)",
        ),
        (((4, 1), (6, 2), nv.Bundle[[1]]()), "takes 2 input\\(s\\), but the selector gives 1"),
    ],
)
def test_bundle_errors(line, message) -> None:
    with pytest.raises(neurlink.NeurlinkError, match=message) as raised:
        nv.build([((3, 1), nv.Input()), ((4, 1), nv.Conv2d(3)), ((6, 2), nv.Conv2d[0](3)), line])
    assert "line 3" in str(raised.value)


# --- summaries and diagrams of multi-output lines -------------------------------------------


def test_summary_lists_every_output_of_a_line() -> None:
    net = neurlink.hrnet_w18_small()
    text = neurlink.summary(net, (1, 3, 225, 200)).table()
    row = next(line for line in text.splitlines() if line.startswith("9 "))
    assert "stage4" in row and "(16, 4)" in row and "(1, 16, 57, 50)" in row
    following = text.splitlines()[text.splitlines().index(row) + 1 :][:3]
    assert [line.split()[:2] for line in following] == [["(32,", "8)"], ["(64,", "16)"], ["(128,", "32)"]]
    assert "(1, 128, 8, 7)" in following[-1]


def test_graph_numbers_the_outputs() -> None:
    diagram = neurlink.graph(neurlink.hrnet_w18_small(), (1, 3, 224, 224))
    stage4 = next(node for node in diagram.nodes if node.path == "9")
    assert "out 3: 128 x base/32, 1x128x7x7" in stage4.label
    assert sorted(edge.label for edge in diagram.edges if edge.source == "n9") == ["out 0", "out 1", "out 2", "out 3"]


# --- what a first user ran into ---------------------------------------------------------------


def test_output_zero_of_a_single_output_line_is_the_line() -> None:
    net = nv.build(
        [((3, 1), nv.Input()), ((8, 2), nv.Conv2d[-1, "stem"](3)), ((8, 2), nv.Identity[nv.output("stem", 0)]())]
    )
    x = torch.randn(2, 3, 16, 16)
    for _ in range(2):  # checked first call, then the flat graph
        assert net(x).shape == (2, 8, 8, 8)


@pytest.mark.parametrize("conv", [nv.Conv1d(7), nv.Conv3d(7)])
def test_branch_nerves_are_2d(conv) -> None:
    with pytest.raises(neurlink.DimsError, match="HRTransition is 2d, but its input line 1 is [13]d"):
        nv.build([((3, 1), nv.Input()), ((16, 4), conv), ((16, 4), (32, 8), HRTransition())])


def test_keywords_the_module_and_its_block_do_not_take() -> None:
    with pytest.raises(neurlink.NerveArgumentError, match=r"'pretrained' \(published weights: weights='DEFAULT'\)"):
        neurlink.hrnet_w18_small(pretrained=True)
    with pytest.raises(neurlink.NerveArgumentError, match="neither it nor its block BasicBlock takes 'pretrained'"):
        nv.build([((18, 1), nv.Input()), ((18, 1), HRModule(pretrained=1))])
    with pytest.raises(neurlink.NerveArgumentError) as raised:
        nv.build([((3, 1), nv.Input()), ((3, 1), nv.Add("x"))])
    assert str(raised.value).endswith("allowed: Add()")  # the signature, without its return annotation


def test_load_errors_say_what_the_keys_are() -> None:
    net = neurlink.hrnet_w18_small(num_classes=10)
    state = timm.create_model("hrnet_w18_small", num_classes=10).state_dict()
    with pytest.raises(neurlink.StateDictError, match="every key starts with 'module.'"):
        load_timm(net, {f"module.{key}": value for key, value in state.items()})
    with pytest.raises(neurlink.StateDictError, match="these keys are neurlink's own"):
        load_timm(net, net.state_dict())


# --- what a review of the change found ----------------------------------------------------------


def test_an_hr_module_runs_on_its_own_and_under_activation_checkpointing() -> None:
    import functools

    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        apply_activation_checkpointing,
        checkpoint_wrapper,
    )

    torch.manual_seed(0)
    reference = timm.create_model("hrnet_w18_small", num_classes=5)
    net = load_timm(neurlink.hrnet_w18_small(num_classes=5), reference)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        (before,) = net.eval()(x, outputs=[8])  # the input of stage4, whose fuse layers resize up
        by_hand = net["stage4"](before)  # no base shape given: sizes come from the branches themselves
        (expected,) = net(x, outputs=["stage4"])
    assert all(torch.equal(a, b) for a, b in zip(by_hand, expected))
    apply_activation_checkpointing(
        net,
        checkpoint_wrapper_fn=functools.partial(checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT),
        check_fn=lambda module: isinstance(module, HRModule),
    )
    net.train(), reference.train()
    net(x).flatten(1).sum().backward()
    reference(x).sum().backward()
    conv = net.get_submodule("1").conv
    torch.testing.assert_close(conv.weight.grad, reference.conv1.weight.grad, rtol=1e-4, atol=1e-5)


def test_a_transition_without_weights_still_starts_a_stage() -> None:
    """Stage 3 keeps stage 2's two branches: timm's transition2 is all Identity, no keys."""
    from timm.models.hrnet import HighResolutionNet

    def stage(branches):
        channels = tuple(8 * 2**i for i in range(branches))
        return dict(
            num_modules=1, num_branches=branches, block_type="BASIC", num_blocks=(1,) * branches,
            num_channels=channels, fuse_method="SUM",
        )  # fmt: skip

    config = dict(
        stem_width=64,
        stage1=dict(
            num_modules=1, num_branches=1, block_type="BOTTLENECK", num_blocks=(1,), num_channels=(16,),
            fuse_method="SUM",
        ),
        stage2=stage(2),
        stage3=stage(2),
        stage4=stage(4),
    )  # fmt: skip
    reference = HighResolutionNet(config, num_classes=3).eval()
    lines = [
        ((3, 1), nv.Input()),
        ((64, 2), nv.Conv2d_BN_ReLU(3)),
        ((64, 4), nv.Conv2d_BN_ReLU(3)),
        ((64, 4), Bottleneck()),
        ((8, 4), (16, 8), HRTransition()),
        ((8, 4), (16, 8), HRModule(blocks=1)),
        ((8, 4), (16, 8), HRTransition()),  # nothing to do: no weights
        ((8, 4), (16, 8), HRModule(blocks=1)),
        ((8, 4), (16, 8), (32, 16), (64, 32), HRTransition()),
        ((8, 4), (16, 8), (32, 16), (64, 32), HRModule[-1, "stage4"](blocks=1)),
    ]
    net = load_timm(nv.build(lines + HEAD), reference).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert_same_outputs(net(x), reference(x))


def test_branches_go_coarser_one_by_one() -> None:
    with pytest.raises(neurlink.DimsError, match="two branches at ratio 4"):
        nv.build(
            [
                ((3, 1), nv.Input()),
                ((8, 4), nv.Conv2d(3)),
                ((8, 4), (16, 4), HRTransition()),
                ((8, 4), (16, 4), HRModule()),
            ]
        )


def test_interpolate_to_the_size_of_another_line() -> None:
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((4, 4), nv.Conv2d[-1, "small"](3)),
            ((4, 2), nv.Conv2d[0, "mid"](3)),
            ((4, 2), nv.Interpolate[["small", "mid"]]("bilinear")),
        ]
    )
    assert not net[3].uses_base_shape
    x = torch.randn(1, 3, 37, 30)
    with torch.no_grad():
        small, mid, out = net(x, outputs=["small", "mid", -1])
        expected = nn.functional.interpolate(small, size=(19, 15), mode="bilinear")
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(net(x), expected)
        torch.testing.assert_close(net[3](small, mid), expected)  # on its own: no base shape needed
    with pytest.raises(neurlink.DimsError, match="must have the declared shape 2"):
        nv.build([((3, 1), nv.Input()), ((4, 4), nv.Conv2d(3)), ((4, 2), nv.Interpolate[[1, 0]]())])
