"""torchvision's RegNetX and RegNetY written as lines: the stages torchvision's builders compute, every
model's keys and shapes both ways (on the meta device), outputs equal to torchvision's with its weights at
even, odd and non-square sizes, gradients in training, the weights round trip, and the errors."""

from __future__ import annotations

import random

import pytest
import torch
import torchvision
from networks import assert_same_outputs, count, randomize_batchnorm
from torch import nn
from torchvision.models import regnet as tv_regnet

import neurlink
import neurlink.nerves as nv
from neurlink.errors import NerveArgumentError, StateDictError, UnexpectedArgumentError
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.interop.torchvision._regnet import regnet_pairs
from neurlink.models import _registry
from neurlink.models.regnet import ResBottleneckBlock, stage_params

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

# torchvision's parameter counts (torchvision.models.<name>(weights=None)), which the registry contract
# reads too; torchvision's builders compute widths with tensors, so on meta only its RegNet class builds
PARAMETERS = {
    "regnet_y_400mf": 4_344_144,
    "regnet_y_800mf": 6_432_512,
    "regnet_y_1_6gf": 11_202_430,
    "regnet_y_3_2gf": 19_436_338,
    "regnet_y_8gf": 39_381_472,
    "regnet_y_16gf": 83_590_140,
    "regnet_y_32gf": 145_046_770,
    "regnet_y_128gf": 644_812_894,
    "regnet_x_400mf": 5_495_976,
    "regnet_x_800mf": 7_259_656,
    "regnet_x_1_6gf": 9_190_136,
    "regnet_x_3_2gf": 15_296_552,
    "regnet_x_8gf": 39_572_648,
    "regnet_x_16gf": 54_278_536,
    "regnet_x_32gf": 107_811_560,
}

COMPARED = ["regnet_y_400mf", "regnet_x_400mf"]  # outputs compared in the default run
# outputs compared with `pytest -m slow` (the larger ones: their keys and shapes on meta, in every run)
SLOW = ["regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_8gf"]
SIZES = ((64, 64), (33, 33), (50, 37))


