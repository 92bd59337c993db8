"""Ultralytics' YOLOv8 and YOLO11 written as lines, held to Ultralytics 8.4.190 (``DetectionModel``) with its
weights: every model's parameter count, eval outputs (boxes and class probabilities) with random norm
statistics and biases at two sizes, the raw training maps, Ultralytics' own loss and every gradient, any
input size (where Ultralytics' models fail) against its head and its neck cropped to the sizes ours reach,
the weights strictly both ways, Ultralytics' initialisation, fx / torch.export / ONNX, summaries and
checkpoints, and the head's mistakes naming the line."""

from __future__ import annotations

import ast
import functools
import importlib
import math
import pathlib
import re
import warnings

import pytest
import torch
from networks import count, randomize_batchnorm
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink.errors import DefinitionError, DimsError, NerveArgumentError, PretrainedError, StateDictError
from neurlink.interop import load_ultralytics, to_ultralytics_state_dict, ultralytics_predictions
from neurlink.models import yolo
from neurlink.models.yolo import Detect, Detector, Scale

pytestmark = pytest.mark.usefixtures("flush_denormals")  # conftest.py: random weights, flushed

# Ultralytics 8.4.190's counts (DetectionModel("<name>.yaml"), 80 classes; its YAMLs' comments say the
# same), which the registry contract reads too; test_counts_keys_and_shapes_are_ultralytics builds each
PARAMETERS = {
    "yolov8n": 3_157_200,
    "yolov8s": 11_166_560,
    "yolov8m": 25_902_640,
    "yolov8l": 43_691_520,
    "yolov8x": 68_229_648,
    "yolo11n": 2_624_080,
    "yolo11s": 9_458_752,
    "yolo11m": 20_114_688,
    "yolo11l": 25_372_160,
    "yolo11x": 56_966_176,
}
SMALL = ("yolov8n", "yolo11n")
STRIDES = (8, 16, 32)


@functools.cache
def tasks():
    """Ultralytics' ``ultralytics.nn.tasks`` (the test extra pins ultralytics==8.4.190), imported when a test
    needs it: the registry contract imports this file for PARAMETERS."""
    return importlib.import_module("ultralytics.nn.tasks")


def reference(name: str, num_classes: int = 80, seed: int = 0) -> nn.Module:
    """Ultralytics' model with random norm statistics and affines and random head biases."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tasks().DetectionModel(f"{name}.yaml", nc=num_classes, verbose=False)
    generator = torch.Generator().manual_seed(seed + 1)
    randomize_batchnorm(model, generator)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator))
            elif isinstance(module, nn.BatchNorm2d):
                module.momentum = 0.03  # Ultralytics' (randomize_batchnorm leaves torch's default)
    return model.eval()


def pair(name: str, num_classes: int = 80, seed: int = 0) -> tuple[nn.Module, Detector]:
    theirs = reference(name, num_classes, seed)
    return theirs, load_ultralytics(neurlink.create_model(name, num_classes=num_classes), theirs).eval()


def close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Relative 1e-5, values near zero (a box's far side, a probability) to 1e-5 of the output's scale."""
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item())


def anchors(height: int, width: int) -> int:
    return sum(math.ceil(height / s) * math.ceil(width / s) for s in STRIDES)


# --- the models -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PARAMETERS)
def test_counts_on_meta(name: str) -> None:
    with torch.device("meta"):
        net = neurlink.create_model(name)
    assert count(net) == PARAMETERS[name]
    assert isinstance(net, Detector) and isinstance(net[-1], Detect)
    assert [net[tag].target_dims[0].shape.ratios for tag in ("p3", "p4", "p5")] == [(8,), (16,), (32,)]


@pytest.mark.slow
@pytest.mark.parametrize("name", PARAMETERS)
def test_counts_keys_and_shapes_are_ultralytics(name: str) -> None:
    with torch.device("meta"):
        ours = neurlink.create_model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = tasks().DetectionModel(f"{name}.yaml", verbose=False)  # (its stride probe needs real tensors)
    assert count(theirs) == PARAMETERS[name]
    exported = to_ultralytics_state_dict(ours)
    expected = theirs.state_dict()
    assert sorted(exported) == sorted(expected)
    assert all(exported[key].shape == tensor.shape for key, tensor in expected.items())


