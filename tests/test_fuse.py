"""``net.fuse()``: every BatchNorm that follows a conv folded into it, held to references nobody here wrote.

- torch's own folding, ``torch.nn.utils.fusion.fuse_conv_bn_eval`` / ``fuse_linear_bn_eval``, on the same
  pairs: the fused weights and biases;
- torch's fx fusion, ``torch.fx.experimental.optimization.fuse``, on each family's reference model
  (torchvision, timm, smp) on the meta device: how many norms fold and how many parameters go;
- the network's own unfused output, in float64 with random BatchNorm statistics and affine (an eval
  BatchNorm at init is the identity, which any wrong fold would pass); and the live forward's data flow,
  watched by hooks: no BatchNorm reads a conv's output after fusion.
"""

import copy
import pickle

import pytest
import segmentation_models_pytorch as smp
import timm
import torch
import torchvision
from networks import line_by_line
from torch import fx, nn
from torch.fx.experimental.optimization import fuse as fx_fuse
from torch.nn.utils import parametrize
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

import neurlink
import neurlink.nerves as nv
from neurlink.errors import NeurlinkError, PretrainedError
from neurlink.fuse import FoldedNorm

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

BATCH_NORM = nn.modules.batchnorm._BatchNorm
CONV = (nn.modules.conv._ConvNd, nn.Linear)
_SEGMENTATION = torchvision.models.segmentation

