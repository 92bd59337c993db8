"""A definition file's ``scales:``: Ultralytics' n/s/m/l/x of YOLOv8 and YOLO11 as one file each.

The references: the zoo's builders (``yolov8n`` ... ``yolo11x``, themselves checked against Ultralytics'
modules in ``test_yolo.py``), the parameter counts Ultralytics' model summaries print for its YAMLs, and
channels worked out by hand for the small definitions.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

import neurlink
import neurlink.nerves as nv
from neurlink import DefinitionFileError, models
from neurlink.definition_files import from_text
from neurlink.errors import DimsError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "definitions"

pytestmark = pytest.mark.usefixtures("flush_denormals")

# Ultralytics' own figures (its model summaries of yolov8n.yaml ... yolo11x.yaml at 80 classes)
PARAMETERS = {
    ("yolov8", "n"): 3_157_200,
    ("yolov8", "s"): 11_166_560,
    ("yolov8", "m"): 25_902_640,
    ("yolov8", "l"): 43_691_520,
    ("yolov8", "x"): 68_229_648,
    ("yolo11", "n"): 2_624_080,
    ("yolo11", "s"): 9_458_752,
    ("yolo11", "m"): 20_114_688,
    ("yolo11", "l"): 25_372_160,
    ("yolo11", "x"): 56_966_176,
}


def _shapes(net) -> dict:
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


def _count(net) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(("family", "scale"), list(PARAMETERS), ids=[f + s for f, s in PARAMETERS])
def test_one_file_builds_every_scale_of_the_zoo_s_detector(family, scale):
    net = neurlink.from_file(EXAMPLES / f"{family}.yaml", scale=scale, device="meta")
    with torch.device("meta"):
        zoo = getattr(models, f"{family}{scale}")()
    assert type(net) is type(zoo) is models.Detector
    assert _count(net) == _count(zoo) == PARAMETERS[family, scale]
    assert _shapes(net) == _shapes(zoo)
    assert [entry.written for entry in net.lines] == [entry.written for entry in zoo.lines]


def test_the_classes_are_a_parameter_the_scale_leaves_alone():
    net = neurlink.from_file(EXAMPLES / "yolo11.yaml", scale="s", num_classes=3, device="meta")
    with torch.device("meta"):
        zoo = models.yolo11s(num_classes=3)
    assert net[-1].num_classes == 3
    assert _shapes(net) == _shapes(zoo)


@pytest.mark.parametrize("family", ["yolov8", "yolo11"])
def test_the_n_file_with_the_zoo_s_weights_computes_the_zoo_s_detections(family):
    torch.manual_seed(0)
    zoo = getattr(models, f"{family}n")(num_classes=5)
    net = neurlink.from_file(EXAMPLES / f"{family}.yaml", scale="n", num_classes=5)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for name, buffer in zoo.named_buffers():  # norm statistics that are not the defaults
            if name.endswith(("running_mean", "running_var")):
                buffer.uniform_(0.5, 1.5)
        net.load_state_dict(zoo.state_dict())
        expected, found = zoo.eval()(x), net.eval()(x)
    assert found.shape == (1, 4 + 5, 8 * 12 + 4 * 6 + 2 * 3)
    assert torch.equal(found, expected)


def test_a_scale_s_params_set_the_file_s_parameters_unless_the_caller_does():
    """YOLO11's m, l and x make every C3k2 of C3k blocks (``params: {c3k: true}``); n and s keep the
    file's default; a keyword of the caller's wins over the scale's."""
    file = EXAMPLES / "yolo11.yaml"
    kinds = {scale: type(neurlink.from_file(file, scale=scale, device="meta")[3]["m.0"]).__name__ for scale in "nsm"}
    assert kinds == {"n": "Bottleneck", "s": "Bottleneck", "m": "C3k"}
    assert type(neurlink.from_file(file, scale="m", c3k=False, device="meta")[3]["m.0"]).__name__ == "Bottleneck"
    assert type(neurlink.from_file(file, scale="n", c3k=True, device="meta")[3]["m.0"]).__name__ == "C3k"