def test_scales_are_ultralytics_yaml() -> None:
    for family, scales in (("yolov8", yolo.YOLOV8_SCALES), ("yolo11", yolo.YOLO11_SCALES)):
        written = tasks().yaml_model_load(f"{family}n.yaml")["scales"]
        assert {letter: [s.depth, s.width, s.max_channels] for letter, s in scales.items()} == written
    assert [s.c3k for s in yolo.YOLO11_SCALES.values()] == [False, False, True, True, True]  # parse_model's m, l, x
    with torch.device("meta"):
        own = yolo.yolov8(Scale(0.33, 0.375, 1024), num_classes=5)  # a scale of one's own
    assert own["p3"].target_dims[0].channels == 96 and own[-1].num_classes == 5
    assert count(yolo.yolov8("s").to("meta")) == PARAMETERS["yolov8s"]


@pytest.mark.parametrize("name", [*SMALL, "yolov8s", "yolo11s"])
def test_eval_output_is_ultralytics(name: str) -> None:
    theirs, ours = pair(name, num_classes=7)
    for height, width in ((128, 160), (224, 224)):
        x = torch.randn(2, 3, height, width)
        with torch.no_grad():
            expected = theirs(x)[0]
            result = ours(x)
        assert result.shape == (2, 4 + 7, anchors(height, width))
        close(result, expected)
        probabilities = result[:, 4:]
        assert 0.05 < probabilities.mean() < 0.95 and probabilities.std() > 0.05  # not saturated by the biases