# One model of each family of the zoo, with its reference (built on the meta device; torchvision's RegNet
# computes its widths with tensors, so it is built on the CPU). GoogLeNet and Inception-v3 trace without
# their auxiliary heads in eval, which compute nothing there: their norms are left on both sides.
REFERENCES = {
    "resnet18": lambda: torchvision.models.resnet18(),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(),
    "mobilenet_v3_large": lambda: torchvision.models.mobilenet_v3_large(),
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(),
    "efficientnet_v2_s": lambda: torchvision.models.efficientnet_v2_s(),
    "regnet_y_400mf": lambda: torchvision.models.regnet_y_400mf(),
    "shufflenet_v2_x0_5": lambda: torchvision.models.shufflenet_v2_x0_5(),
    "mnasnet0_5": lambda: torchvision.models.mnasnet0_5(),
    "vgg11_bn": lambda: torchvision.models.vgg11_bn(),
    "densenet121": lambda: torchvision.models.densenet121(),
    "googlenet": lambda: torchvision.models.googlenet(init_weights=True),
    "inception_v3": lambda: torchvision.models.inception_v3(init_weights=True),
    "convnext_tiny": lambda: torchvision.models.convnext_tiny(),
    "vit_b_32": lambda: torchvision.models.vit_b_32(),
    "swin_t": lambda: torchvision.models.swin_t(),
    "hrnet_w18_small": lambda: timm.create_model("hrnet_w18_small"),
    "lraspp_mobilenet_v3_large": lambda: _SEGMENTATION.lraspp_mobilenet_v3_large(weights_backbone=None),
    "deeplabv3_mobilenet_v3_large": lambda: _SEGMENTATION.deeplabv3_mobilenet_v3_large(weights_backbone=None),
    "fcn_resnet50": lambda: _SEGMENTATION.fcn_resnet50(weights_backbone=None),
    "unet_resnet18": lambda: smp.Unet("resnet18", encoder_weights=None),
}
NOTHING_TO_FOLD = {"convnext_tiny", "vit_b_32", "swin_t"}  # LayerNorm after convs, or no conv at all
# the CPU runs in float64: the largest (VGG's 123M-parameter classifier, FCN's ResNet-50) are slow, and so are
# those with nothing to fold (the meta test shows that nothing changes)
SLOW = {"vgg11_bn", "fcn_resnet50", "efficientnet_v2_s", *NOTHING_TO_FOLD}
RUNS = [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in REFERENCES]
SIZES = {"inception_v3": 80}  # the smallest its unpadded stem and reductions take


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def norms(model: nn.Module) -> int:
    return sum(isinstance(m, BATCH_NORM) for m in model.modules())


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random affine parameters and running statistics of every BatchNorm, random conv biases."""
    generator = torch.Generator().manual_seed(seed)

    def like(tensor, scale, shift=0.0, uniform=False):
        draw = torch.rand if uniform else torch.randn
        return (draw(tensor.shape, generator=generator, dtype=torch.float64) * scale + shift).to(tensor.dtype)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, BATCH_NORM):
                module.weight.copy_(like(module.weight, 1.0, 0.5, uniform=True))
                module.bias.copy_(like(module.bias, 0.2))
                if module.running_mean is not None:  # (a norm without running statistics has none)
                    module.running_mean.copy_(like(module.running_mean, 0.2))
                    module.running_var.copy_(like(module.running_var, 1.0, 0.5, uniform=True))
            elif isinstance(module, CONV) and module.bias is not None:
                module.bias.copy_(like(module.bias, 0.02))
    return model.eval()


def first_output(y):
    """The logits (or the segmentation map) of what a zoo model returns: the first of several outputs."""
    return y[0] if isinstance(y, (list, tuple)) else y


def norms_reading_a_conv(net: nn.Module, x) -> int:
    """How many BatchNorm calls of one run read a conv's (or a Linear's) output as it came out of it,
    seen by hooks on the live forward (not by the fusion's own analysis)."""
    fresh: dict[int, tuple[torch.Tensor, int]] = {}  # the outputs kept alive, so that their ids stay theirs
    found = []

    def produced(module, args, output):
        fresh[id(output)] = (output, output._version)

    def normalised(module, args, output):
        kept = fresh.get(id(args[0]))
        found.append(kept is not None and kept[0] is args[0] and kept[1] == args[0]._version)

    handles = [
        m.register_forward_hook(normalised if isinstance(m, BATCH_NORM) else produced)
        for m in net.modules()
        if isinstance(m, (BATCH_NORM, *CONV))
    ]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    return sum(found)


# --- every family against torch's fx fusion of its reference, on the meta device ------------------


@pytest.mark.parametrize("name", list(REFERENCES))
def test_as_many_norms_and_parameters_go_as_torch_fx_fusion_of_the_reference_takes(name: str) -> None:
    with torch.device("meta"):
        net = neurlink.create_model(name).eval()
    with torch.device("cpu" if name.startswith("regnet") else "meta"):
        reference = REFERENCES[name]().eval()
    reference = reference.to("meta")
    traced = fx.symbolic_trace(reference)  # the modules its eval forward calls
    fused = fx_fuse(reference)
    folded, removed = norms(traced) - norms(fused), count(traced) - count(fused)
    assert (name in NOTHING_TO_FOLD) is (folded == 0)
    before, parameters, keys = norms(net), count(net), list(net.state_dict())
    assert net.fuse() is net
    assert before - norms(net) == folded
    assert parameters - count(net) == removed
    assert sum(isinstance(m, FoldedNorm) for m in net.modules()) == folded
    if not folded:
        assert list(net.state_dict()) == keys  # nothing changed


# --- every family: the same outputs, and no norm left reading a conv ------------------------------


@pytest.mark.parametrize("name", RUNS)
def test_a_fused_model_computes_what_it_computed(name: str) -> None:
    torch.manual_seed(0)
    net = randomize(neurlink.create_model(name).double())
    size = SIZES.get(name, 64)
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        before = first_output(net(x))
    pairs = norms_reading_a_conv(net, x)
    assert (name in NOTHING_TO_FOLD) is (pairs == 0)
    keys = list(net.state_dict())
    net.fuse()
    assert norms_reading_a_conv(net, x) == 0
    with torch.no_grad():
        after = first_output(net(x))
        lines = net(x, output_intermediate=True)  # every line's module called as it is now
        result = net.__dict__["_outputs"][0] if net.__dict__["_outputs"] else -1
        torch.testing.assert_close(after, lines[result], rtol=0, atol=0)  # the live forward runs the fused modules
    scale = before.abs().max().item()
    torch.testing.assert_close(after, before, rtol=1e-10, atol=1e-10 * scale)
    if name in NOTHING_TO_FOLD:
        assert list(net.state_dict()) == keys
        assert torch.equal(after, before)


def test_float32_outputs_are_within_1e_5_of_the_unfused_ones() -> None:
    torch.manual_seed(0)
    net = randomize(neurlink.resnet18())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        after = net.fuse()(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5 * before.abs().max().item())


def test_the_flat_forward_calls_nothing_for_a_folded_norm() -> None:
    net = neurlink.resnet18().eval()
    x = torch.randn(1, 3, 32, 32)

    def called(net):
        with torch.no_grad():
            net(x), net(x)  # the first call of a size checks every line, the second runs the flat forward
        graph_module = net.__dict__["_flat"].graph_module
        return [graph_module.get_submodule(str(n.target)) for n in graph_module.graph.nodes if n.op == "call_module"]

    modules = called(net)
    net.fuse()
    fused = called(net)
    assert len(modules) - len(fused) == 20  # resnet18's 20 norms
    assert not any(isinstance(m, (BATCH_NORM, FoldedNorm, nn.Identity)) for m in fused)


# --- the folded weights are torch's ---------------------------------------------------------------


def test_the_folded_weights_are_torchs_fuse_conv_bn_eval() -> None:
    net = randomize(neurlink.resnet18())
    pairs = {
        path: (copy.deepcopy(module.conv), copy.deepcopy(module.norm))
        for path, module in net.named_modules()
        if isinstance(getattr(module, "norm", None), nn.BatchNorm2d)
    }
    assert len(pairs) == 20
    net.fuse()
    for path, (conv, norm) in pairs.items():
        reference = fuse_conv_bn_eval(conv.eval(), norm.eval())
        ours = net.get_submodule(path).conv
        assert isinstance(net.get_submodule(path).norm, FoldedNorm)
        torch.testing.assert_close(ours.weight, reference.weight, rtol=1e-6, atol=0)
        torch.testing.assert_close(ours.bias, reference.bias, rtol=1e-6, atol=1e-7)


def small_network() -> nv.Network:
    """Every kind of pair: a grouped conv and its norm in one nerve, a transposed conv and its norm, a conv
    line with a bias and a norm line with an activation, a conv line and a plain torch norm on a line of its
    own, a Linear line and a BatchNorm1d line of vectors."""
    return nv.build(
        [
            ((4, 1), nv.Input()),
            ((8, 2), nv.Conv2d_BN_ReLU(3, groups=2)),
            ((8, 1), nv.ConvTransposed2d_BN_ReLU(4)),
            ((6, 1), nv.Conv2d(3, bias=True)),
            ((6, 1), nv.BatchNorm2d_ReLU(eps=1e-3)),
            ((6, 2), nv.Conv2d(1)),
            ((6, 2), nn.BatchNorm2d(6)),
            ((6, "(3, 3)"), nv.AvgPool2d()),
            ((10, "()"), nv.Linear()),
            ((10, "()"), nv.BatchNorm1d()),
            ((5, "()"), nv.Linear()),
        ]
    )


def test_every_kind_of_pair_folds_as_torch_folds_it() -> None:
    torch.manual_seed(0)
    net = randomize(small_network())
    x = torch.randn(2, 4, 17, 15)
    pairs = {  # the module that computes the norm after fusion: torch's fusion of the pair
        (1, "conv"): fuse_conv_bn_eval(copy.deepcopy(net[1].conv), copy.deepcopy(net[1].norm)),
        (2, "conv"): fuse_conv_bn_eval(copy.deepcopy(net[2].conv), copy.deepcopy(net[2].norm), transpose=True),
        (3, "conv"): fuse_conv_bn_eval(copy.deepcopy(net[3].conv), copy.deepcopy(net[4].norm)),
        (5, "conv"): fuse_conv_bn_eval(copy.deepcopy(net[5].conv), copy.deepcopy(net[6])),
        (8, "linear"): fuse_linear_bn_eval(copy.deepcopy(net[8].linear), copy.deepcopy(net[9].norm)),
    }
    with torch.no_grad():
        before = net(x)
        after = net.fuse()(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5 * before.abs().max().item())
    assert norms(net) == 0
    assert [type(net[k].norm) for k in (1, 2, 4, 9)] + [type(net[6])] == [FoldedNorm] * 5
    with torch.no_grad():
        assert torch.equal(net(x), line_by_line(net, x))  # the flat forward calls the modules the lines hold now
    for (line, name), reference in pairs.items():
        ours = getattr(net[line], name)
        torch.testing.assert_close(ours.weight, reference.weight, rtol=1e-6, atol=0)
        torch.testing.assert_close(ours.bias, reference.bias, rtol=1e-6, atol=1e-7)
    assert net[4].act is not None and isinstance(net[4].act, nn.ReLU)  # the norm line keeps its activation


def test_1d_and_3d_convs_and_grouped_transposed_convs_fold() -> None:
    torch.manual_seed(0)
    for rank, input_shape in ((1, (2, 4, 19)), (2, (2, 4, 9, 11)), (3, (2, 4, 5, 6, 7))):
        conv, transposed = getattr(nv, f"Conv{rank}d_BN_ReLU"), getattr(nv, f"ConvTransposed{rank}d_BN_ReLU")
        net = nv.build(
            [((4, 1), nv.Input()), ((8, 2), conv(3, groups=4)), ((8, 1), transposed(4, groups=2)), ((8, 1), conv(1))]
        )
        net = randomize(net.double())
        x = torch.randn(*input_shape, dtype=torch.float64)
        with torch.no_grad():
            before = net(x)
            after = net.fuse()(x)
        assert norms(net) == 0
        torch.testing.assert_close(after, before, rtol=1e-10, atol=1e-12)


def test_the_fold_keeps_trainable_flags_and_dtypes() -> None:
    net = randomize(small_network().double())
    net[1].conv.weight.requires_grad_(False)  # a frozen conv without bias
    net[3].conv.bias.requires_grad_(False)  # a conv with a frozen bias
    net.fuse()
    assert not net[1].conv.weight.requires_grad and not net[1].conv.bias.requires_grad
    assert net[2].conv.weight.requires_grad and net[2].conv.bias.requires_grad  # the bias made: trainable as the weight
    assert net[3].conv.weight.requires_grad and not net[3].conv.bias.requires_grad
    assert {p.dtype for p in net.parameters()} == {torch.float64}
    assert all(p.grad_fn is None for p in net.parameters())  # leaves: nothing links them to the norms


def test_a_fused_network_computes_on_a_meta_network_too() -> None:
    net = small_network().to("meta").eval().fuse()
    assert norms(net) == 0
    assert net(torch.empty(2, 4, 17, 15, device="meta")).shape == (2, 5)


# --- what is not exact is left --------------------------------------------------------------------


class OwnConv(nn.Conv2d):
    """A conv of a user's class, which may compute anything from its weight."""

    def forward(self, x):
        return super().forward(x).clamp(min=-1)


def test_what_is_not_exact_is_left_and_the_rest_folds() -> None:
    torch.manual_seed(0)
    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 1), nv.Conv2d_BN_ReLU(3, norm=lambda c: nn.BatchNorm2d(c, track_running_stats=False))),
            ((8, 1), nv.Conv2d_BN_ReLU(3)),  # its conv parametrized below
            ((8, 1), nv.Conv2d(3)),  # read by the norm line and by the sum
            ((8, 1), nv.BatchNorm2d()),
            ((8, 1), nv.Add[[-1, -2]]()),
            ((8, 1), nv.Module(OwnConv(8, 8, 3, padding=1))),
            ((8, 1), nv.BatchNorm2d()),
            ((8, 1), nv.Module(nn.Sequential(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8)))),  # a plain module: one call
            ((8, 1), nv.Conv2d(1)),  # a declared output
            ((8, 1), nv.BatchNorm2d()),
            ((8, 1), nv.Conv2d_BN_ReLU(1)),  # folds
        ],
        outputs=[9, -1],
    )
    parametrize.register_parametrization(net[2].conv, "weight", nn.Identity())
    randomize(net.double())
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        before = net(x)
        after = net.fuse()(x)
    for ours, theirs in zip(after, before):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    left = [path for path, m in net.named_modules() if isinstance(m, BATCH_NORM)]
    assert left == ["1.norm", "2.norm", "4.norm", "7.norm", "8.1", "10.norm"]
    assert isinstance(net[11].norm, FoldedNorm)