def torchvision_on_meta(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[nn.Module, tv_regnet.BlockParams]:
    """torchvision's builder ``name`` as it is, its RegNet made on the meta device, and the BlockParams
    the builder computed (its widths are tensor arithmetic, which cannot run on meta)."""
    made: dict = {}
    regnet_class = tv_regnet.RegNet

    def on_meta(block_params, **keywords):
        made["params"] = block_params
        with torch.device("meta"):
            return regnet_class(block_params, **keywords)

    monkeypatch.setattr(tv_regnet, "RegNet", on_meta)
    model = getattr(torchvision.models, name)(weights=None)
    return model, made["params"]


def pair(name: str, seed: int = 0, **keywords) -> tuple[nn.Module, nv.Network]:
    """torchvision's model with random norm statistics and affines, and ours with its weights."""
    theirs = getattr(torchvision.models, name)(weights=None, **keywords)
    randomize_batchnorm(theirs, torch.Generator().manual_seed(seed))
    return theirs, load_torchvision(neurlink.create_model(name, **keywords), theirs).eval()


# --- every builder, on the meta device ---------------------------------------------------------


@pytest.mark.parametrize("name", PARAMETERS)
def test_stages_are_those_torchvisions_builder_computes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    theirs, params = torchvision_on_meta(name, monkeypatch)
    with torch.device("meta"):
        ours = neurlink.create_model(name)
    assert count(ours) == PARAMETERS[name] == count(theirs)
    assert getattr(neurlink, name) is getattr(neurlink.models, name) is _registry._BUILDERS[name]
    blocks = [m for m in ours.children() if isinstance(m, ResBottleneckBlock)]
    tags = ours.line_tags()
    stages = [ours[f"stage{k}"] for k in range(1, 5)]
    assert "stage5" not in tags and all(isinstance(stage, ResBottleneckBlock) for stage in stages)
    widths = [stage.target_dims[0].channels for stage in stages]
    depths = [sum(block.target_dims[0].same_as(stage.target_dims[0]) for block in blocks) for stage in stages]
    groups = [width // stage["f.b"].conv.groups for width, stage in zip(widths, stages)]
    assert (widths, depths, groups) == (params.widths, params.depths, params.group_widths)
    assert [stage.target_dims[0].shape.ratios for stage in stages] == [(4,), (8,), (16,), (32,)]


@pytest.mark.parametrize("name", PARAMETERS)
def test_keys_and_shapes_both_ways_on_meta(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    theirs, _ = torchvision_on_meta(name, monkeypatch)
    with torch.device("meta"):
        ours = neurlink.create_model(name)
    exported = to_torchvision_state_dict(ours)
    expected = theirs.state_dict()
    assert list(exported) == list(expected)  # torchvision's order
    assert all(exported[key].shape == tensor.shape for key, tensor in expected.items())
    assert str(theirs.load_state_dict(exported, strict=True)) == "<All keys matched successfully>"
    with pytest.raises(StateDictError, match="the state_dict fits, but this Network is on the meta device"):
        load_torchvision(ours, expected)  # every key and shape checked, then refused: nothing to copy into


def test_stage_params_is_torchvisions_arithmetic_on_random_settings() -> None:
    """Settings nobody published, where rounding in float64 instead of torchvision's float32 gives
    another width for about one in a thousand."""
    rng = random.Random(0)
    for _ in range(300):
        depth, w_0 = rng.randint(1, 40), 8 * rng.randint(1, 60)
        w_a, w_m = rng.uniform(0, 200), rng.uniform(1.001, 3.5)
        group_width, multiplier = rng.choice([1, 8, 16, 24, 56, 120, 232]), rng.choice([1.0, 0.25, 0.5, 2.0])
        params = tv_regnet.BlockParams.from_init_params(depth, w_0, w_a, w_m, group_width, multiplier)
        expected = tuple(zip(params.widths, params.depths, params.group_widths))
        assert stage_params(depth, w_0, w_a, w_m, group_width, multiplier) == expected, (depth, w_0, w_a, w_m)


def test_a_width_float32_rounds_otherwise_is_torchvisions() -> None:
    # 352 * 1.02 ** 71 / 8 is 179.5002 in float64 (rounded to 180), 179.4998 with float32's 1.02 (179)
    assert 352 * 1.02**71 / 8 > 179.5
    params = tv_regnet.BlockParams.from_init_params(26, 352, 83.5, 1.02, 1)
    assert stage_params(26, 352, 83.5, 1.02, 1)[13] == (1432, 1, 1) == (params.widths[13], 1, 1)


# --- outputs, gradients and weights against torchvision ----------------------------------------


@pytest.mark.parametrize("name", [*COMPARED, *(pytest.param(name, marks=pytest.mark.slow) for name in SLOW)])
def test_torchvision_weights_give_torchvision_outputs(name: str) -> None:
    # every conv is padded k // 2, as the grammar pads it: the two agree at every size
    theirs, ours = pair(name)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for size in SIZES:
            x = torch.randn(2, 3, *size, generator=generator)
            expected = theirs(x)
            assert_same_outputs(ours(x), expected)  # the first call of a size checks every line
            assert_same_outputs(ours(x), expected)  # then the flat forward


@pytest.mark.parametrize("name", COMPARED)
def test_weights_round_trip_strictly(name: str) -> None:
    theirs, ours = pair(name, seed=2)
    exported = to_torchvision_state_dict(ours)
    assert list(exported) == list(theirs.state_dict())
    fresh = getattr(torchvision.models, name)(weights=None)
    assert str(fresh.load_state_dict(exported, strict=True)) == "<All keys matched successfully>"
    for key, value in theirs.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_training_gradients_and_statistics_are_torchvisions() -> None:
    theirs, ours = pair("regnet_y_400mf", seed=3, num_classes=10)
    theirs.train(), ours.train()
    x = torch.randn(2, 3, 50, 37, generator=torch.Generator().manual_seed(4))
    ours(x).flatten(1).square().sum().backward()
    theirs(x).square().sum().backward()
    mapping = {p.reference: p.neurlink for p in regnet_pairs(ours)}
    parameters, buffers = dict(ours.named_parameters()), dict(ours.named_buffers())
    for key, parameter in theirs.named_parameters():
        ours_grad = parameters[mapping[key]].grad
        assert ours_grad is not None and ours_grad.isfinite().all(), key
        scale = max(1e-6, parameter.grad.abs().max().item())
        torch.testing.assert_close(ours_grad.reshape(parameter.shape), parameter.grad, rtol=1e-4, atol=1e-4 * scale)
    for key, buffer in theirs.named_buffers():  # batch statistics of this call, in every norm
        torch.testing.assert_close(buffers[mapping[key]], buffer, rtol=1e-5, atol=1e-6)


def test_stage_tags_give_a_feature_pyramid() -> None:
    net = neurlink.regnet_x_400mf(num_classes=10).eval()
    with torch.no_grad():
        features = net(torch.randn(1, 3, 65, 50), outputs=["stem", "stage1", "stage2", "stage3", "stage4"])
    assert [tuple(f.shape[1:]) for f in features] == [
        (32, 33, 25),
        (32, 17, 13),
        (64, 9, 7),
        (160, 5, 4),
        (400, 3, 2),
    ]


# --- errors ------------------------------------------------------------------------------------


def test_another_familys_state_dict_names_the_keys() -> None:
    with pytest.raises(StateDictError) as raised:  # RegNetX's widths and no SE, into a RegNetY
        load_torchvision(neurlink.regnet_y_400mf(), torchvision.models.regnet_x_400mf(weights=None))
    assert (
        "torchvision key 'trunk_output.block1.block1-0.proj.0.weight' has shape [32, 32, 1, 1], but neurlink key"
        " '2.5.project.conv.weight' needs [48, 32, 1, 1]"
    ) in str(raised.value)
    with pytest.raises(StateDictError, match=r"key 'stem.0.weight' is missing; neurlink key '1.conv.weight' needs it"):
        load_torchvision(neurlink.regnet_x_400mf(), torchvision.models.resnet18(weights=None).state_dict())


def test_a_network_that_is_no_regnet_is_refused_naming_the_line() -> None:
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((32, 2), nv.Conv2d_BN_ReLU(3)),
            ((48, 4), ResBottleneckBlock(8)),
            ((48, 4), nv.Conv2d_BN_ReLU(3)),  # a conv between blocks
            ((48, 4), ResBottleneckBlock(8)),
        ]
    )
    with pytest.raises(StateDictError, match=r"line 4 \(ResBottleneckBlock\) has weights after the classifier"):
        to_torchvision_state_dict(net)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (ResBottleneckBlock(64), r"48 hidden channels .* do not split into groups of group_width=64"),
        (ResBottleneckBlock(9), r"48 hidden channels .* do not split into groups of group_width=9"),  # 5 groups
        (ResBottleneckBlock(8, se_ratio=0.01), r"se_ratio=0.01 of 32 input channels rounds to no channel"),
        (ResBottleneckBlock(8, se_ratio=-1), r"se_ratio=-1 is not a positive number"),
        (ResBottleneckBlock(0), r"group_width=0 is not a positive int"),
        (ResBottleneckBlock(8, bottleneck_multiplier=0), r"bottleneck_multiplier=0 is not a positive number"),
    ],
)
def test_block_errors_name_the_line(block, message: str) -> None:
    with pytest.raises(NerveArgumentError, match=r"line 2: \(\(48, 4\), ResBottleneckBlock") as raised:
        nv.build([((3, 1), nv.Input()), ((32, 2), nv.Conv2d_BN_ReLU(3)), ((48, 4), block)])
    assert raised.match(message)


def test_builder_and_settings_errors() -> None:
    with pytest.raises(
        UnexpectedArgumentError, match=r"regnet_y_400mf\(\) got unexpected keyword argument\(s\) 'width'"
    ):
        neurlink.regnet_y_400mf(width=2)
    with pytest.raises(NerveArgumentError, match="are not RegNet settings"):
        stage_params(16, 50, 27.89, 2.09, 8)  # w_0 not a multiple of 8
    with torch.device("meta"):
        net = neurlink.regnet_x_400mf(stem_width=16, act=nn.SiLU)
    assert net["stem"].conv.out_channels == 16 and isinstance(net["stage1"]["f.a"].act, nn.SiLU)
    assert count(net) == count(torchvision.models.regnet_x_400mf(weights=None, stem_width=16))
