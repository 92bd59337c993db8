"""Dense prediction: torchvision's FCN, DeepLabV3 and LR-ASPP and smp's U-Net against the references,
their heads and decoder block against plain torch, the dilated backbones, and the misuse errors."""

from __future__ import annotations

import pytest
import segmentation_models_pytorch as smp
import torch
import torchvision
from networks import SEGMENTATION_PARAMETERS as PARAMETERS
from networks import count
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoderBlock as SmpDecoderBlock
from torch import nn
from torchvision.models import segmentation as tv_segmentation
from torchvision.models.segmentation.deeplabv3 import ASPP as TorchvisionASPP
from torchvision.models.segmentation.lraspp import LRASPPHead as TorchvisionLRASPPHead

import neurlink
import neurlink.nerves as nv
from neurlink.interop import load_smp, load_torchvision, to_smp_state_dict, to_torchvision_state_dict
from neurlink.models import _registry
from neurlink.models.segmentation import ASPP, DeepLabHead, FCNHead, LRASPPHead, Multiply
from neurlink.models.unet import UnetDecoderBlock

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

TORCHVISION = [
    pytest.param(name, marks=pytest.mark.slow) if "101" in name else name
    for name in PARAMETERS
    if not name.startswith("unet")
]
SIZES = [(224, 224), (193, 161)]


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random norm statistics and biases (a fresh model has means 0, variances 1 and biases 0), so
    that a wrong mapping (a swapped norm, mean for var, one branch for another) changes the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.2)
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
            if isinstance(module, nn.Conv2d) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.02)
    return model.eval()


def assert_close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Equal to 1e-5 relative to the output's scale."""
    assert ours.shape == theirs.shape
    scale = max(1.0, theirs.abs().max().item())
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * scale)


# --- every builder ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_parameter_count(name: str) -> None:
    with torch.device("meta"):  # no memory: the largest are checked in the fast run too
        net = neurlink.create_model(name)
    assert count(net) == PARAMETERS[name]
    assert getattr(neurlink, name) is getattr(neurlink.models, name) is _registry._BUILDERS[name]


@pytest.mark.parametrize("name", [name for name in PARAMETERS if not name.startswith("unet")])
def test_keys_and_shapes_match_the_references(name: str) -> None:
    with torch.device("meta"):  # every mapping, the largest included, without memory
        ours = to_torchvision_state_dict(neurlink.create_model(name))
        theirs = getattr(tv_segmentation, name)(weights=None, weights_backbone=None).state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[key].shape == theirs[key].shape for key in theirs)


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_outputs(name: str) -> None:
    theirs = randomize(getattr(tv_segmentation, name)(weights=None, weights_backbone=None))
    ours = load_torchvision(neurlink.create_model(name), theirs).eval()
    assert count(ours) == count(theirs) == PARAMETERS[name]
    for size in SIZES:  # any size: the logits land on the input's size
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert_close(ours(x), theirs(x)["out"])
    theirs.load_state_dict(to_torchvision_state_dict(ours))  # and back, strictly


def test_aux_loss_is_a_second_output() -> None:
    theirs = randomize(tv_segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=True))
    ours = load_torchvision(neurlink.deeplabv3_mobilenet_v3_large(aux_loss=True), theirs).eval()
    x = torch.randn(2, 3, 97, 83)
    with torch.no_grad():
        out, aux = ours(x)
        expected = theirs(x)
    assert_close(out, expected["out"])
    assert_close(aux, expected["aux"])
    with torch.device("meta"):
        assert count(neurlink.fcn_resnet50(aux_loss=True)) == count(
            tv_segmentation.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=True)
        )


@pytest.mark.parametrize("depth", [18, 34, pytest.param(50, marks=pytest.mark.slow)])
def test_smp_outputs(depth: int) -> None:
    theirs = randomize(smp.Unet(f"resnet{depth}", encoder_weights=None, classes=2))
    ours = load_smp(neurlink.create_model(f"unet_resnet{depth}", num_classes=2), theirs).eval()
    # smp 0.6.0's Unet takes any size too (requires_divisible_input_shape = False): its decoder
    # resizes to the encoder's sizes, which are ceil(size / ratio) as here
    for size in [(224, 224), (225, 200)]:
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert_close(ours(x), theirs(x))
    assert list(to_smp_state_dict(ours)) == list(theirs.state_dict())  # smp's keys, in smp's order
    theirs.load_state_dict(to_smp_state_dict(ours))


def test_any_size_and_training() -> None:
    net = neurlink.unet_resnet18(num_classes=3)
    assert net(torch.randn(1, 3, 225, 200)).shape == (1, 3, 225, 200)
    net = neurlink.lraspp_mobilenet_v3_large(num_classes=4)
    x = torch.randn(2, 3, 67, 45)
    loss = net(x).square().mean()
    loss.backward()
    assert net(x).shape == (2, 4, 67, 45)
    assert all(p.grad is not None for p in net.parameters())