def test_a_module_at_two_places_is_left() -> None:
    net = randomize(nv.build([((8, 1), nv.Input()), ((8, 1), nv.Conv2d_BN_ReLU(3)), ((8, 1), nv.Conv2d_BN_ReLU(3))]))
    net[2].norm = net[1].norm  # one norm called on two lines
    net.fuse()
    assert norms(net) == 1 and net[1].norm is net[2].norm


def test_fusing_twice_folds_nothing_more_and_copies_and_pickles_run() -> None:
    net = randomize(small_network())
    x = torch.randn(2, 4, 17, 15)
    with torch.no_grad():
        once = net.fuse()(x)
        state = {key: value.clone() for key, value in net.state_dict().items()}
        twice = net.fuse()(x)
        assert torch.equal(once, twice)
        assert all(torch.equal(value, state[key]) for key, value in net.state_dict().items())
        assert torch.equal(copy.deepcopy(net)(x), once)
        assert torch.equal(pickle.loads(pickle.dumps(net))(x), once)  # torch.save's way


# --- refusals: a NeurlinkError naming the line, nothing changed -----------------------------------


def unchanged(net: nn.Module, keys: list[str]) -> bool:
    return list(net.state_dict()) == keys and not any(isinstance(m, FoldedNorm) for m in net.modules())