# --- the rules, on small definitions ------------------------------------------------------------------------

SMALL = "scales:\n  half: {width: 0.5, depth: 0.5, max_channels: 32}\n  same: {width: 1.0}\nlines:\n"

# (lines, the channels of the last line under scale "half": each concatenation is the sum of its inputs'
# scaled channels, where rounding each written number on its own would give another)
CONCATENATIONS = [
    (  # 16 -> 8 and 64 -> min(64, 32) * 0.5 = 16: 24 (80 on its own would be min(80, 32) * 0.5 = 16)
        ["(3, 1), Input()", '(16, 2), Conv2d[-1, "a"](3)', "(64, 2), Conv2d(1)", '(80, 2), Concat[["a", -1]]()'],
        24,
    ),
    (  # a slice of absolute indices
        ["(3, 1), Input()", "(16, 2), Conv2d(3)", "(64, 2), Conv2d(1)", "(80, 2), Concat[1:3]()"],
        24,
    ),
    (  # a slice from a tag
        ["(3, 1), Input()", '(16, 2), Conv2d[-1, "a"](3)', "(64, 2), Conv2d(1)", '(80, 2), Concat["a":3]()'],
        24,
    ),
    (  # an Input's channels are not scaled: 3 + 8
        ["(3, 1), Input()", "(16, 1), Conv2d(3)", "(19, 1), Concat[[0, -1]]()"],
        11,
    ),
    (  # one output of a line of two (16 -> 8 each), then a concatenation of a concatenation: 8 + 16, + 3
        [
            "(3, 1), Input()",
            "(32, 1), Conv2d(3)",
            "(16, 1), (16, 1), ChannelSplit()",
            "(48, 1), Concat[[output(-1, 1), 1]]()",
            "(51, 1), Concat[[-1, 0]]()",
        ],
        27,
    ),
    (  # a count from a parameter is the parameter's: 5 + 8
        ["(3, 1), Input()", "(width, 1), Conv2d(3)", "(16, 1), Conv2d(1)", "(21, 1), Concat[[-2, -1]]()"],
        13,
    ),
]


@pytest.mark.parametrize(("lines", "channels"), CONCATENATIONS)
def test_a_concatenation_has_the_sum_of_its_inputs_scaled_channels(lines, channels):
    text = "params:\n  width: 5\n" + SMALL + "".join(f"  - {line}\n" for line in lines)
    net = from_text(text, scale="half", device="meta")
    assert net.lines[-1].dims[0].channels == channels
    assert from_text(text, scale="same", device="meta").lines[-1].dims[0].channels == int(lines[-1][1:3])


def test_a_nerve_s_repeat_counts_are_scaled_by_depth_positional_or_keyword():
    """C2f declares ``depth_arguments = ("n",)``: a count written as a number is ``max(round(n * depth), 1)``
    above 1, as ``* n`` is; one from a parameter is kept."""
    lines = ["(3, 1), Input()", "(32, 1), C2f(4)", "(32, 1), C2f(n=3)", "(32, 1), C2f(1)", "(32, 1), C2f(blocks)"]
    text = "params:\n  blocks: 4\n" + SMALL + "".join(f"  - {line}\n" for line in lines)
    net = from_text(text, scale="half", device="meta")
    assert [len([tag for tag in net[k].line_tags() if tag.startswith("m.")]) for k in (1, 2, 3, 4)] == [2, 2, 1, 4]
    written = ["((16, 1), C2f(2))", "((16, 1), C2f(n=2))", "((16, 1), C2f(1))", "((16, 1), C2f(4))"]
    assert [entry.written for entry in net.lines[1:]] == written


# --- mistakes ---------------------------------------------------------------------------------------------