def test_pyramid_tags() -> None:
    net = neurlink.unet_resnet18()
    shapes = [tuple(y.shape[1:]) for y in net(torch.randn(1, 3, 65, 65), outputs=["layer4", "decoder1", "decoder5"])]
    assert shapes == [(512, 3, 3), (256, 5, 5), (16, 65, 65)]


# --- dilated backbones ------------------------------------------------------------------------


def test_dilated_resnet_is_torchvision() -> None:
    flags = [False, True, True]
    theirs = randomize(torchvision.models.resnet50(weights=None, replace_stride_with_dilation=flags))
    ours = load_torchvision(neurlink.resnet50(replace_stride_with_dilation=flags), theirs).eval()
    x = torch.randn(1, 3, 71, 58)
    with torch.no_grad():
        assert_close(ours(x).flatten(1), theirs(x))
        layer4 = ours(x, outputs=["layer3", "layer4"])
    assert [tuple(y.shape) for y in layer4] == [(1, 1024, 9, 8), (1, 2048, 9, 8)]  # ratio 8
    # the first block of a dilated stage keeps the previous stage's dilation, as torchvision's _make_layer
    dilations = [ours.get_submodule(f"{line}.2").conv.dilation for line in ("10", "11", "16", "17")]
    assert dilations == [(1, 1), (2, 2), (2, 2), (4, 4)]
    assert [ours.get_submodule(f"{line}.2").conv.padding for line in ("10", "17")] == [(1, 1), (4, 4)]


def test_dilated_mobilenet_is_torchvision() -> None:
    theirs = randomize(torchvision.models.mobilenet_v3_large(weights=None, dilated=True))
    ours = load_torchvision(neurlink.mobilenet_v3_large(dilated=True), theirs).eval()
    x = torch.randn(1, 3, 64, 50)
    with torch.no_grad():
        assert_close(ours(x).flatten(1), theirs(x))
        (features,) = ours(x, outputs=["features"])
    assert tuple(features.shape) == (1, 960, 4, 4)  # ratio 16


# --- the nerves against plain torch -----------------------------------------------------------


def copy_in_order(ours: nn.Module, theirs: nn.Module) -> None:
    """The reference's tensors into ours, in registration order (the same layers in the same order)."""
    values = list(theirs.state_dict().values())
    keys = list(ours.state_dict())
    assert [tuple(v.shape) for v in values] == [tuple(ours.state_dict()[k].shape) for k in keys]
    ours.load_state_dict(dict(zip(keys, values)))


def test_aspp_is_torchvisions() -> None:
    theirs = randomize(TorchvisionASPP(32, (1, 2, 3), out_channels=16))
    net = nv.build([((32, 1), nv.Input()), ((16, 1), ASPP(rates=(1, 2, 3)))])
    copy_in_order(net, theirs)
    x = torch.randn(2, 32, 11, 7)
    with torch.no_grad():
        assert_close(net.eval()(x), theirs(x))


def test_lraspp_head_is_torchvisions() -> None:
    theirs = randomize(TorchvisionLRASPPHead(8, 24, 5, 12))
    net = nv.build(
        [
            ((8, 1), nv.Input()),
            ((24, 2), nv.Input()),
            ((5, 1), LRASPPHead[[0, 1]](inter_channels=12)),
        ]
    )
    copy_in_order(net, theirs)
    low, high = torch.randn(2, 8, 13, 9), torch.randn(2, 24, 7, 5)
    with torch.no_grad():
        assert_close(net.eval()([low, high]), theirs({"low": low, "high": high}))


def test_unet_decoder_block_is_smps() -> None:
    theirs = randomize(SmpDecoderBlock(16, 8, 12))
    net = nv.build([((16, 2), nv.Input()), ((8, 1), nv.Input(base_shape=True)), ((12, 1), UnetDecoderBlock[[0, 1]]())])
    copy_in_order(net, theirs)
    x, skip = torch.randn(1, 16, 6, 5), torch.randn(1, 8, 11, 9)
    with torch.no_grad():
        assert_close(net.eval()([x, skip]), theirs(x, 11, 9, skip))


def test_multiply_and_heads_shapes() -> None:
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d_BN_ReLU[-1, "x"](3)),
            ((8, "(1, 1)"), nv.AvgPool2d()),
            ((8, 2), Multiply[["x", -1]]()),
            ((4, 2), FCNHead[-1, "fcn"]()),
            ((4, 2), DeepLabHead["x"](rates=(1, 2), channels=6)),
        ]
    )
    x = torch.randn(2, 3, 9, 9)  # batch 2: the pooling branch normalises a 1x1 map (as torchvision)
    ys = net(x, output_intermediate=True)
    torch.testing.assert_close(ys[3], ys[1] * ys[2])
    assert tuple(ys[-1].shape) == tuple(ys[-2].shape) == (2, 4, 5, 5)