def test_a_network_in_training_mode_is_refused() -> None:
    net = small_network()
    keys = list(net.state_dict())
    with pytest.raises(NeurlinkError, match=r"training mode[\s\S]*allowed: net.eval\(\).fuse\(\)"):
        net.fuse()
    assert unchanged(net, keys)


def test_a_norm_in_training_mode_is_refused_naming_its_line() -> None:
    net = neurlink.resnet18().eval()
    line = net.line_tags()["layer2"]
    net[line].train()
    keys = list(net.state_dict())
    expected = (
        rf"^line {line} \('layer2'\) > line 1: .*\n.*'{line}.1.norm' into Conv2d '{line}.1.conv': .* training mode"
    )
    with pytest.raises(NeurlinkError, match=expected):
        net.fuse()
    assert unchanged(net, keys)


@pytest.mark.parametrize("where", ["norm", "conv"])
@pytest.mark.parametrize("kind", ["forward_hook", "forward_pre_hook", "full_backward_hook"])
def test_a_hook_on_a_pair_is_refused_naming_the_line(where: str, kind: str) -> None:
    net = neurlink.resnet18().eval()
    line = net.line_tags()["layer1"]
    module = getattr(net[line][2], where)  # the second conv of the block, and its norm
    handle = getattr(module, f"register_{kind}")(lambda *args: None)
    keys = list(net.state_dict())
    role = "on the norm, which fuse\\(\\) removes" if where == "norm" else "on the Conv2d, whose output"
    expected = rf"^line {line} \('layer1'\) > line 2: \(\(64, 4\), .*\n.*hook is registered {role}"
    with pytest.raises(NeurlinkError, match=expected):
        net.fuse()
    assert unchanged(net, keys)
    handle.remove()
    assert norms(net.fuse()) == 0


