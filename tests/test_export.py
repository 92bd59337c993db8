"""Every PyTorch export path sees the same straight-line forward and gives the eager outputs."""

import copy
import pickle
import warnings

import pytest
import torch
from torch import nn

import neurlink
import neurlink.nerves as nv


class Block(nv.Nerve):
    """A user block with sub-lines: conv, conv, projected skip."""

    def __init__(self):
        super().__init__()
        dims_out = self.target_dims[0]
        self.add(
            [
                (dims_out, nv.Conv2d_BN_ReLU(3)),
                (dims_out, nv.Conv2d_BN_ReLU(3, act=None)),
                (dims_out, nv.SkipConnect2d[[0, -1]](1, norm=nn.BatchNorm2d)),
                (dims_out, nn.ReLU()),
            ]
        )


class Gate(nv.Nerve):
    """A user nerve with its own forward and the base shape."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x, base_shape):
        return x * torch.sigmoid(self.scale)


def every_nerve_kind():
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3)),
            ((16, 4), nv.MaxPool2d(3)),
            ((32, 8), Block()),
            ((32, 8), nv.AvgPool2d(3)),
            ((16, 4), nv.ConvTransposed2d_ReLU(4)),
            ((16, 4), nv.Add[[2, -1]]()),
            ((16, 2), nv.Interpolate("bilinear")),
            ((32, 2), nv.Concat[["stem", -1]]()),
            ((32, 2), Gate()),
            ((32, 2), nv.Conv2d(2)),  # even kernel at stride 1: asymmetric padding
            ((32, 4), nv.Conv2d(2)),  # even kernel at stride 2: padding from the size
            ((32, "(1, 1)"), nv.AvgPool2d()),
            ((10, "(1, 1)"), nv.Conv2d(1)),
        ]
    )


def every_token_nerve():
    """Tokens of a map, a class token, learned positions resampled off their 32x32 grid, a transformer
    block, folded back, Swin's windows and merging, pooled to a vector."""
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((32, 4), nv.Conv2d(4)),
            ((32, nv.tokens(4)), nv.ToTokens()),
            ((32, nv.tokens(4, extra=1)), nv.ClassToken()),
            ((32, nv.tokens(4, extra=1)), nv.PositionEmbedding(32)),
            ((32, nv.tokens(4, extra=1)), nv.TransformerBlock(4, 64, layer_scale=0.1)),
            ((32, nv.tokens(4, extra=1)), nv.LayerNorm()),
            ((32, 4), nv.ToMap()),
            ((32, nv.tokens(4)), nv.ToTokens()),
            ((32, nv.tokens(4)), nv.SwinBlock(4, window=4, shift=2)),
            ((64, nv.tokens(8)), nv.PatchMerging()),
            ((64, "()"), nv.ToVector("mean")),
            ((10, "()"), nv.Linear()),
        ]
    )


def every_channel_nerve():
    """ShuffleNet's channel nerves: a split into outputs picked one by one, a shuffle, a split of unequal parts."""
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 2), nv.Conv2d_BN_ReLU(3)),
            ((8, 2), (8, 2), nv.ChannelSplit()),
            ((8, 2), nv.Conv2d_BN_ReLU[nv.output(-1, 1)](3, groups=8)),
            ((16, 2), nv.Concat[[nv.output(-2, 0), -1]]()),
            ((16, 2), nv.ChannelShuffle(4)),
            ((4, 2), (12, 2), nv.ChannelSplit()),
            ((12, "(1, 1)"), nv.AvgPool2d[nv.output(-1, 1)]()),
            ((10, "(1, 1)"), nv.Conv2d(1)),
        ]
    )


def every_small_word():
    """A norm line, space to depth and back (landing on the line's size), a plain module reading a tagged line."""
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 2), nv.Conv2d[-1, "stem"](3)),
            ((16, 2), nv.BatchNorm2d_ReLU()),
            ((64, 4), nv.PixelUnshuffle()),
            ((16, 4), nv.Conv2d(3)),
            ((4, 2), nv.PixelShuffle()),
            ((16, 2), nv.Module["stem"](nn.BatchNorm2d(16))),
            ((20, 2), nv.Concat[[-2, -1]]()),
            ((20, 2), nv.BatchNorm2d()),
        ]
    )


_SMALL = {
    "every_nerve_kind": every_nerve_kind,
    "every_token_nerve": every_token_nerve,
    "every_channel_nerve": every_channel_nerve,
    "every_small_word": every_small_word,
}


def make(name):
    torch.manual_seed(0)
    net = _SMALL[name]() if name in _SMALL else neurlink.create_model(name, num_classes=10)
    return net.eval()