# --- misuse -------------------------------------------------------------------------------------

C16 = [((3, 1), nv.Input()), ((16, 2), nv.Conv2d_BN_ReLU[-1, "low"](3)), ((32, 4), nv.Conv2d_BN_ReLU(3))]
INVALID = [
    ([((16, 4), ASPP(rates=()))], "rates=\\(\\) is not a sequence of dilations"),
    ([((16, 4), ASPP(rates=(2, 0)))], "rates"),
    ([((16, 8), ASPP())], "ASPP keeps the shape of line 2"),
    ([((16, 4), ASPP(dropout=1.5))], "dropout=1.5"),
    ([((5, 8), FCNHead())], "FCNHead keeps the shape"),
    ([((5, 4), LRASPPHead())], "LRASPPHead takes 2 input"),
    ([((5, 4), LRASPPHead[["low", -1]]())], "LRASPPHead keeps the shape of line 1"),
    ([((5, 2), DeepLabHead(channels=0))], "channels"),
    ([((16, 2), UnetDecoderBlock[[-1, "low"]](mode="linear"))], "mode='linear'"),
    ([((16, 1), UnetDecoderBlock[[-1, "low"]]())], "resizes line 2 to the size of its skip"),
    ([((16, 2), UnetDecoderBlock[[-1, "low", 0]]())], "UnetDecoderBlock reads the previous line and a skip"),
    ([((32, "(1, 1)"), nv.AvgPool2d()), ((32, 4), Multiply[[2, -1]]()), ((32, 4), Multiply[[-1, 1]]())], "Multiply"),
]


@pytest.mark.parametrize(("lines", "message"), INVALID)
def test_misuse_names_the_line(lines: list, message: str) -> None:
    with pytest.raises(neurlink.NeurlinkError, match=message) as caught:
        nv.build(C16 + lines)
    assert "line" in str(caught.value) and "allowed" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "keywords", "message"),
    [
        ("resnet50", {"replace_stride_with_dilation": [True]}, "replace_stride_with_dilation"),
        ("fcn_resnet50", {"aux_loss": "yes"}, "aux_loss"),
        ("unet_resnet18", {"decoder_channels": (16, 8)}, "decoder_channels"),
        ("unet_resnet18", {"decoder_interpolation": "cubic"}, "mode='cubic'"),
    ],
)
def test_builder_arguments(name: str, keywords: dict, message: str) -> None:
    with pytest.raises(neurlink.NeurlinkError, match=message), torch.device("meta"):
        neurlink.create_model(name, **keywords)


def test_loaders_are_strict() -> None:
    with torch.device("meta"):
        unet, lraspp = neurlink.unet_resnet18(), neurlink.lraspp_mobilenet_v3_large(num_classes=3)
    reference = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)
    with pytest.raises(neurlink.StateDictError, match="smp key 'encoder.conv1.weight' is missing"):
        load_smp(unet, reference.state_dict())
    with pytest.raises(neurlink.StateDictError, match="classifier.low_classifier.weight' has shape \\[21, 40, 1, 1\\]"):
        load_torchvision(lraspp, reference.state_dict())
    with pytest.raises(neurlink.StateDictError, match="no UnetDecoderBlock line"):
        load_smp(lraspp, {})


# --- what a review found ----------------------------------------------------------------------


def test_the_aux_head_is_the_one_feeding_the_aux_line_in_any_order() -> None:
    from neurlink.models.resnet import Bottleneck, backbone_lines

    torch.manual_seed(0)
    reference = tv_segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=4, aux_loss=True)
    reference.eval()

    def up(tag):
        return ((4, 1), nv.Interpolate[-1, tag]("bilinear", align_corners=False))

    net = nv.build(
        [
            backbone_lines(Bottleneck, (3, 4, 6, 3), {}, [False, True, True]),
            ((4, 8), FCNHead["layer3"]()),  # the aux head written first
            up("aux"),
            ((4, 8), DeepLabHead["layer4"]()),
            up("out"),
        ],
        outputs=["out", "aux"],
    )
    load_torchvision(net, reference).eval()
    assert list(to_torchvision_state_dict(net)) == list(reference.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out, aux = net(x)
        expected = reference(x)
    torch.testing.assert_close(out, expected["out"])
    torch.testing.assert_close(aux, expected["aux"])


def test_dilation_and_dilated_stages_are_not_given_together() -> None:
    with pytest.raises(neurlink.NerveArgumentError, match="each dilated stage sets its blocks' dilation"):
        with torch.device("meta"):
            neurlink.resnet50(dilation=2, replace_stride_with_dilation=[False, True, True])
