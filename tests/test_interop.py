"""torchvision weights in and out: the key mapping, and every way a state_dict can fail to fit."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import neurlink
from neurlink import nv
from neurlink.interop import load_torchvision, to_torchvision_state_dict
from neurlink.models.resnet import Bottleneck


# the classifiers (the segmentation models on ResNets have their own test, in test_segmentation.py)
@pytest.mark.parametrize(
    "name", [name for name in neurlink.list_models("*resne*") if hasattr(torchvision.models, name)]
)
def test_keys_and_shapes_match_torchvision(name: str) -> None:
    # on the meta device: the mapping of every builder, the largest included, without memory
    with torch.device("meta"):
        net = neurlink.create_model(name)
        reference = getattr(torchvision.models, name)(weights=None)
    ours = to_torchvision_state_dict(net)
    theirs = reference.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[key].shape == theirs[key].shape for key in theirs)


def test_mapping_is_structural() -> None:
    state = to_torchvision_state_dict(neurlink.resnet50())
    net = neurlink.resnet50()
    # line 3 is the first block of layer1, its sub-line 4 the projecting skip
    assert state["layer1.0.downsample.0.weight"] is not None
    assert torch.equal(state["layer1.0.downsample.1.running_var"], net.state_dict()["3.4.project.norm.running_var"])
    assert state["fc.weight"].shape == (1000, 2048)


def _fresh(name: str = "resnet18", **kwargs) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return neurlink.create_model(name, **kwargs), getattr(torchvision.models, name)(weights=None, **kwargs)


def test_a_module_may_be_given() -> None:
    net, reference = _fresh()
    assert load_torchvision(net, reference.eval()) is net
    x = torch.randn(2, 3, 35, 35)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x).flatten(1), reference(x), rtol=1e-5, atol=1e-5)


def test_shape_mismatch_names_both_keys() -> None:
    net, _ = _fresh(num_classes=10)
    before = net.state_dict()["1.conv.weight"].clone()
    state = torchvision.models.resnet18(weights=None).state_dict()
    with pytest.raises(neurlink.StateDictError) as error:
        load_torchvision(net, state)
    message = str(error.value)
    assert (
        "torchvision key 'fc.weight' has shape [1000, 512], but neurlink key '12.conv.weight' needs [10, 512]"
        in message
    )
    assert "'fc.bias'" in message and "'12.conv.bias'" in message
    assert isinstance(error.value, neurlink.NeurlinkError)
    assert torch.equal(net.state_dict()["1.conv.weight"], before)  # nothing was loaded


def test_missing_key_names_both_keys() -> None:
    net, reference = _fresh()
    state = reference.state_dict()
    del state["layer2.0.downsample.1.running_var"]
    with pytest.raises(
        neurlink.StateDictError,
        match=r"torchvision key 'layer2.0.downsample.1.running_var' is missing; "
        r"neurlink key '5.3.project.norm.running_var' needs it",
    ):
        load_torchvision(net, state)


def test_unused_keys_are_errors() -> None:
    net, _ = _fresh()
    state = torchvision.models.resnet34(weights=None).state_dict()  # same stages, more blocks
    with pytest.raises(neurlink.StateDictError) as error:
        load_torchvision(net, state)
    message = str(error.value)
    assert (
        "torchvision key 'layer1.2.conv1.weight' is not used: no neurlink key maps to it; the closest mapped key,"
        " 'layer1.1.conv1.weight', goes to neurlink key '4.1.conv.weight'"
    ) in message
    assert "... and 88 more" in message


def test_extra_tensor_is_an_error() -> None:
    net, reference = _fresh()
    state = reference.state_dict()
    state["fc.scale"] = torch.ones(1)
    with pytest.raises(neurlink.StateDictError, match="torchvision key 'fc.scale' is not used"):
        load_torchvision(net, state)


def test_prefixed_checkpoint_gets_a_hint() -> None:
    net, reference = _fresh()
    state = {"module." + key: value for key, value in reference.state_dict().items()}
    with pytest.raises(
        neurlink.StateDictError,
        match=r"torchvision key 'conv1.weight' is missing \(it has 'module.conv1.weight'\); "
        r"neurlink key '1.conv.weight' needs it",
    ):
        load_torchvision(net, state)


def test_old_checkpoints_without_num_batches_tracked() -> None:
    net, reference = _fresh()
    state = {k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if key.endswith("num_batches_tracked"):
                value.fill_(7)
    load_torchvision(net, state)
    counts = [v for k, v in net.state_dict().items() if k.endswith("num_batches_tracked")]
    assert counts and all(int(count) == 0 for count in counts)


class Residual(nv.Nerve):
    """The README's user block: convs and a projecting skip, as torchvision's Bottleneck."""

    def __init__(self) -> None:
        super().__init__()
        dims_in, dims_out = self.input_links[0].dims[0], self.target_dims[0]
        hidden = dims_out.channels // 4
        self.add(
            [
                ((hidden, dims_in.shape), nv.Conv2d_BN_ReLU(1)),
                ((hidden, dims_out.shape), nv.Conv2d_BN_ReLU(3)),
                (dims_out, nv.Conv2d_BN_ReLU(1, act=None)),
                (dims_out, nv.SkipConnect2d[[0, -1]](1, norm=nn.BatchNorm2d)),
                (dims_out, nn.ReLU(inplace=True)),
            ]
        )


def test_a_users_own_resnet_maps() -> None:
    # not a zoo network: written by hand, with another block class and no tags
    stages = [((64 * 4 * 2**k, 4 * 2**k), Residual()) for k in range(4) for _ in range((3, 4, 6, 3)[k])]
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((64, 2), nv.Conv2d_BN_ReLU(7)),
            ((64, 4), nv.MaxPool2d(3)),
            stages,
            ((2048, "(1, 1)"), nv.AvgPool2d()),
            ((1000, "(1, 1)"), nv.Conv2d(1)),
        ]
    )
    with torch.device("meta"):
        reference = torchvision.models.resnet50(weights=None)
    assert list(to_torchvision_state_dict(net)) == list(reference.state_dict())


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3)), ((8, 2), nv.Conv2d_BN_ReLU(3))],
            r"line 2 \(Conv2d_BN_ReLU\) has weights, but torchvision's ResNet has only",
        ),
        (
            [((3, 1), nv.Input()), ((256, 4), Bottleneck())],
            r"line 1 \(Bottleneck\) is a block before any stem conv",
        ),
        (
            [((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3)), ((8, 2), Bottleneck(expansion=1))]
            + [((8, 2), nv.Conv2d(1)), ((8, 2), nv.Conv2d(1))],
            r"line 4 \(Conv2d\) has weights after the classifier \(line 3\)",
        ),
        (
            [((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3)), ((8, 2), Bottleneck(expansion=1))]
            + [((4, 2), nv.Conv2d_BN_ReLU(1))],
            r"neurlink key '3.norm.weight' has no torchvision key",
        ),
        (
            [((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3, act=nn.PReLU))],
            r"neurlink key '1.act.weight' has no torchvision key",
        ),
    ],
)
def test_networks_torchvision_has_no_counterpart_for(lines: list, message: str) -> None:
    with torch.device("meta"):
        net = nv.build(lines)
    with pytest.raises(neurlink.StateDictError, match=message):
        to_torchvision_state_dict(net)


def test_head_must_be_a_1x1_conv() -> None:
    lines = [((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3)), ((8, 2), Bottleneck(expansion=1))]
    with torch.device("meta"):
        net = nv.build([*lines, ((8, "(1, 1)"), nv.AvgPool2d()), ((5, "(1, 1)"), nv.Conv2d(3))])
    with pytest.raises(neurlink.StateDictError, match=r"neurlink key '4.conv.weight' has shape \[5, 8, 3, 3\]"):
        to_torchvision_state_dict(net)


class Scaled(torch.nn.Module):
    """A module with extra state, and one that renames an old key when loading."""

    def __init__(self):
        super().__init__()
        self.scale = 2.0
        self.weight = torch.nn.Parameter(torch.ones(3))
        self._register_load_state_dict_pre_hook(self._rename)

    def get_extra_state(self):
        return {"scale": self.scale}

    def set_extra_state(self, state):
        self.scale = state["scale"]

    @staticmethod
    def _rename(state_dict, prefix, *args):
        if prefix + "old_weight" in state_dict:
            state_dict[prefix + "weight"] = state_dict.pop(prefix + "old_weight")

    def forward(self, x):
        return x * self.scale


def test_load_state_dict_accepts_what_torch_accepts():
    import neurlink.nerves as nv

    net = nv.build([((3, 1), nv.Input()), ((3, 1), Scaled())])
    state = net.state_dict()
    assert state["1._extra_state"] == {"scale": 2.0}
    other = nv.build([((3, 1), nv.Input()), ((3, 1), Scaled())])
    other.get_submodule("1").scale = 5.0
    other.load_state_dict(state)  # its own round trip
    assert other.get_submodule("1").scale == 2.0
    renamed = {"1.old_weight": torch.full((3,), 7.0), "1._extra_state": {"scale": 3.0}}
    other.load_state_dict(renamed)  # the load pre-hook renames the key
    assert other.get_submodule("1").weight.tolist() == [7.0, 7.0, 7.0]


def test_a_reference_model_that_computes_something_else_with_the_same_weights_is_refused() -> None:
    """Every tensor maps, but smp's bilinear decoder or sigmoid head, or timm's max pooling, compute
    another function of them: loading the model (not a bare state_dict) says so."""
    import segmentation_models_pytorch as smp
    import timm

    from neurlink.interop import load_smp, load_timm

    for keywords, message in [
        ({"decoder_interpolation": "bilinear"}, r"build it with decoder_interpolation='bilinear'"),
        ({"activation": "sigmoid"}, r"ends in Sigmoid after its segmentation head"),
    ]:
        reference = smp.Unet("resnet18", encoder_weights=None, classes=2, **keywords)
        with pytest.raises(neurlink.StateDictError, match=message):
            load_smp(neurlink.unet_resnet18(num_classes=2), reference)
    reference = smp.Unet("resnet18", encoder_weights=None, classes=2, decoder_interpolation="bilinear").eval()
    net = load_smp(neurlink.unet_resnet18(num_classes=2, decoder_interpolation="bilinear"), reference).eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(net(x), reference(x))
    with pytest.raises(neurlink.StateDictError, match=r"global_pool='max', this network averages"):
        load_timm(
            neurlink.hrnet_w18_small(num_classes=10),
            timm.create_model("hrnet_w18_small", num_classes=10, global_pool="max"),
        )


def test_loading_into_a_meta_network_or_from_what_is_not_a_state_dict_is_refused() -> None:
    """torch copies into meta tensors as a silent no-op; a path or None is not a state_dict."""
    with torch.device("meta"):
        shapes_only = neurlink.resnet18()
    with pytest.raises(neurlink.StateDictError, match="on the meta device"):
        load_torchvision(shapes_only, torchvision.models.resnet18())
    for given, message in [("/weights.pth", r"not a str \(read a file with torch.load"), (None, "not a NoneType")]:
        with pytest.raises(neurlink.StateDictError, match=message):
            load_torchvision(neurlink.resnet18(), given)


def test_the_reference_given_first_says_which_argument_is_which() -> None:
    with pytest.raises(
        neurlink.StateDictError, match=r"load_torchvision\(model, ...\): model is a ResNet, not a neurlink network"
    ):
        load_torchvision(torchvision.models.resnet18(), neurlink.resnet18())
    with pytest.raises(neurlink.StateDictError, match=r"to_torchvision_state_dict\(net\) with a neurlink network"):
        to_torchvision_state_dict(torchvision.models.resnet18())