# One model of each block and head in every run: resnet18 (BasicBlock), resnet50 (Bottleneck), one of
# each other family, and of segmentation a dilated ResNet with the ASPP head (deeplabv3_resnet50), a
# head on two lines (lraspp) and a decoder (unet_resnet18), resized to the input's size.
DEFAULT = {"resnet18", "resnet50", "deeplabv3_resnet50", "unet_resnet18"}
# The other ResNets repeat those blocks at another depth or width (resnext50's grouped middle conv is
# exported as the depthwise convs of the MobileNets, EfficientNet and ConvNeXt are; fcn's FCNHead is
# sub-lines, conv-BN-ReLU, dropout, conv, as every_nerve_kind's Block): the same export paths on more
# of the same, 15-40 s a model under coverage on 2 cores, so they are slow (run with -m slow).
MODELS = (
    ["every_nerve_kind", "every_token_nerve", "every_channel_nerve", "every_small_word"]
    + [
        name if name in DEFAULT else pytest.param(name, marks=pytest.mark.slow)
        for name in neurlink.list_models()
        if "resnet" in name or "resnext" in name
    ]
    + ["mobilenet_v3_small", "efficientnet_b0", "convnext_tiny", "hrnet_w18_small", "lraspp_mobilenet_v3_large"]
    + [pytest.param(name, marks=pytest.mark.slow) for name in ("vit_b_32", "swin_t")]  # tokens: every_token_nerve
    # ShuffleNet's split and shuffle: every_channel_nerve; MNASNet's block: the MobileNets' convs and sum
    + [pytest.param(name, marks=pytest.mark.slow) for name in ("shufflenet_v2_x0_5", "mnasnet0_5")]
)


pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random-weight zoo models, flushed


def close(a, b, tol=1e-5):
    # Absolute error relative to the output's scale: a 101-layer network with random weights and batch
    # statistics reaches outputs of 10^4 (fcn_resnet101), where float32 itself is only good to ~10^-3.
    scale = max(1.0, b.abs().max().item())
    torch.testing.assert_close(a, b, rtol=tol, atol=tol * scale)


@pytest.fixture(scope="module", params=MODELS)
def case(request):
    net = make(request.param)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        return net, x, net(x)


def test_fx_symbolic_trace(case):
    net, x, expected = case
    traced = torch.fx.symbolic_trace(net)
    with torch.no_grad():
        close(traced(x), expected)


def test_torch_export(case):
    net, x, expected = case
    program = torch.export.export(net, (x,))
    with torch.no_grad():
        close(program.module()(x), expected)


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_jit_trace(case):
    net, x, expected = case
    traced = torch.jit.trace(net, (x,), check_trace=False)
    with torch.no_grad():
        close(traced(x), expected)


def test_compile_fullgraph(case):
    net, x, expected = case
    torch._dynamo.reset()
    compiled = torch.compile(net, fullgraph=True, backend="eager")
    with torch.no_grad():
        close(compiled(x), expected)
        close(compiled(x * 2), net(x * 2))


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_onnx_export_runs_in_onnxruntime(case, tmp_path, dynamo):
    """Both exporters: the legacy one (dynamo=False) traces with torch.jit and passes forward's defaults
    positionally, which a keyword-only output_intermediate refused."""
    import onnxruntime  # the `export` extra

    net, x, expected = case
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation and progress notices
        try:
            torch.onnx.export(net, (x,), str(path), dynamo=dynamo, verbose=False)
        except torch.onnx.errors.UnsupportedOperatorError as error:  # torch's, for one operator only
            if dynamo or "_upsample_bicubic2d_aa" not in str(error):
                raise
            pytest.skip("the legacy exporter has no antialiased bicubic resampling (position embeddings)")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    close(torch.from_numpy(result), expected, tol=1e-4)


def test_pickle_deepcopy_dtype_channels_last_autocast(case):
    net, x, expected = case
    with torch.no_grad():
        close(pickle.loads(pickle.dumps(net))(x), expected)
        close(copy.deepcopy(net)(x), expected)
        as_double = copy.deepcopy(net).to(torch.float64)
        close(as_double(x.double()), expected.double(), tol=1e-4)
        channels_last = copy.deepcopy(net).to(memory_format=torch.channels_last)
        close(channels_last(x.to(memory_format=torch.channels_last)), expected, tol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x)
        assert low.dtype == torch.bfloat16
        # bfloat16 keeps ~3 significant digits: compare relative to the output's magnitude
        assert (low.float() - expected).norm() <= 0.05 * expected.norm()


def test_dynamic_shapes_with_a_dynamic_batch():
    net = neurlink.resnet18(num_classes=10).eval()
    program = torch.export.export(net, (torch.randn(2, 3, 64, 64),), dynamic_shapes=net.dynamic_shapes(batch=True))
    for batch, size in ((3, (96, 128)), (1, (64, 64))):
        y = torch.randn(batch, 3, *size)
        with torch.no_grad():
            close(program.module()(y), net(y))
    fixed = torch.export.export(net, (torch.randn(2, 3, 64, 64),), dynamic_shapes=net.dynamic_shapes())
    with pytest.raises(Exception, match="size"):  # without batch=True, the example's batch only
        fixed.module()(torch.randn(3, 3, 64, 64))


def test_dynamic_shapes_export_any_multiple_of_the_deepest_ratio():
    torch.manual_seed(0)
    net = neurlink.resnet18(num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    program = torch.export.export(net, (x,), dynamic_shapes=net.dynamic_shapes())
    for size in ((96, 160), (64, 224)):
        y = torch.randn(1, 3, *size)  # (the batch of the example input, 1, is specialized)
        with torch.no_grad():
            close(program.module()(y), net(y))
    unet = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d(3)),
            ((8, 4), nv.MaxPool2d(2)),
            ((8, 2), nv.ConvTransposed2d(4)),
            ((16, 2), nv.Concat[[1, -1]]()),
        ]
    ).eval()
    program = torch.export.export(unet, (torch.randn(1, 3, 64, 64),), dynamic_shapes=unet.dynamic_shapes())
    y = torch.randn(1, 3, 36, 52)
    close(program.module()(y), unet(y))