CONCAT = (
    '  - (3, 1), Input()\n  - (16, 2), Conv2d[-1, "a"](3)\n  - (64, 2), Conv2d(1)\n  - (72, 2), Concat[["a", -1]]()\n'
)
C3K = "params:\n  num_classes: 80\n  c3k: false\nscales:\n  m: {width: 1.0, %s}\nlines:\n  - (3, 1), Input()\n"

MISTAKES = [
    # (name, text, "line:column", message)
    (
        "a concatenation declaring another sum",
        SMALL + CONCAT,
        "8:6",
        r"line 3: \(72, 2\), Concat\[\[\"a\", -1\]\]\(\)\n.*\n"
        r"    Concat of lines 1 and 2 is 16 \+ 64 = 80 channels as written, but the line declares 72; under scale"
        r" 'half' its channels are the sum of its inputs' scaled ones, 8 \+ 16 = 24\n"
        r"    allowed: the channels of the lines it reads as written, 80 \(which scale 'half' makes 24\)",
    ),
    (
        "a parameter the file does not declare",
        C3K % "params: {c3: true}",
        "5:28",
        r"scale 'm' sets 'c3', but the file declares no parameter 'c3'; did you mean 'c3k'\?\n"
        r"    allowed: a parameter declared under params: \(num_classes, c3k\)",
    ),
    (
        "a value of another type",
        C3K % "params: {c3k: 1}",
        "5:33",
        r"scale 'm' sets c3k to int 1, but the file's c3k is a bool \(False\)\n    allowed: c3k: a bool",
    ),
    (
        "params that are not a mapping",
        C3K % "params: [c3k]",
        "5:27",
        r"params: of scale 'm' maps parameters to the scale's values\n    allowed: params: \{c3k: true\}",
    ),
    (
        "a misspelt params",
        C3K % "param: {c3k: true}",
        "5:19",
        r"unknown key 'param'; did you mean 'params'\?\n    allowed: width, depth, max_channels, divisor, params",
    ),
]


@pytest.mark.parametrize(("name", "text", "where", "message"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_of_a_scale_is_named_at_its_line(name, text, where, message):
    with pytest.raises(DefinitionFileError, match=rf"net\.yaml:{where}: (.|\n)*{message}"):
        from_text(text, file="net.yaml", scale="half" if "half" in text else None)


def test_a_build_error_at_a_scaled_line_says_what_the_scale_made_of_its_numbers():
    """C2PSA keeps its input's dims: the build quotes the scaled channels, and the line as written."""
    text = SMALL + "  - (3, 1), Input()\n  - (16, 1), Conv2d(3)\n  - (48, 1), C2PSA(3)\n"
    with pytest.raises(DimsError, match=r"net\.yaml:7:5: line 2: \(48, 1\), C2PSA\(3\)\n") as caught:
        from_text(text, file="net.yaml", scale="half")
    assert str(caught.value).splitlines()[1] == (
        "    C2PSA keeps the dims of its input line 1, (8, 1), but this line declares (16, 1)"
        " (scale 'half': channels 48 are 16, n=3 is 2)"
    )


class Repeated(nv.Nerve):
    """A nerve whose depth_arguments name no argument of its own."""

    depth_arguments = ("blocks",)

    def __init__(self, n: int = 1) -> None:
        super().__init__()
        self.add([(self.target_dims[0], nv.Conv2d(1))] * n)


def test_depth_arguments_that_are_no_arguments_of_the_nerve_are_refused(monkeypatch):
    module = types.ModuleType("scale_nerves")
    module.Repeated = Repeated
    monkeypatch.setitem(sys.modules, "scale_nerves", module)
    text = SMALL + "  - (3, 1), Input()\n  - (8, 1), scale_nerves.Repeated(2)\n"
    with pytest.raises(DefinitionFileError, match=r"Repeated.depth_arguments is \('blocks',\), but it names"):
        from_text(text, scale="half", trusted=["scale_nerves"])