def test_a_nerve_called_for_its_hook_is_fused_inside_and_the_hook_still_fires() -> None:
    torch.manual_seed(0)
    net = randomize(neurlink.resnet18().double())
    seen = []
    net["layer3"].register_forward_hook(lambda module, args, output: seen.append(output.clone()))
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        before = net(x)
        after = net.fuse()(x)
    assert norms(net) == 0
    torch.testing.assert_close(after, before, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(seen[1], seen[0], rtol=1e-10, atol=1e-12)


# --- keys, saving, outputs of the lines, tracing ---------------------------------------------------


def test_the_state_dict_keys_change_and_load_into_a_fused_network(tmp_path) -> None:
    net = randomize(small_network())
    unfused = net.state_dict()
    net.fuse()
    keys = list(net.state_dict())
    assert "1.norm.weight" not in keys and "1.conv.bias" in keys and "9.norm.running_var" not in keys
    other = small_network().eval().fuse()
    other.load_state_dict(net.state_dict())  # strictly
    x = torch.randn(1, 4, 17, 15)
    with torch.no_grad():
        assert torch.equal(other(x), net(x))
    with pytest.raises(neurlink.errors.CheckpointError, match="unexpected: norm.weight"):
        other.load_state_dict(unfused)
    with pytest.raises(
        PretrainedError,
        match=r"(?s)^line 1: .*\n.*module '1.norm' is FoldedNorm, the definition makes BatchNorm2d.*save it before fuse",
    ):
        net.save_pretrained(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_conv_line_whose_norm_line_folded_gives_the_norms_output() -> None:
    net = randomize(small_network().double())
    x = torch.randn(1, 4, 17, 15, dtype=torch.float64)
    with torch.no_grad():
        before = net(x, outputs=[6, 7])
        after = net.fuse()(x, outputs=[5, 6, 7])
    torch.testing.assert_close(after[0], before[0], rtol=1e-10, atol=1e-12)
    assert torch.equal(after[1], after[0])  # the folded norm line passes its input on
    torch.testing.assert_close(after[2], before[1], rtol=1e-10, atol=1e-12)


def test_fx_and_export_of_a_fused_network() -> None:
    torch.manual_seed(0)
    net = randomize(neurlink.resnet18()).fuse()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = net(x)
        traced = fx.symbolic_trace(net)
        torch.testing.assert_close(traced(x), expected, rtol=1e-6, atol=1e-6)
    assert not any(isinstance(m, BATCH_NORM) for m in traced.modules())
    exported = torch.export.export(net, (x,))
    assert not [n for n in exported.graph.nodes if "batch_norm" in str(n.target)]
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), expected, rtol=1e-6, atol=1e-6)