def test_training_maps_loss_and_gradients_are_ultralytics() -> None:
    from ultralytics.cfg import get_cfg
    from ultralytics.utils.loss import v8DetectionLoss

    theirs, ours = pair("yolov8n", num_classes=3, seed=3)
    theirs.args = get_cfg()  # the trainer's hyperparameters (box, cls and dfl gains)
    criterion = v8DetectionLoss(theirs)
    theirs.train(), ours.train()
    x = torch.randn(2, 3, 128, 160)
    batch = {  # two boxes in the first image, one in the second: class, xywh normalised
        "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
        "cls": torch.tensor([[0.0], [2.0], [1.0]]),
        "bboxes": torch.tensor([[0.3, 0.4, 0.2, 0.3], [0.7, 0.6, 0.4, 0.5], [0.5, 0.5, 0.6, 0.6]]),
    }
    expected = theirs(x)
    maps = ours(x)
    assert isinstance(maps, list)
    assert [tuple(m.shape) for m in maps] == [(2, 64 + 3, 128 // s, 160 // s) for s in STRIDES]
    predictions = ultralytics_predictions(maps)
    for key in ("boxes", "scores"):
        close(predictions[key], expected[key])
    loss_theirs, _ = criterion(expected, batch)
    loss_ours, _ = criterion(predictions, batch)
    torch.testing.assert_close(loss_ours, loss_theirs, rtol=1e-5, atol=0)
    loss_theirs.sum().backward()
    loss_ours.sum().backward()
    trainable = [(key, p) for key, p in ours.named_parameters() if p.requires_grad]
    assert [key for key, p in trainable if p.grad is None] == []  # (a level no box is assigned to has zeros)
    assert [key for key, p in ours.named_parameters() if not p.requires_grad] == ["23.dfl.conv.weight"]
    # every gradient and the batch statistics training left, under Ultralytics' keys
    keys = {t.data_ptr(): key for key, t in to_ultralytics_state_dict(ours).items()}
    their_grads = {key: p.grad for key, p in theirs.named_parameters() if p.requires_grad}
    for _, p in trainable:
        torch.testing.assert_close(p.grad, their_grads[keys[p.data_ptr()]], rtol=1e-4, atol=1e-6)
    exported, state = to_ultralytics_state_dict(ours), theirs.state_dict()
    for key in (k for k in state if "running" in k):
        torch.testing.assert_close(exported[key], state[key], rtol=1e-5, atol=1e-6)


# --- any input size -----------------------------------------------------------------------------


class CroppedUpsample(nn.Module):
    """Ultralytics' upsample by 2, cropped to the size of the line it is concatenated with (what its model
    would need at sizes that are not multiples of 32): the reference for ours at such sizes."""

    def __init__(self, upsample: nn.Module, ratio: int) -> None:
        super().__init__()
        self.upsample, self.ratio, self.base = upsample, ratio, (0, 0)
        self.f, self.i, self.type = upsample.f, upsample.i, upsample.type  # what DetectionModel's loop reads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = (math.ceil(b / self.ratio) for b in self.base)
        return self.upsample(x)[..., :height, :width]


@pytest.mark.parametrize("name", SMALL)
def test_any_size_boxes_in_the_inputs_pixels(name: str) -> None:
    theirs, ours = pair(name, num_classes=5, seed=1)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        theirs(torch.randn(1, 3, 97, 131))  # Ultralytics' own model needs multiples of 32
    upsamples = [k for k, m in enumerate(theirs.model) if isinstance(m, nn.Upsample)]
    for k, ratio in zip(upsamples, (16, 8)):
        theirs.model[k] = CroppedUpsample(theirs.model[k], ratio)
    for height, width in ((97, 131), (200, 333), (64, 64)):
        for k in upsamples:
            theirs.model[k].base = (height, width)
        x = torch.randn(1, 3, height, width)
        with torch.no_grad():
            result = ours(x)
            close(result, theirs(x)[0])
            levels = ours(x, outputs=["p3", "p4", "p5"])  # Ultralytics' head on our neck's levels
            close(result, theirs.model[-1](levels)[0])
        assert result.shape == (1, 4 + 5, anchors(height, width))


def test_anchors_are_cell_centres_in_pixels() -> None:
    """With every box distribution uniform (the expectation of bins 0..15 is 7.5 cells on each side) a box is
    centred on its cell's centre and 15 cells wide, in pixels at its level's stride: hand-computed."""
    net = neurlink.create_model("yolo11n", num_classes=2).eval()
    with torch.no_grad():
        for k in range(3):
            net[-1][f"cv2.{k}.2"].conv.weight.zero_()
            net[-1][f"cv2.{k}.2"].conv.bias.zero_()
    for height, width in ((97, 131), (200, 333), (64, 64)):
        with torch.no_grad():
            boxes = net(torch.randn(1, 3, height, width))[0, :4]
        expected = []
        for s in STRIDES:
            rows, columns = math.ceil(height / s), math.ceil(width / s)
            for i in range(rows):
                for j in range(columns):
                    expected.append([(j + 0.5) * s, (i + 0.5) * s, 15 * s, 15 * s])
        torch.testing.assert_close(boxes, torch.tensor(expected).T)
        assert boxes[0].max() < width + 16 and boxes[1].max() < height + 16  # centres inside the last cells


# --- the weights ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL)
def test_weights_round_trip_strictly(name: str) -> None:
    theirs = reference(name, num_classes=4)
    ours = neurlink.create_model(name, num_classes=4)
    load_ultralytics(ours, theirs.state_dict())  # a state_dict does as the model
    exported = to_ultralytics_state_dict(ours)
    assert sorted(exported) == sorted(theirs.state_dict())
    fresh = tasks().DetectionModel(f"{name}.yaml", nc=4, verbose=False)
    assert str(fresh.load_state_dict(exported, strict=True)) == "<All keys matched successfully>"
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in theirs.state_dict().items())


def test_a_state_dict_that_does_not_fit_is_refused_naming_both_keys_and_shapes() -> None:
    theirs = reference("yolov8n", num_classes=80)
    ours = neurlink.create_model("yolov8n", num_classes=3)
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    # (the class branch is max(64, min(classes, 100)) wide: 80 channels for 80 classes, 64 for 3)
    with pytest.raises(StateDictError, match=r"'model\.22\.cv3\.0\.0\.conv\.weight' has shape \[80, 64, 3, 3\], but "
                       r"neurlink key '23\.6\.conv\.weight' needs \[64, 64, 3, 3\]"):  # fmt: skip
        load_ultralytics(ours, theirs)
    assert all(torch.equal(before[k], v) for k, v in ours.state_dict().items())  # unchanged
    with pytest.raises(StateDictError, match=r"'model\.2\.m\.0\.cv1\.conv\.weight' has shape \[8, 16, 3, 3\], but"
                       r" neurlink key '3\.3\.1\.conv\.weight' needs \[16, 16, 3, 3\]"):  # fmt: skip
        load_ultralytics(neurlink.create_model("yolov8n"), reference("yolo11n"))  # another family: C3k2's halved m
    state = theirs.state_dict()
    del state["model.22.dfl.conv.weight"]
    with pytest.raises(StateDictError, match=r"'model\.22\.dfl\.conv\.weight' is missing"):
        load_ultralytics(neurlink.create_model("yolov8n"), state)
    with pytest.raises(StateDictError, match="strides"):
        theirs.stride = torch.tensor([4.0, 8.0, 16.0])
        load_ultralytics(neurlink.create_model("yolov8n"), theirs)
    with pytest.raises(StateDictError, match="not a neurlink network"):
        load_ultralytics(theirs, ours)


def test_the_library_never_imports_ultralytics() -> None:
    """Ultralytics (AGPL-3.0) is a test-time reference: no module of the library imports it, anywhere."""
    imported = set()
    for path in pathlib.Path(neurlink.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {(path.name, alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add((path.name, node.module))
    assert ("ultralytics.py", "torch") in imported  # (the walk sees the interop's imports)
    assert [(name, module) for name, module in imported if module.split(".")[0] == "ultralytics"] == []


def test_initialisation_is_ultralytics() -> None:
    torch.manual_seed(0)
    theirs = tasks().DetectionModel("yolo11n.yaml", nc=6, verbose=False)
    ours = neurlink.create_model("yolo11n", num_classes=6)
    norms = [m for m in ours.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == sum(isinstance(m, nn.BatchNorm2d) for m in theirs.modules())
    assert {(m.eps, m.momentum) for m in norms} == {(1e-3, 0.03)}  # initialize_weights' settings
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any() for m in norms)
    exported = to_ultralytics_state_dict(ours)
    for key, tensor in theirs.state_dict().items():
        if key.endswith(".bias") or "dfl" in key:  # bias_init's values and the DFL's bins
            torch.testing.assert_close(exported[key], tensor, msg=key)
    for key, tensor in theirs.state_dict().items():  # PyTorch's default conv init: uniform in 1 / sqrt(fan_in)
        if key.endswith("conv.weight") and tensor.numel() > 4096 and "dfl" not in key:
            bound = 1 / math.sqrt(tensor[0].numel())
            assert 0.95 * bound < exported[key].abs().max() <= bound, key


# --- tools and export ---------------------------------------------------------------------------


@functools.cache
def evaluated(name: str) -> Detector:
    """The model with random norm statistics and affines, in eval (made once for the tests below)."""
    torch.manual_seed(0)
    net = neurlink.create_model(name, num_classes=4)
    randomize_batchnorm(net, torch.Generator().manual_seed(0))
    return net.eval()


@pytest.fixture(params=SMALL)
def small(request) -> Detector:
    return evaluated(request.param)


# torch.export's symbolic shapes take 15-25 s a model here, ONNX's translation as much again: YOLO11's
# export runs with -m slow, as ONNX does (YOLOv8's export, and fx for both, in every run)
EXPORTED = ["yolov8n", pytest.param("yolo11n", marks=pytest.mark.slow)]


def test_summary_shows_the_maps_the_head_declares(small) -> None:
    summary = neurlink.summary(small, (1, 3, 96, 128))
    assert summary.total_params == count(small)
    assert summary.trainable_params == count(small) - 16  # the DFL's bins, as Ultralytics counts its "gradients"
    text = str(summary)
    for ratio, size in ((8, "12, 16"), (16, "6, 8"), (32, "3, 4")):  # the head's row: each map declared and made
        assert re.search(rf"\(68, {ratio}\) +\(1, 68, {size}\)", text), text
    assert "Detect[['p3', 'p4', 'p5']]" in text
    assert small.training is False


def test_save_pretrained_round_trip(small, tmp_path) -> None:
    x = torch.randn(1, 3, 96, 64)
    small.save_pretrained(tmp_path)
    again = neurlink.from_pretrained(tmp_path)
    assert isinstance(again, Detector)
    with torch.no_grad():
        torch.testing.assert_close(again(x), small(x), rtol=0, atol=0)
    with pytest.raises(PretrainedError, match="registered builder"):
        yolo.yolov8(Scale(0.33, 0.25, 512)).save_pretrained(tmp_path / "own")
    named = yolo.yolo11("n", num_classes=2).eval()  # a named scale is its builder's network, and saves as it
    named.save_pretrained(tmp_path / "named")
    again = neurlink.from_pretrained(tmp_path / "named")
    assert isinstance(again, Detector) and again[-1].num_classes == 2
    with torch.no_grad():
        torch.testing.assert_close(again(x), named(x), rtol=0, atol=0)


def test_a_head_of_one_level_of_the_users_own() -> None:
    """One level: the network returns a list of its one map in training (not the map split by image) and
    decodes it in eval; the head of a user's lines starts with Ultralytics' biases, as the zoo's."""
    from neurlink.models.yolo_blocks import conv

    net = Detector([((3, 1), nv.Input()), ((32, 8), conv[-1, "p3"](3)), ((67, 8), Detect["p3"]())])
    maps = net.train()(torch.rand(2, 3, 64, 40))
    assert [tuple(m.shape) for m in maps] == [(2, 67, 8, 5)]
    assert net.eval()(torch.rand(2, 3, 64, 40)).shape == (2, 7, 40)
    head = net[-1]
    assert torch.all(head["cv2.0.2"].conv.bias == 2.0)
    torch.testing.assert_close(head["cv3.0.2"].conv.bias, torch.full((3,), math.log(5 / 3 / (640 / 8) ** 2)))


def test_the_lines_take_a_scale_by_its_letter() -> None:
    assert len(yolo.yolov8_lines("n")) == len(yolo.yolov8_lines(yolo.YOLOV8_SCALES["n"])) == 24
    with pytest.raises(NerveArgumentError, match=r"yolo11_lines: scale='q' is not a scale"):
        yolo.yolo11_lines("q")


def test_fx_symbolic_trace(small) -> None:
    traced = torch.fx.symbolic_trace(small)
    x = torch.randn(2, 3, 96, 160)
    with torch.no_grad():
        close(traced(x), small(x))


@pytest.mark.parametrize("name", EXPORTED)
def test_torch_export_with_dynamic_shapes(name: str) -> None:
    small = evaluated(name)
    program = torch.export.export(small, (torch.randn(1, 3, 64, 64),), dynamic_shapes=small.dynamic_shapes())
    for size in ((96, 160), (128, 64)):
        y = torch.randn(1, 3, *size)
        with torch.no_grad():
            close(program.module()(y), small(y))


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_onnx_export_runs_in_onnxruntime(name: str, tmp_path) -> None:
    small = evaluated(name)
    onnxruntime = pytest.importorskip("onnxruntime")  # the `export` extra
    x = torch.randn(1, 3, 64, 96)
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation and progress notices
        torch.onnx.export(small, (x,), str(path), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = small(x)
    torch.testing.assert_close(torch.from_numpy(result), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


# --- mistakes -------------------------------------------------------------------------------------


def _head_lines(head) -> list:
    return [
        ((3, 1), nv.Input()),
        ((32, 8), nv.Conv2d_BN_ReLU[-1, "p3"](3)),
        ((64, 16), nv.Conv2d_BN_ReLU[-1, "p4"](3)),
        head,
    ]


@pytest.mark.parametrize(
    "head, error, message",
    [
        (((64, 8), (64, 16), Detect[["p3", "p4"]]()), DimsError, r"64 box channels .* declares 64 channels"),
        (((69, 8), (70, 16), Detect[["p3", "p4"]]()), DimsError, r"level 1 is \(69, 16\)"),
        (((69, 8), (69, 8), Detect[["p3", "p4"]]()), DimsError, r"level 1 is \(69, 16\)"),
        (((69, 8), Detect[["p3", "p4"]]()), DimsError, r"makes 2 output\(s\), but the line declares 1"),
        (((69, 8), (69, 16), Detect[["p3", "p4"]](reg_max=0)), NerveArgumentError, r"reg_max=0"),
        (((69, 8), (69, 16), Detect[["p3", "p4"]](depthwise=1)), NerveArgumentError, r"depthwise=1"),
    ],
)
def test_head_mistakes_name_the_line(head, error, message) -> None:
    with pytest.raises(error, match=message) as raised:
        nv.build(_head_lines(head))
    assert "line 3" in str(raised.value)


def test_detector_and_builder_mistakes() -> None:
    with pytest.raises(DefinitionError, match="last line is its Detect head, but it is Conv2d_BN_ReLU"):
        Detector(_head_lines(((16, 16), nv.Conv2d_BN_ReLU(3))))
    with pytest.raises(NerveArgumentError, match="scale='q'"):
        yolo.yolov8("q")
    with pytest.raises(NerveArgumentError, match="num_classes=0"):
        neurlink.create_model("yolo11n", num_classes=0)
    with pytest.raises(TypeError, match="'depth'"):
        neurlink.create_model("yolo11n", depth=2)