def test_an_fx_graph_traced_before_fuse_keeps_computing_what_it_did() -> None:
    """The folded conv is a new module: a graph traced before (a feature extractor) holds the old conv and
    its norm, which fuse() leaves as they were (folding in place normalised every pair twice there)."""
    net = randomize(neurlink.resnet18(num_classes=10).double()).eval()
    traced = fx.symbolic_trace(net)
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        before = traced(x)
        net.fuse()
        torch.testing.assert_close(traced(x), before, rtol=0, atol=0)
        torch.testing.assert_close(net(x), before, rtol=1e-10, atol=1e-10)


def test_a_fused_network_refuses_training_and_changes_no_mode() -> None:
    net = neurlink.resnet18(num_classes=10).eval().fuse()
    with pytest.raises(NeurlinkError, match=r"this network was fused for inference .* training it would go on"):
        net.train()
    assert not any(module.training for module in net.modules())
    with pytest.raises(NeurlinkError, match="fused for inference"):
        net[1].norm.train()  # a folded norm reached alone
    net.eval()  # eval is fine


@pytest.mark.parametrize(("name", "folded"), [("yolov8n", 57), ("yolo11n", 81)])
def test_the_detectors_fold_every_norm(name: str, folded: int) -> None:
    net = randomize(getattr(neurlink, name)(num_classes=3).double()).eval()
    x = torch.rand(1, 3, 64, 96, dtype=torch.float64)
    with torch.no_grad():
        before = net(x)
        assert norms(net) == folded
        net.fuse()
        assert norms(net) == 0 and sum(isinstance(m, FoldedNorm) for m in net.modules()) == folded
        torch.testing.assert_close(net(x), before, rtol=1e-10, atol=1e-8)
