"""Definitions as files (issue 25): YAML and JSON read without running anything, errors at file:line.

The references: the zoo's own networks (a file written from one, read back and given the same weights,
computes the same outputs; the hand-written examples make the zoo's modules and parameters), channel
counts worked out by hand for parameters and scales, and marker files that an import would create.
"""

from __future__ import annotations

import functools
import json
import pickle
import re
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch
import yaml

import neurlink
import neurlink.nerves as nv
from neurlink import DefinitionFileError, NeurlinkError, nn
from neurlink.definition_files import DefinitionFileNotFoundError, from_text, to_text
from neurlink.errors import DimsError, SelectorError, UnexpectedArgumentError, UnknownTagError
from neurlink.shapes import Dims
from neurlink.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "definitions"

pytestmark = pytest.mark.usefixtures("flush_denormals")


def _shapes(net) -> dict:
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


def _same_function(net, again, size, batch=2) -> None:
    """``again`` given ``net``'s weights (with trained norm statistics) computes ``net``'s outputs."""
    torch.manual_seed(1)
    x = torch.randn(batch, 3, *size)
    with torch.no_grad():
        net.train()(x)  # running statistics that are not the defaults
        again.load_state_dict(net.state_dict())
        net.eval(), again.eval()
        expected, found = net(x), again(x)
    assert _equal(found, expected)


def _equal(a, b) -> bool:
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    return torch.equal(a, b)


# --- round trips: every zoo family, both formats ---------------------------------------------------------

FAMILIES = [
    ("resnet18", (32, 32), {}),
    ("mobilenet_v3_small", (32, 32), {}),
    ("efficientnet_b0", (32, 32), {}),
    ("mnasnet0_5", (32, 32), {}),
    ("shufflenet_v2_x0_5", (32, 32), {}),
    ("squeezenet1_1", (64, 64), {}),
    ("regnet_x_400mf", (32, 32), {}),
    ("densenet121", (32, 32), {}),
    ("hrnet_w18_small", (64, 64), {}),
    ("unet_resnet18", (37, 30), {}),
    ("lraspp_mobilenet_v3_large", (33, 33), {}),
    ("googlenet", (64, 64), {"aux_logits": False}),
    ("inception_v3", (80, 80), {"aux_logits": False}),
    ("yolov8n", (64, 96), {}),
    ("convnext_tiny", (32, 32), {}),
    ("swin_t", (32, 32), {}),
]
LARGE = [("vit_b_16", (32, 32), {}), ("alexnet", (64, 64), {}), ("vgg11", (32, 32), {})]
ALL_FAMILIES = FAMILIES + LARGE


def test_the_round_trips_cover_every_family_of_the_zoo():
    from neurlink._registry import _BUILDERS  # a builder's module is its family (what _made_by records)

    families = {_BUILDERS[name].__module__ for name in neurlink.list_models()}
    assert {_BUILDERS[name].__module__ for name, _, _ in ALL_FAMILIES} == families


@pytest.mark.parametrize("kind", ["yaml", "json"])
@pytest.mark.parametrize(
    "name, size, keywords",
    [*FAMILIES, *(pytest.param(*family, marks=pytest.mark.slow) for family in LARGE)],
    ids=[family[0] for family in ALL_FAMILIES],
)
def test_a_zoo_model_written_and_read_back_computes_the_same_function(name, size, keywords, kind):
    torch.manual_seed(0)
    net = neurlink.create_model(name, num_classes=5, **keywords)
    text = to_text(net, kind)
    again = from_text(text, kind)
    assert type(again) is type(net)
    assert [entry.written for entry in again.lines] == [entry.written for entry in net.lines]
    _same_function(net, again, size)
    document = json.loads(text) if kind == "json" else yaml.safe_load(text)
    assert document["made_by"] == f"{name}({', '.join(f'{k}={v}' for k, v in {'num_classes': 5, **keywords}.items())})"
    assert document["params"] == {"num_classes": 5}  # every family's head follows num_classes
    assert from_text(text, kind, num_classes=3, device="meta").state_dict().keys() == net.state_dict().keys()


@pytest.mark.parametrize("kind", ["yaml", "json"])
@pytest.mark.parametrize("name, size, keywords", LARGE, ids=[family[0] for family in LARGE])
def test_the_largest_families_round_trip_on_the_meta_device(name, size, keywords, kind):
    with torch.device("meta"):
        net = neurlink.create_model(name, **keywords)
    again = from_text(to_text(net, kind), kind, device="meta")
    assert _shapes(again) == _shapes(net)
    assert [entry.written for entry in again.lines] == [entry.written for entry in net.lines]


def test_a_zoo_model_is_its_lines_with_repeats_and_its_builder_call():
    net = neurlink.resnet50(num_classes=10)
    text = to_text(net)
    lines = yaml.safe_load(text)["lines"]
    assert lines[:5] == [
        "(3, 1), Input()",
        '(64, 2), Conv2d_BN_ReLU[-1, "stem"](7)',
        "(64, 4), MaxPool2d(3)",
        "(256, 4), Bottleneck() * 2",  # [line] * 2: one line; a block's sub-lines stay inside it
        '(256, 4), Bottleneck[-1, "layer1"]()',
    ]
    assert lines[-1] == '(num_classes, "(1, 1)"), Conv2d(1)'
    assert "made_by: resnet50(num_classes=10)" in text.splitlines()
    assert text.startswith("# resnet50 of neurlink's zoo as its lines")
    assert len(lines) == 13 and len(net.lines) == 21


def test_num_classes_is_a_parameter_where_the_lines_follow_it():
    text = to_text(neurlink.yolov8n(num_classes=3), "yaml")
    assert yaml.safe_load(text)["network"] == "Detector"
    last = yaml.safe_load(text)["lines"][-1]
    assert last.startswith(
        '(num_classes + 64, 8), (num_classes + 64, 16), (num_classes + 64, 32), Detect[["p3", "p4", "p5"]]('
    )
    seven = from_text(text, num_classes=7, device="meta")
    with torch.device("meta"):
        assert _shapes(seven) == _shapes(neurlink.yolov8n(num_classes=7))


def test_googlenet_with_auxiliary_heads_is_refused_naming_what_a_file_cannot_hold():
    with pytest.raises(
        DefinitionFileError,
        match=r"AuxLogitsNetwork\(\.\.\.\) takes outputs, outputs_type besides its"
        r" lines, and a definition file holds lines \(and outputs\) only\n    allowed: .*aux_logits=False",
    ):
        to_text(neurlink.googlenet())


# --- any definition ------------------------------------------------------------------------------------

USER_MODULE = "neurlink_test_file_nerves"
USER_SOURCE = """
import neurlink.nerves as nv
from torch import nn


def leaky():
    return nn.LeakyReLU(0.1)


class Twice(nv.Nerve):
    def __init__(self, block, hidden, scale=1):
        super().__init__()
        self.scale = float(scale)
        self.add([(hidden, block), (self.target_dims[0], block)])
"""


@pytest.fixture
def user_nerves(tmp_path, monkeypatch):
    (tmp_path / f"{USER_MODULE}.py").write_text(USER_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(USER_MODULE)
    yield module
    sys.modules.pop(USER_MODULE, None)


def _every_kind_of_line(user) -> list:
    bn = functools.partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
    return [
        ((3, 1), nv.Input["image"](dtype=torch.float32)),
        ((16, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3, act=nn.SiLU, norm=bn)),
        [((16, 2), nv.Conv2d_BN_ReLU(3, act=functools.partial(nn.LeakyReLU, 0.2)))] * 2,
        ((16, 2), nn.LeakyReLU(0.1)),  # a plain module
        ((48, 2), nv.Concat["stem":4]()),  # a slice bounded by a tag
        ((32, 4), user.Twice(nv.Conv2d_BN_ReLU(3, act=user.leaky), Dims(24, 4), scale=Fraction(1, 3))),
        ((32, 4), nv.SkipConnect2d[[-2, -1]](1, norm=nn.BatchNorm2d)),
        ((16, (2, 2)), nv.ConvTransposed2d(4)),  # a tuple ratio
        ((32, 8.0), nv.Conv2d_BN_ReLU[-2, "deep"](3)),  # a float ratio
        ((32, 4), (32, 8), nv.Bundle[[-3, "deep"], "pair"]()),  # a multi-output line
        ((32, Fraction(4)), nv.Interpolate[nv.output("pair", 1)]("nearest")),
        ((64, 4), nv.Concat[[nv.output("pair", 0), slice(-1, None)]]()),
        ((64, "(1, 1)"), nv.AvgPool2d()),
        ((64, "(1, 1)"), nn.Dropout(0.1)),
        ((64, "(1, 1)"), nn.Conv2d(64, 64, 1)),  # torch's Conv2d, where the nerve's name is Conv2d
        ((10, "()"), nv.Linear()),
        ((10, "()"), nn.Rearrange("b c -> b c")),
        ((10, "()"), nv.Module[[-1, -2]](nn.Bilinear(10, 10, 10))),
    ]


@pytest.mark.parametrize("kind", ["yaml", "json"])
def test_a_definition_of_every_kind_round_trips_with_a_trusted_user_nerve(user_nerves, kind, tmp_path):
    torch.manual_seed(0)
    net = nv.build(_every_kind_of_line(user_nerves), outputs=["deep", "pair", -1])
    path = tmp_path / f"net.{kind}"
    net.to_file(path)
    text = path.read_text()
    lines = (json.loads(text) if kind == "json" else yaml.safe_load(text))["lines"]
    assert (
        lines[1]
        == '(16, 2), Conv2d_BN_ReLU[-1, "stem"](3, act=SiLU, norm=partial(BatchNorm2d, eps=0.001, momentum=0.01))'
    )
    assert lines[2] == "(16, 2), Conv2d_BN_ReLU(3, act=partial(LeakyReLU, 0.2)) * 2"
    assert lines[3] == "(16, 2), LeakyReLU(negative_slope=0.1)"  # torch's defaults left out
    assert lines[4] == '(48, 2), Concat["stem":4]()'
    assert lines[5] == (
        "(32, 4), neurlink_test_file_nerves.Twice(Conv2d_BN_ReLU(3, act=neurlink_test_file_nerves.leaky),"
        " Dims(24, 4), scale=Fraction(1, 3))"
    )
    assert lines[11] == '(64, 4), Concat[[output("pair", 0), slice(-1, None, None)]]()'
    assert lines[14] == '(64, "(1, 1)"), nn.Conv2d(in_channels=64, out_channels=64, kernel_size=(1, 1))'
    assert lines[0] == '(3, 1), Input["image"](dtype=torch.float32)'
    with pytest.raises(DefinitionFileError, match=f"names module '{USER_MODULE}', which is not trusted"):
        neurlink.from_file(path)
    again = neurlink.from_file(path, trusted=[USER_MODULE])
    assert [entry.written for entry in again.lines] == [entry.written for entry in net.lines]
    _same_function(net, again, (32, 32))


def test_values_the_notation_writes_read_back_as_themselves():
    lines = [
        ((3, 1), nv.Input()),
        ((8, 2), nv.Conv2d_BN_ReLU(3, act=nn.Hardtanh(-float("inf"), 2.5))),  # inf in a module's arguments
        ((8, nv.tokens(2)), nv.ToTokens()),
        ((8, nv.tokens(2)), nv.LayerNorm(1e-6)),
        ((8, nv.tokens((2, 2))), nv.LayerNorm(1e-6)),  # a ratio per dim
    ]
    net = nv.build(lines)
    text = to_text(net)
    assert "- (8, 2), Conv2d_BN_ReLU(3, act=Hardtanh(min_val=-inf, max_val=2.5))" in text
    assert "- (8, tokens(2)), LayerNorm(1e-06)" in text
    assert "- (8, tokens((2, 2))), LayerNorm(1e-06)" in text
    again = from_text(text)
    assert [entry.written for entry in again.lines] == [entry.written for entry in net.lines]


def test_what_a_file_cannot_hold_is_refused_before_anything_is_written(tmp_path):
    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3, act=lambda: nn.ReLU()))])
    with pytest.raises(DefinitionFileError, match=r"line 1: \(\(8, 2\), Conv2d_BN_ReLU\(3, act=<lambda>\)\)"):
        net.to_file(tmp_path / "net.yaml")
    assert not (tmp_path / "net.yaml").exists()
    changed = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3))])
    changed[1].norm.eps = 0.5  # set after the build: the lines make 1e-5
    with pytest.raises(
        DefinitionFileError, match=r"module '1.norm': its attribute 'eps' is 0.5, but its line makes 1e-05"
    ):
        to_text(changed)
    replaced = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3))])
    replaced[1] = nn.Identity()
    with pytest.raises(DefinitionFileError, match=r"no longer matches its definition lines"):
        to_text(replaced)
    with pytest.raises(DefinitionFileError, match=r"a definition file is .yaml, .yml or .json"):
        changed.to_file(tmp_path / "net.txt")


# --- the hand-written examples --------------------------------------------------------------------------


def test_resnet50_yaml_is_the_zoo_s_resnet50():
    net = neurlink.from_file(EXAMPLES / "resnet50.yaml", num_classes=10)
    zoo = neurlink.resnet50(num_classes=10)
    assert [entry.written for entry in net.lines] == [entry.written for entry in zoo.lines]
    assert (
        sum(p.numel() for p in neurlink.from_file(EXAMPLES / "resnet50.yaml", device="meta").parameters()) == 25_557_032
    )
    _same_function(zoo, net, (32, 32))


def test_unet_yaml_is_the_zoo_s_unet_resnet18():
    net = neurlink.from_file(EXAMPLES / "unet.yaml", num_classes=3)
    zoo = neurlink.unet_resnet18(num_classes=3)
    assert _shapes(net) == _shapes(zoo)
    _same_function(zoo, net, (37, 30))  # any size: every line lands on ceil(size / ratio)


def test_hrnet_yaml_is_the_zoo_s_hrnet_w18_small_and_its_width_is_a_parameter():
    net = neurlink.from_file(EXAMPLES / "hrnet_w18_small.yaml")
    zoo = neurlink.hrnet_w18_small()
    assert [entry.written for entry in net.lines] == [entry.written for entry in zoo.lines]
    _same_function(zoo, net, (64, 64))
    wider = neurlink.from_file(EXAMPLES / "hrnet_w18_small.yaml", width=18, device="meta")
    assert [d.channels for d in wider.lines[9].dims] == [18, 36, 72, 144]  # width, 2 * width, 4 * width, 8 * width


def test_the_custom_nerve_example_needs_its_module_trusted_and_scales_apply(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "my_nerves", raising=False)
    with pytest.raises(
        DefinitionFileError, match=r"residual.yaml:18:15: line 2: \(256, 4\), my_nerves.Residual\(\) \* 3"
    ):
        neurlink.from_file(EXAMPLES / "residual.yaml")
    assert "my_nerves" not in sys.modules
    from my_nerves import Residual

    # scale s (the file's default): width 0.5 of the channels written as numbers, rounded up to 8;
    # depth 0.34 of the repeats: 3 * 0.34 = 1.02 -> 1
    small = neurlink.from_file(EXAMPLES / "residual.yaml", trusted=["my_nerves"])
    assert [(entry.dims[0].channels, entry.dims[0].shape.written) for entry in small.lines] == [
        (3, 1),  # an Input keeps its channels
        (32, 2),
        (128, 4),
        (256, 8),
        (256, "(1, 1)"),
        (10, "()"),  # num_classes: a parameter's count is its own
    ]
    # scale m: 64 * 0.75 = 48, 256 * 0.75 = 192, 512 * 0.75 = 384; repeats 3 * 0.67 = 2.01 -> 2
    medium = neurlink.from_file(EXAMPLES / "residual.yaml", trusted=["my_nerves"], scale="m", num_classes=4)
    by_hand = nv.build(
        [
            ((3, 1), nv.Input()),
            ((48, 2), nv.Conv2d_BN_ReLU(3)),
            [((192, 4), Residual())] * 2,
            [((384, 8), Residual(expansion=2))] * 2,
            ((384, "(1, 1)"), nv.AvgPool2d()),
            ((4, "()"), nv.Linear()),
        ]
    )
    assert [entry.written for entry in medium.lines] == [entry.written for entry in by_hand.lines]
    _same_function(by_hand, medium, (32, 32))
    assert len(neurlink.from_file(EXAMPLES / "residual.yaml", trusted=["my_nerves"], scale="l").lines) == 10


def test_every_example_file_builds_from_the_command_line(capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "my_nerves", raising=False)
    files = sorted(str(path) for path in EXAMPLES.glob("*.yaml"))
    assert len(files) == 6
    assert main(["check", *files, "--trust", "my_nerves"]) == 0  # the command line finds my_nerves beside its file
    assert capsys.readouterr().out.count("ok: ") == 6


# --- mistakes in files: each names the file, its line and column -----------------------------------------

MISTAKES = [
    # (name, text, error class, "line:column", message)
    (
        "typo",
        "lines:\n  - (3, 1), Input()\n  - (8, 2), Conv2d_BN_Relu(3)\n",
        DefinitionFileError,
        "3:13",
        r"unknown name 'Conv2d_BN_Relu'; did you mean 'Conv2d_BN_ReLU'",
    ),
    (
        "unknown tag",
        'lines:\n  - (3, 1), Input()\n  - (8, 2), Conv2d(3)\n  - (16, 2), Concat[[-1, "stm"]]()\n',
        UnknownTagError,
        "4:5",
        r'line 2: \(16, 2\), Concat\[\[-1, "stm"\]\]\(\)\n    no earlier line is tagged \'stm\'',
    ),
    (
        "dims",
        "lines:\n  - (3, 1), Input()\n  - (8, 3), Conv2d(3)\n  - (8, 4), Conv2d(3)\n",
        DimsError,
        "4:5",
        r"line 2: \(8, 4\), Conv2d\(3\)\n    ratio 3 -> 4 needs a stride of 1.33333",
    ),
    (
        "keyword",
        "lines:\n  - (3, 1), Input()\n  - (256, 4), Bottleneck(widht=2)\n",
        UnexpectedArgumentError,
        "3:5",
        r"Bottleneck: got an unexpected keyword argument 'widht'",
    ),
    (
        "inside a nerve",
        "lines:\n  - (3, 1), Input()\n  - (64, 4), Bottleneck(kernel_size=0)\n",
        DefinitionFileError,
        "3:5",
        r"line 1 > line 2: \(64, 4\), Bottleneck\(kernel_size=0\)\n    in line 2 of its nerve: \(\(16, 4\), Conv2d_BN_ReLU\(0\)\)\n    Conv2d_BN_ReLU: kernel_size=0 is not",
    ),
    (
        "indented deeper",
        "lines:\n  - (3, 1), Input()\n   - (8, 2), Conv2d(3)\n",
        DefinitionFileError,
        "2:5",
        r"runs on into the next file line, which starts with '- ' indented deeper",
    ),
    (
        "indented less",
        "lines:\n  - (3, 1), Input()\n - (8, 2), Conv2d(3)\n",
        DefinitionFileError,
        "3:2",
        r"not valid YAML: .*expected <block end>.*\n    allowed: the items of a list start at one column",
    ),
    (
        "tab",
        "lines:\n\t- (3, 1), Input()\n",
        DefinitionFileError,
        "2:1",
        r"allowed: YAML indents with spaces, never tabs",
    ),
    (
        "undeclared parameter",
        "params:\n  num_classes: 10\nlines:\n  - (3, 1), Input()\n  - (num_clases, 2), Conv2d(3)\n",
        DefinitionFileError,
        "5:6",
        r"unknown name 'num_clases'; did you mean 'num_classes'\?",
    ),
    (
        "parameter type",
        "params:\n  num_classes: ten\nlines:\n  - (3, 1), Input()\n  - (num_classes, 2), Conv2d(3)\n",
        DefinitionFileError,
        "5:6",
        r"channels num_classes = 'ten' are not a positive int",
    ),
    (
        "python tag",
        "lines: !!python/object/apply:os.system ['echo hi']\n",
        DefinitionFileError,
        "1:8",
        r"the tag !!python/object/apply:os.system is not read",
    ),
    (
        "untrusted module",
        "lines:\n  - (3, 1), Input()\n  - (8, 2), os.system(3)\n",
        DefinitionFileError,
        "3:13",
        r"'os:system' names module 'os', which is not trusted.*\n    allowed: from_file\(path, trusted=\['os'\]\)",
    ),
    (
        "private name",
        "lines:\n  - (3, 1), Input()\n  - (8, 2), torch._C.Conv(3)\n",
        DefinitionFileError,
        "3:13",
        r"'torch._C:Conv' has a private or dunder part",
    ),
    (
        "a function torch keeps",
        "lines:\n  - (3, 1), Input()\n  - (8, 2), Conv2d(3, act=F.torch.hub.load)\n",
        DefinitionFileError,
        "3:27",
        r"reaches the function torch.hub.load, which a definition may not name",
    ),
    (
        "not called",
        "lines:\n  - (3, 1), Input()\n  - (8, 2), Conv2d\n",
        DefinitionFileError,
        "3:13",
        r"Conv2d is not called: write Conv2d\(...\)",
    ),
    (
        "syntax",
        "lines:\n  - (3, 1), Input()\n  - (8, 2), Conv2d(3\n",
        DefinitionFileError,
        "3:",
        r"not a line: '\(' was never closed",
    ),
    (
        "read as a mapping",
        'lines:\n  - (3, 1), Input()\n  - (8, 2), Conv2d(3, d={"a": 1})\n',
        DefinitionFileError,
        "3:5",
        r"a line is text, but this one is read as a mapping",
    ),
    (
        "unknown key",
        "line:\n  - (3, 1), Input()\n",
        DefinitionFileError,
        "1:1",
        r"unknown key 'line'; did you mean 'lines'",
    ),
    (
        "repeated tag",
        'lines:\n  - (3, 1), Input()\n  - (8, 2), Conv2d[-1, "t"](3) * 2\n',
        SelectorError,
        "3:5",
        r"tag 't' is already used by line 1 \(in repeat 2 of 2 of this line\)",
    ),
    (
        "nerve first",
        "lines:\n  - (3, 1), Input()\n  - Conv2d(3), (8, 2)\n",
        DefinitionFileError,
        "3:5",
        r"the nerve comes after the line's dims: \(8, 2\), Conv2d\(3\)",
    ),
    (
        "channels",
        "lines:\n  - (3, 1), Input()\n  - (8.5, 2), Conv2d(3)\n",
        DefinitionFileError,
        "3:6",
        r"channels 8.5 are not a positive int",
    ),
    (
        "alias",
        "lines:\n  - &a (3, 1), Input()\n  - *a\n",
        DefinitionFileError,
        "2:5",
        r"an alias \(\*name\) repeats a value",
    ),
    ("empty", "", DefinitionFileError, "1:1", r"the file is empty"),
    ("no lines", "params:\n  n: 1\n", DefinitionFileError, "1:1", r"the file has no lines:"),
    (
        "outputs",
        'outputs: ["nope"]\nlines:\n  - (3, 1), Input()\n',
        UnknownTagError,
        "1:1",
        r"no line is tagged 'nope'",
    ),
    (
        "an Input selects nothing",
        "lines:\n  - (3, 1), Input[-1]()\n",
        SelectorError,
        "2:5",
        r"an Input selects nothing",
    ),
    (
        "a module that refuses its arguments",
        "lines:\n  - (3, 1), Input()\n  - (3, 1), Dropout(p=2.0)\n",
        DefinitionFileError,
        "3:5",
        r"line 1: \(3, 1\), Dropout\(p=2.0\)\n    Dropout\(...\) raised ValueError: dropout probability",
    ),
    (
        "a scale of no scales",
        "scale: s\nlines:\n  - (3, 1), Input()\n",
        DefinitionFileError,
        "1:8",
        r"scale: chooses one of the file's scales:, but it declares none",
    ),
    (
        "json: a trailing comma",
        '{"lines": ["(3, 1), Input()",]}',
        DefinitionFileError,
        "1:30",
        r"not valid JSON: expected a value",
    ),
    (
        "json: a key twice",
        '{"lines": [],\n "lines": []}',
        DefinitionFileError,
        "2:2",
        r"the key 'lines' is written twice",
    ),
    (
        "json: a lambda",
        '{"lines": ["(3, 1), Input()",\n  "(8, 2), Conv2d_BN_ReLU(3, act=lambda x: x)"]}',
        DefinitionFileError,
        "2:34",
        r"a lambda is not part of the notation",
    ),
]


@pytest.mark.parametrize("name, text, error, where, message", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_in_a_file_names_the_file_and_its_line(tmp_path, name, text, error, where, message):
    path = tmp_path / ("net.json" if name.startswith("json") else "net.yaml")
    path.write_text(text)
    with pytest.raises(error) as caught:
        neurlink.from_file(path, device="meta")
    assert isinstance(caught.value, DefinitionFileError) and isinstance(caught.value, NeurlinkError)
    shown = str(caught.value)
    assert shown.startswith(f"{path}:{where}"), shown
    assert re.search(message, shown), shown
    if caught.value.source is not None and "line " in shown.split("\n")[0]:
        assert caught.value.source in text  # the line as the file writes it


def test_enough_mistakes_are_tested():
    assert len(MISTAKES) >= 20


def test_a_caret_points_at_the_mistake():
    with pytest.raises(DefinitionFileError) as caught:
        from_text("lines:\n  - (3, 1), Input()\n  - (8, 2), Conv2d_BN_ReLU(3, act=SiLu)\n", file="net.yaml")
    first, caret = str(caught.value).splitlines()[:2]
    assert first == "net.yaml:3:35: line 1: (8, 2), Conv2d_BN_ReLU(3, act=SiLu)"  # "  - (8, 2), ..." and 30 more
    assert first[caret.index("^") :].startswith("SiLu)")


def test_parameters_set_by_keyword_are_declared_and_of_the_declared_type():
    text = "params:\n  num_classes: 10\n  ratio: 0.5\nlines:\n  - (3, 1), Input()\n  - (num_classes, 2), Conv2d(3)\n"
    assert from_text(text, num_classes=4, ratio=1, device="meta").lines[1].dims[0].channels == 4
    with pytest.raises(
        UnexpectedArgumentError,
        match=r"<definition>:1:1: num_class=3: the file declares no parameter"
        r" 'num_class'; did you mean 'num_classes'\?",
    ) as caught:
        from_text(text, num_class=3)
    assert isinstance(caught.value, TypeError)  # as Python says of a keyword a function does not take
    with pytest.raises(
        DefinitionFileError,
        match=r"<definition>:2:16: num_classes=2.5 is a float, but the file's"
        r" num_classes is an int \(10\)",
    ):
        from_text(text, num_classes=2.5)
    with pytest.raises(DefinitionFileError, match=r"scale='s': the file declares no scales:"):
        from_text(text, scale="s")
    scaled = "scales:\n  s: {width: 0.5}\n" + text
    with pytest.raises(DefinitionFileError, match=r"scale 'x' is not one of the file's scales\n    allowed: s"):
        from_text(scaled, scale="x")


def test_a_missing_file_and_another_suffix(tmp_path):
    with pytest.raises(DefinitionFileNotFoundError, match=r"nope.yaml: no such file") as caught:
        neurlink.from_file(tmp_path / "nope.yaml")
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(DefinitionFileError, match=r"a definition file is .yaml, .yml or .json"):
        neurlink.from_file(tmp_path / "net.toml")


def test_an_error_of_a_file_pickles_with_its_place():
    with pytest.raises(DimsError) as caught:
        from_text("lines:\n  - (3, 1), Input()\n  - (8, 3), Conv2d(3)\n  - (8, 4), Conv2d(3)\n", file="net.yaml")
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is type(caught.value) and str(again) == str(caught.value)


# --- nothing outside the allow-list is imported or run ----------------------------------------------------

EVIL_MODULE = "neurlink_test_evil_marker"
TRUSTED_MODULE = "neurlink_test_trusted_marker"
MARKER_SOURCE = """
import pathlib
pathlib.Path({path!r}).touch()

from torch import nn


class Thing(nn.Identity):
    pass


def run(*args):
    pathlib.Path({path!r}).touch()
"""


@pytest.fixture
def markers(tmp_path, monkeypatch):
    """A module that writes a marker file when it is imported, and a trusted one with its own marker."""
    paths = {}
    for name in (EVIL_MODULE, TRUSTED_MODULE):
        paths[name] = tmp_path / f"{name}.imported"
        (tmp_path / f"{name}.py").write_text(MARKER_SOURCE.format(path=str(paths[name])))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield paths
    for name in paths:
        sys.modules.pop(name, None)


HOSTILE_FILES = [
    f"lines:\n  - (3, 1), Input()\n  - (3, 1), {EVIL_MODULE}.Thing()\n",
    f"lines:\n  - (3, 1), Input()\n  - (3, 1), Conv2d(3, act={EVIL_MODULE}.run)\n",
    f"lines: !!python/object/apply:{EVIL_MODULE}.run []\n",
    f"lines:\n  - !!python/name:{EVIL_MODULE}.run ''\n",
    f"params:\n  x: !!python/module:{EVIL_MODULE}\nlines:\n  - (3, 1), Input()\n",
    f"lines:\n  - (3, 1), Input()\n  - (3, 1), Conv2d(3, act=builtins.__import__('{EVIL_MODULE}'))\n",
    f"lines:\n  - (3, 1), Input()\n  - (3, 1), Conv2d(3, act=importlib.import_module('{EVIL_MODULE}'))\n",
    f"lines:\n  - (3, 1), Input()\n  - (3, 1), Conv2d(3, act=neurlink._names.importlib.import_module('{EVIL_MODULE}'))\n",
    f"lines:\n  - (3, 1), Input()\n  - (3, 1), Conv2d(3, act=nn.modules.module.importlib.import_module('{EVIL_MODULE}'))\n",
    f"lines:\n  - (3, 1), Input()\n  - (3, 1), Conv2d(3, act=torch.hub.load('x', '{EVIL_MODULE}'))\n",
    f"network: {EVIL_MODULE}.Thing\nlines:\n  - (3, 1), Input()\n",
    f'{{"lines": ["(3, 1), Input()", "(3, 1), {EVIL_MODULE}.Thing()"]}}',
    # the trusted module is named first: it is not imported either, as a later name fails the rule
    f"lines:\n  - (3, 1), Input()\n  - (3, 1), {TRUSTED_MODULE}.Thing()\n  - (3, 1), {EVIL_MODULE}.Thing()\n",
]


@pytest.mark.parametrize("text", HOSTILE_FILES, ids=range(len(HOSTILE_FILES)))
def test_no_file_imports_or_runs_anything_outside_the_allow_list(markers, text, tmp_path):
    path = tmp_path / ("net.json" if text.startswith("{") else "net.yaml")
    path.write_text(text)
    with pytest.raises(DefinitionFileError) as caught:
        neurlink.from_file(path, trusted=[TRUSTED_MODULE])
    assert str(caught.value).startswith(f"{path}:")
    assert not any(marker.exists() for marker in markers.values()), str(caught.value)
    assert EVIL_MODULE not in sys.modules and TRUSTED_MODULE not in sys.modules


def test_the_marker_would_show_an_import(markers, tmp_path):
    """The control: a module the caller trusts is imported, and its marker appears."""
    net = from_text(f"lines:\n  - (3, 1), Input()\n  - (3, 1), {TRUSTED_MODULE}.Thing()\n", trusted=[TRUSTED_MODULE])
    assert markers[TRUSTED_MODULE].exists() and not markers[EVIL_MODULE].exists()
    assert type(net[1]).__name__ == "Thing"


# --- the command line ------------------------------------------------------------------------------------


def test_the_command_line_reads_files_with_parameters_and_exports_zoo_models(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "resnet18", "--to", "resnet18.yaml"]) == 0
    assert capsys.readouterr().out == "wrote resnet18.yaml: the 13 lines of resnet18\n"
    assert main(["summary", "resnet18.yaml", "--set", "num_classes=7", "--input", "1x3x32x32"]) == 0
    out = capsys.readouterr().out
    assert "(7, '(1, 1)')" in out and "Total params:         11,180,103" in out  # torchvision's resnet18(num_classes=7)
    assert main(["graph", "resnet18.yaml", "--no-shapes", "-o", "r.mmd"]) == 0
    assert "13 lines" in capsys.readouterr().out
    Path("broken.yaml").write_text("lines:\n  - (3, 1), Input()\n  - (8, 3), Conv2d(3)\n  - (8, 4), Conv2d(3)\n")
    assert main(["check", "resnet18.yaml", "broken.yaml"]) == 1
    captured = capsys.readouterr()
    assert "ok: resnet18.yaml builds: 13 lines, 11,689,512 parameters" in captured.out
    assert "neurlink: error: broken.yaml:4:5: line 2: (8, 4), Conv2d(3)" in captured.err
    assert main(["check", "resnet18.yaml", "--set", "num_clases=3"]) == 1
    assert "did you mean 'num_classes'?" in capsys.readouterr().err
    assert main(["check", "resnet18", "--set", "num_classes=3"]) == 1
    assert "a zoo builder takes its keywords as --arg" in capsys.readouterr().err
    assert main(["check", "resnet18.yaml", "--arg", "num_classes=3"]) == 1
    assert "its parameters are set with --set NAME=VALUE" in capsys.readouterr().err
    assert main(["export", "resnet18", "--to", "resnet18.txt"]) == 1
    assert "a definition file is .yaml, .yml or .json" in capsys.readouterr().err


# --- the documentation's examples are the example files -----------------------------------------------------


def test_the_documentation_shows_the_example_files_as_they_are():
    page = (ROOT / "docs" / "definition-files.md").read_text(encoding="utf-8")
    blocks = re.findall(r'```(?:yaml|python) title="(examples/definitions/[^"]+)"\n(.*?)```', page, re.S)
    assert sorted(name for name, _ in blocks) == [
        "examples/definitions/hrnet_w18_small.yaml",
        "examples/definitions/my_nerves.py",
        "examples/definitions/residual.yaml",
        "examples/definitions/resnet50.yaml",
        "examples/definitions/unet.yaml",
        "examples/definitions/yolo11.yaml",
    ]
    for name, text in blocks:
        assert text == (ROOT / name).read_text(encoding="utf-8"), name


def test_a_module_beside_a_trusted_file_never_shadows_one_the_reader_imports(tmp_path):
    """--trust puts the file's folder and the user's on sys.path; first there, a yaml.py beside the file
    was what the reader imported (it ran). Last, Python's and the installed packages come first. (The
    console script, as a user runs it: ``python -m`` puts the working folder first itself.)"""
    import subprocess

    folder, marker = tmp_path / "files", tmp_path / "ran"
    folder.mkdir()
    for name in ("yaml", "json", "shlex", "getpass", "hmac", "secrets"):
        (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write({name!r})\n")
    (folder / "my_nerves.py").write_text("")
    (folder / "net.yaml").write_text("lines:\n  - (3, 1), Input()\n  - (8, 2), Conv2d(3)\n")
    script = Path(sys.executable).parent / "neurlink"
    for command in ("check", "summary"):
        done = subprocess.run(
            [str(script), command, str(folder / "net.yaml"), "--trust", "my_nerves"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert not marker.exists(), f"{command} imported {marker.read_text()}.py from beside the file"


# --- messages (session 2026-12-06) -----------------------------------------------------------------------

_IN = "lines:\n  - (3, 1), Input()\n"
MESSAGES = [  # (id, text, kind, keywords, error, where, what the message says)
    pytest.param(
        _IN + "  - (8, 2), Conv2d_BN_ReLU(3, act=relu)\n", "yaml", {}, neurlink.NerveArgumentError, "3:5",
        r"act='relu' does not make a module: relu is the function torch\.nn\.functional\.relu, not a module class;"
        r" did you mean nn\.ReLU\?", id="function-for-a-class",
    ),
    pytest.param(
        _IN + "  - (8, 2), Conv2d_BN_ReLU(3, act=Silu)\n", "yaml", {}, DefinitionFileError, "3:35",
        r"unknown name 'Silu'; did you mean 'SiLU' or 'silu'", id="case-first-Silu",
    ),
    pytest.param(
        _IN + "  - (8, 2), Conv2d_BN_ReLU(3, act=SILU)\n", "yaml", {}, DefinitionFileError, "3:35",
        r"unknown name 'SILU'; did you mean 'SiLU' or 'silu'", id="case-first-SILU",
    ),
    pytest.param(
        _IN + "  - (8, 2), nn.Conv2D(3, 8, 3)\n", "yaml", {}, DefinitionFileError, "3:13",
        r"nn\.Conv2D: torch\.nn has no 'Conv2D'; did you mean 'Conv2d'", id="misspelt-torch-class",
    ),
    pytest.param(
        _IN + "  - [(8, 2), Conv2d(3)] * 2\n", "yaml", {}, DefinitionFileError, "3:5",
        r"a line repeated as Python writes it, \[line\] \* n: in a file the repeat follows the nerve.*\n"
        r"    allowed: - \(8, 2\), Conv2d\(3\) \* 2\n", id="python-repeat",
    ),
    pytest.param(
        _IN + "  - [((8, 2), nv.Conv2d(3))]*3  # three\n", "yaml", {}, DefinitionFileError, "3:5",
        r"allowed: - \(8, 2\), Conv2d\(3\) \* 3\n", id="python-repeat-of-a-tuple",
    ),
    pytest.param(
        _IN + "  - [(8, 2), Conv2d(3)]\n", "yaml", {}, DefinitionFileError, "3:5",
        r"read as a list: a line is written without Python's brackets\n    allowed: - \(8, 2\), Conv2d\(3\)\n",
        id="python-brackets",
    ),
    pytest.param(
        "params:\n  classes: 1:30\n" + _IN, "yaml", {}, DefinitionFileError, "2:12",
        r"'1:30' is a number in base 60 to YAML 1\.1 \(1:30 is 90\), but text to YAML 1\.2 and JSON\n"
        r"    allowed: '1:30' in quotes for the text, or the number in decimal \(90\)", id="base-60-int",
    ),
    pytest.param(
        _IN + "  - 1:30.5\n", "yaml", {}, DefinitionFileError, "3:5",
        r"'1:30\.5' is a number in base 60 .*\n.* the number in decimal \(90\.5\)", id="base-60-float-as-a-line",
    ),
    pytest.param(
        "params:\n  c: 017\n" + _IN, "yaml", {}, DefinitionFileError, "2:6",
        r"'017' is octal to YAML 1\.1 \(017 is 15\), but decimal to YAML 1\.2 \(017 is 17\)", id="octal",
    ),
    pytest.param(
        "params:\n  c: 0o17\n" + _IN, "yaml", {}, DefinitionFileError, "2:6",
        r"'0o17' is text to YAML 1\.1, which has no 0o ints, .*\n    allowed: the number in decimal \(15\)",
        id="0o-octal",
    ),
    pytest.param(
        "params:\n  lr: 1e-3\n" + _IN, "yaml", {}, DefinitionFileError, "2:7",
        r"'1e-3' is text to YAML 1\.1 \(its floats have a dot and a signed exponent\), but a number to YAML 1\.2,"
        r" JSON and Python\n    allowed: the number as YAML 1\.1 reads it \(1\.0e-3\)", id="exponent-without-a-dot",
    ),
    pytest.param(
        "params:\n  pretrained: yes\n" + _IN, "yaml", {}, DefinitionFileError, "2:15",
        r"'yes' is true to YAML 1\.1, but text to YAML 1\.2 and JSON\n    allowed: true or false", id="yes",
    ),
    pytest.param(
        "scales:\n  on: {width: 0.5}\n" + _IN, "yaml", {}, DefinitionFileError, "2:3",
        r"'on' is true to YAML 1\.1, but text .*\n    allowed: true or false, or 'on' in quotes", id="on-as-a-name",
    ),
    pytest.param(
        _IN + '  - (8, 2), Conv2d[-1, "c1"](3)\n  - (8, 2), Add[[-1, "c4"]]()\n  - (8, 2), Conv2d[-1, "c4"](3)\n',
        "yaml", {}, UnknownTagError, "4:5",
        r"no earlier line is tagged 'c4': it is the tag of line 3, after line 2 \(a line reads only the lines before"
        r" it\)\n    allowed: line 3 moved before line 2", id="tag-of-a-later-line",
    ),
    pytest.param(
        '{"lines": ["(3, 1), Input()", {"a": 1}]}', "json", {}, DefinitionFileError, "1:31",
        r'a line is a string, but this one is an object\n    allowed: a line in the notation as a JSON string:'
        r' "\(8, 2\), Conv2d\(3\)"', id="json-object-line",
    ),
    pytest.param(
        '{"lines": ["(3, 1), Input()",\n  ["(8, 2), Conv2d(3)"]]}', "json", {}, DefinitionFileError, "2:3",
        r"a line is a string, but this one is an array", id="json-array-line",
    ),
    pytest.param(
        '{"params": [1], "lines": ["(3, 1), Input()"]}', "json", {}, DefinitionFileError, "1:12",
        r'"params" is an object of names and defaults\n    allowed: "params": \{"num_classes": 10\}',
        id="json-params",
    ),
    pytest.param(
        '{"lines": "(3, 1), Input()"}', "json", {}, DefinitionFileError, "1:11",
        r'"lines" is an array of definition lines, strings', id="json-lines",
    ),
    pytest.param(
        '{"lines": ["(3, 1), Input()",]}', "json", {}, DefinitionFileError, "1:30",
        r"not valid JSON: expected a value\n    allowed: no comma after the last item", id="json-trailing-comma",
    ),
    pytest.param(
        "{'lines': []}", "json", {}, DefinitionFileError, "1:2",
        r"expected a key in double quotes\n    allowed: strings and keys in double quotes", id="json-single-quotes",
    ),
    pytest.param(
        '{"lines": [\n  // the input\n  "(3, 1), Input()"]}', "json", {}, DefinitionFileError, "2:3",
        r"allowed: no comments in JSON", id="json-comment",
    ),
    pytest.param(
        "params:\n  c: 8\n" + _IN, "yaml", {"c": "x"}, DefinitionFileError, "2:6",
        r"c='x' is a str, but the file's c is an int \(8\)\n    allowed: c= an int", id="an-int",
    ),
    pytest.param(
        "params:\n  c: [1, 2]\n" + _IN, "yaml", {}, DefinitionFileError, "2:6",
        r"the default of c is a list \[1, 2\]", id="a-list-default",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "kind", "keywords", "error", "where", "message"), MESSAGES)
def test_a_mistake_is_named_at_its_place_with_what_to_write(text, kind, keywords, error, where, message):
    with pytest.raises(error) as caught:
        from_text(text, kind, file=f"net.{kind}", device="meta", **keywords)
    shown = str(caught.value)
    assert isinstance(caught.value, DefinitionFileError)
    assert shown.startswith(f"net.{kind}:{where}: "), shown
    assert re.search(message, shown), shown
    if kind == "json":  # JSON's words, never YAML's
        assert "'- " not in shown and "quotes when it holds" not in shown, shown


def test_what_the_messages_suggest_builds():
    """The fix each message names is one: ReLU for relu, the repeat as a file writes it, a quoted base-60
    text (a string parameter), the line tagged before the line that reads it."""
    net = from_text(_IN + "  - (8, 2), Conv2d_BN_ReLU(3, act=ReLU)\n  - (8, 2), Conv2d(3) * 2\n", device="meta")
    assert [type(net[k]).__name__ for k in range(1, 4)] == ["Conv2d_BN_ReLU", "Conv2d", "Conv2d"]
    assert isinstance(net[1].act, torch.nn.ReLU)
    assert from_text("params:\n  at: '1:30'\n  on_: 'yes'\n" + _IN, device="meta") is not None
    lines = '  - (8, 2), Conv2d[-1, "c4"](3)\n  - (8, 2), Add[[-1, "c4"]]()\n'
    assert type(from_text(_IN + lines, device="meta")[2]).__name__ == "Add"


def test_pyyaml_reads_what_is_refused_otherwise_than_yaml_1_2_and_json():
    """The reference for the refusals: PyYAML's own reading of each text (YAML 1.2 and JSON read 1:30 and
    yes as text, 017 as 17 or not at all, 1e-3 as a number)."""
    assert yaml.safe_load("[1:30, 017, yes, off, 1e-3, 0o17]") == [90, 15, True, False, "1e-3", "0o17"]
    assert json.loads("[1e-3]") == [0.001]


def test_a_trusted_modules_misspelt_name_suggests_its_names(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "my_nerves", raising=False)
    text = _IN + "  - (256, 2), my_nerves.Residul()\n"
    with pytest.raises(
        DefinitionFileError,
        match=r"\Anet\.yaml:3:15: line 1: \(256, 2\), my_nerves\.Residul\(\)\n.*\n"
        r"    my_nerves\.Residul: my_nerves has no 'Residul'; did you mean 'Residual'\?\n"
        r"    allowed: a class or function of my_nerves: Residual\Z",
    ):
        from_text(text, file="net.yaml", trusted=["my_nerves"], device="meta")
    net = from_text(text.replace("Residul", "Residual"), trusted=["my_nerves"], device="meta")
    assert type(net[1]).__name__ == "Residual"


def test_a_tag_of_a_later_line_is_named_in_python_too():
    lines = [((3, 1), nv.Input()), ((8, 2), nv.Conv2d["c1"](3)), ((8, 2), nv.Conv2d[-1, "c1"](3))]
    with pytest.raises(UnknownTagError, match=r"no earlier line is tagged 'c1': it is the tag of line 2, after line 1"):
        nv.build(lines)
    with pytest.raises(UnknownTagError, match=r"no earlier line is tagged 'c1': it is this line's own tag"):
        nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d["c1", "c1"](3))])


def test_did_you_mean_puts_a_difference_of_case_first():
    from neurlink.errors import did_you_mean

    assert did_you_mean("Silu", ["elu", "glu", "silu", "SiLU"]) == "; did you mean 'SiLU' or 'silu' or 'glu'?"
    assert did_you_mean("relu", ["ReLU", "relu6", "rrelu"]).startswith("; did you mean 'ReLU'")
    assert did_you_mean("conv", ["conv1", "Conv2d"]) == "; did you mean 'conv1' or 'Conv2d'?"
    assert did_you_mean("xyz", ["abc"]) == ""


# --- a line's first call, the memory of a build, the size of a file (errors at the file's line) -------------


def test_a_first_call_that_finds_other_dims_than_a_line_declares_names_the_file_line():
    """The build cannot see what a plain torch module returns at a size (AdaptiveAvgPool2d(3) gives 3 x 3 at
    any size; the line declares half the input's): the first call finds it, and names the file's line."""
    text = "lines:\n  - (3, 1), Input()\n  - (8, 1), Conv2d(3)\n  - (8, 2), AdaptiveAvgPool2d(3)\n"
    net = from_text(text, file="net.yaml")
    for copy in (net, pickle.loads(pickle.dumps(net)), __import__("copy").deepcopy(net)):
        with pytest.raises(neurlink.errors.OutputError) as caught:
            copy(torch.zeros(1, 3, 8, 8))
        assert isinstance(caught.value, DefinitionFileError)
        assert str(caught.value).startswith(
            "net.yaml:4:5: line 2: (8, 2), AdaptiveAvgPool2d(3)\n"
            "    the line declares (8, 2), that is (N, 8, 4, 4) for this input, but its module returned (N, 8, 3, 3)"
        )
        again = pickle.loads(pickle.dumps(caught.value))  # the error keeps its place and both classes
        assert str(again) == str(caught.value) and isinstance(again, neurlink.errors.OutputError)
    built = nv.build([((3, 1), nv.Input()), ((8, 1), nv.Conv2d(3)), ((8, 2), torch.nn.AdaptiveAvgPool2d(3))])
    with pytest.raises(neurlink.errors.OutputError) as caught:  # a network built in Python: no file
        built(torch.zeros(1, 3, 8, 8))
    assert not isinstance(caught.value, DefinitionFileError) and str(caught.value).startswith("line 2: ((8, 2), Adap")


def test_a_first_call_error_in_a_repeated_line_names_the_repeat():
    text = "lines:\n  - (3, 1), Input()\n  - (3, 1), Upsample(scale_factor=2) * 2\n"
    with pytest.raises(DefinitionFileError, match=r"\A<definition>:3:5: line 1: \(3, 1\), Upsample\(scale_factor=2\)"):
        from_text(text)(torch.zeros(1, 3, 4, 4))
    with pytest.raises(DefinitionFileError, match=r"returned \(N, 3, 8, 8\) \(in repeat 1 of 2 of this line\)"):
        from_text(text)(torch.zeros(1, 3, 4, 4))


def test_an_error_a_line_raises_on_a_later_call_names_the_file_line_and_keeps_torch_s_error():
    text = "lines:\n  - (3, 1), Input()\n  - (8, 1), Conv2d(3)\n  - (8, 1), ReLU()\n"
    net = from_text(text, file="net.yaml")
    x = torch.zeros(1, 3, 4, 4)
    net(x)  # checked: later calls of this size are not

    def hook(module, inputs, output):  # (a hook leaves the tree as built: a patched forward would not)
        raise RuntimeError("boom")

    net[2].register_forward_hook(hook)
    with pytest.raises(neurlink.errors.ForwardError) as caught:
        net(x)
    assert isinstance(caught.value, DefinitionFileError) and isinstance(caught.value, RuntimeError)
    assert str(caught.value).startswith("net.yaml:4:5: line 2: (8, 1), ReLU()\n    RuntimeError: boom")
    assert type(caught.value.__cause__) is RuntimeError and str(caught.value.__cause__) == "boom"


HUGE = "lines:\n  - (100000, 1), Input()\n  - (100000, 1), Conv2d(7)\n  - (10, 1), Conv2d(1)\n"


def test_a_build_larger_than_the_memory_available_is_refused_before_anything_is_allocated():
    # 100,000 x 100,000 x 7 x 7 weights and 100,000 biases, float32: 1,960,000,400,000 bytes, 1.78 TiB
    with pytest.raises(DefinitionFileError) as caught:
        from_text(HUGE, file="huge.yaml")  # on the CPU, the default device
    assert re.fullmatch(
        r"huge\.yaml:3:5: line 1: \(100000, 1\), Conv2d\(7\)\n"
        r"    the network's parameters and buffers need 1\.8 TiB, but cpu has [0-9.,]+ [KMGT]?i?B available;"
        r" line 1 holds 1\.8 TiB of it\n"
        r"    allowed: a smaller network; device='meta' checks it and counts its parameters without memory;"
        r" from_file\(path, check_memory=False\) builds it anyway",
        str(caught.value),
    ), str(caught.value)
    counted = from_text(HUGE, device="meta")  # counted without memory
    assert sum(p.numel() for p in counted.parameters()) == 100000 * 100000 * 49 + 100000 + 10 * 100000 + 10


def test_the_memory_check_names_a_repeated_line_by_all_its_repeats_and_can_be_turned_off(monkeypatch):
    from neurlink.definition_files import memory, reading

    text = "lines:\n  - (3, 1), Input()\n  - (8, 1), Conv2d(1)\n  - (8, 1), Conv2d(3) * 3\n"
    monkeypatch.setattr(reading, "available_bytes", lambda device: 1000)
    # line 1: 8 * 3 + 8 weights and biases (128 B); lines 2 to 4: 3 * (8 * 8 * 9 + 8) float32 (7,008 B)
    with pytest.raises(DefinitionFileError) as caught:
        from_text(text, device="cpu")
    assert str(caught.value).splitlines()[:2] == [
        "<definition>:4:5: line 2: (8, 1), Conv2d(3) * 3",
        "    the network's parameters and buffers need 7.0 KiB, but cpu has 1000 B available; lines 2 to 4 (this"
        " line * 3) hold 6.8 KiB of it",
    ]
    net = from_text(text, device="cpu", check_memory=False)  # built anyway
    assert memory.tensor_bytes(net) == 7136 and {p.device.type for p in net.parameters()} == {"cpu"}
    with pytest.raises(DefinitionFileError, match="'check_memory' is a keyword of from_file"):
        from_text("params:\n  check_memory: 1\nlines:\n  - (3, 1), Input()\n")


def test_the_memory_check_reads_a_cuda_device_s_free_memory(monkeypatch):
    """Refused before anything is made on the device: this runs where there is no GPU, too."""
    from neurlink.definition_files import memory

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3000, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 2000)  # of which 500 B in use:
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 500)  # 1,500 B are free in torch's cache
    assert memory.available_bytes(torch.device("cuda")) == 4500
    text = "lines:\n  - (3, 1), Input()\n  - (64, 1), Conv2d(3)\n"  # (64 * 27 + 64) * 4 = 7,168 bytes
    with pytest.raises(DefinitionFileError, match=r"need 7\.0 KiB, but cuda:1 has 4\.4 KiB available; line 1 holds"):
        from_text(text, device="cuda:1")
    assert memory.available_bytes(torch.device("mps")) is None  # not known: not checked


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="reads Linux's /proc/meminfo")
def test_the_memory_available_on_the_cpu_is_what_linux_says():
    from neurlink.definition_files import memory

    total = int(re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text()).group(1)) * 1024
    assert 0 < memory.available_bytes(torch.device("cpu")) <= total
    assert memory.shown_bytes(512) == "512 B" and memory.shown_bytes(1536) == "1.5 KiB"


def test_a_file_is_read_up_to_its_bound_whatever_size_it_reports(tmp_path, monkeypatch):
    """Files in /proc report a size of 0: the bound holds on what is read, not on what stat says."""
    import os

    from neurlink.definition_files.documents import MAX_BYTES

    path = tmp_path / "net.yaml"
    path.write_text("lines:\n  - (3, 1), Input()\n" + "#" * MAX_BYTES)  # a valid file, all but a comment
    real = Path.stat

    def procfs_like(self, *args, **kwargs):
        found = real(self, *args, **kwargs)
        return os.stat_result((*found[:6], 0, *found[7:]))

    monkeypatch.setattr(Path, "stat", procfs_like)
    assert path.stat().st_size == 0
    too_large = r"net\.yaml: more than 4,194,304 bytes is too large for a definition"
    with pytest.raises(DefinitionFileError, match=too_large):
        neurlink.from_file(path)
    path.write_bytes(b"lines:\r\n  - (3, 1), Input()\r\n  - (8, 2), Conv2d(3)\r\n  - (8, 3), Conv2d(3)\r\n")  # as text
    with pytest.raises(DimsError, match=r"\A[^\r]*net\.yaml:4:5: line 2: \(8, 3\), Conv2d\(3\)\n    ratio 2 -> 3"):
        neurlink.from_file(path)


# --- new-user findings (session 2026-12-06) ---------------------------------------------------------------

PYTHON_FORMS = [  # a line pasted from Python's list of lines: (the file, kind, where, what it says, Python's lines)
    pytest.param(
        '{"lines": ["(3, 1), Input()", "[((16, 2), nv.Conv2d(3))] * 2"]}',
        "json",
        "1:32",
        r"a line repeated as Python writes it, \[line\] \* n: in a file the repeat follows the nerve, without the"
        r" brackets, and its nerve without nv\. .*\n    allowed: \"\(16, 2\), Conv2d\(3\) \* 2\"\Z",
        [((16, 2), nv.Conv2d(3))] * 2,
        id="json-repeat-nv",
    ),
    pytest.param(
        _IN + '  - "[((8, 2), Conv2d(3))] * 2"\n',
        "yaml",
        "3:6",
        r"a line repeated as Python writes it.*without the brackets\n    allowed: - \(8, 2\), Conv2d\(3\) \* 2\Z",
        [((8, 2), nv.Conv2d(3))] * 2,
        id="quoted-yaml-repeat",
    ),
    pytest.param(
        _IN + "  - ((8, 2), Conv2d(3)),\n",
        "yaml",
        "3:5",
        r"a line as an item of a Python list, \(line\),: a file writes it without the outer parentheses and the"
        r" comma\n    allowed: - \(8, 2\), Conv2d\(3\)\Z",
        [((8, 2), nv.Conv2d(3))],
        id="trailing-comma",
    ),
    pytest.param(
        '{"lines": ["(3, 1), Input()", "[(8, 2), Conv2d_BN_ReLU[-1, \\"a\\"](3)]"]}',
        "json",
        "1:31",  # (a string with escapes: at its opening quote)
        r"a line in Python's brackets, \[line\]: a file writes it without them\n"
        r'    allowed: "\(8, 2\), Conv2d_BN_ReLU\[-1, \\"a\\"\]\(3\)"\Z',
        [((8, 2), nv.Conv2d_BN_ReLU[-1, "a"](3))],
        id="json-brackets-escaped",
    ),
]


@pytest.mark.parametrize(("text", "kind", "where", "message", "python"), PYTHON_FORMS)
def test_a_line_pasted_from_python_names_the_line_to_write(text, kind, where, message, python):
    with pytest.raises(DefinitionFileError) as caught:
        from_text(text, kind, file=f"net.{kind}", device="meta")
    shown = str(caught.value)
    assert shown.startswith(f"net.{kind}:{where}: line 1: "), shown
    assert re.search(message, shown, re.S), shown
    # the line it names builds what Python's list of lines builds
    written = caught.value.allowed
    line = json.loads(written) if kind == "json" else written.removeprefix("- ")
    fixed = from_text(_IN + f"  - '{line}'\n", device="meta")
    built = nv.build([((3, 1), nv.Input()), *python], device="meta")
    assert [e.written for e in fixed.lines] == [e.written for e in built.lines]


def test_to_file_into_a_missing_folder_names_the_folder_and_writes_nothing(tmp_path, monkeypatch):
    from neurlink import _files

    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3))])
    target = tmp_path / "out" / "nodir" / "net.yaml"
    with pytest.raises(DefinitionFileNotFoundError) as caught:
        net.to_file(target)
    assert isinstance(caught.value, FileNotFoundError)  # as torch.save's error is
    assert str(caught.value) == (
        f"{target}: the folder {str(target.parent)!r} does not exist: to_file writes into an existing folder and"
        f" makes none\n    allowed: the folder made first: Path({str(target.parent)!r}).mkdir(parents=True)"
    )
    assert not (tmp_path / "out").exists()
    (tmp_path / "plain").write_text("")
    with pytest.raises(DefinitionFileError, match=r"the folder '.*plain' is a file: to_file writes into an existing"):
        net.to_file(tmp_path / "plain" / "net.yaml")

    def refused(path, write):
        raise PermissionError(13, "Permission denied", str(path.with_name(".net.yaml.0123.tmp")))

    monkeypatch.setattr(_files, "replace_atomically", refused)
    with pytest.raises(DefinitionFileError) as caught:
        net.to_file(tmp_path / "net.yaml")
    assert str(caught.value) == f"{tmp_path / 'net.yaml'}: cannot be written: Permission denied"  # not the .tmp's name


INDENTATION = [  # (text, where, what allowed: says)
    pytest.param(
        "params:\nnum_classes: 10\n" + _IN,
        "2:1",
        r"unknown key 'num_classes'\n    allowed: neurlink, about, made_by, params, scales, scale, network, outputs,"
        r" lines; a parameter is indented under params:, as '  num_classes: \.\.\.' on the lines after it",
        id="parameter-at-column-1",
    ),
    pytest.param(
        "params:\n  num_classes: 10\n lines:\n  - (3, 1), Input()\n",
        "3:2",
        r"not valid YAML: .*\n    allowed: the file's keys \(lines:, params:, scales:, \.\.\.\) start at column 1",
        id="lines-indented",
    ),
    pytest.param(
        "params:\n  a: 1\n b: 2\n" + _IN,
        "3:2",
        r"not valid YAML: .*\n    allowed: the keys of a mapping start at one column: each parameter at the column"
        r" of the others under 'params:'",
        id="parameter-shallower",
    ),
    pytest.param(
        _IN + '  - "(16, 2)", Conv2d(3)\n',
        "3:14",
        r"not valid YAML: .*\n    allowed: YAML reads the text in quotes, then more text: quote the whole line, or"
        r" none of it: - \(16, 2\), Conv2d\(3\)\n",
        id="quoted-dims",
    ),
]


@pytest.mark.parametrize(("text", "where", "message"), INDENTATION)
def test_a_misplaced_indent_or_quote_says_where_keys_and_quotes_go(text, where, message):
    with pytest.raises(DefinitionFileError) as caught:
        from_text(text, file="net.yaml", device="meta")
    shown = str(caught.value)
    assert shown.startswith(f"net.yaml:{where}: "), shown
    assert re.search(message, shown), shown


def test_a_close_key_is_still_suggested_rather_than_params():
    with pytest.raises(DefinitionFileError) as caught:
        from_text("param:\n  a: 1\n" + _IN, device="meta")
    assert "did you mean 'params'?" in str(caught.value) and "indented under" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "kind", "keywords", "where", "message"),
    [
        (
            '{"params": {"drop": 1e400}, "lines": ["(3, 1), Input()"]}',
            "json",
            {},
            "1:21",
            r"the default of drop is inf \(written 1e400\)",
        ),
        ("params:\n  drop: .inf\n" + _IN, "yaml", {}, "2:9", r"the default of drop is inf \(written \.inf\)"),
        ("params:\n  drop: .nan\n" + _IN, "yaml", {}, "2:9", r"the default of drop is nan \(written \.nan\)"),
        ("params:\n  drop: 0.1\n" + _IN, "yaml", {"drop": float("nan")}, "2:9", r"drop=nan is not a finite number"),
        ("params:\n  drop: 0.1\n" + _IN, "yaml", {"drop": float("-inf")}, "2:9", r"drop=-inf is not a finite number"),
        (
            "params:\n  drop: 0.1\nscales:\n  s: {params: {drop: .inf}}\n" + _IN,
            "yaml",
            {},
            "4:22",
            r"scale 's' sets drop to inf: a parameter is a finite number",
        ),
    ],
)
def test_a_parameter_that_is_not_finite_is_refused_at_its_declaration(text, kind, keywords, where, message):
    with pytest.raises(DefinitionFileError, match=rf"\Anet\.{kind}:{where}: {message}"):
        from_text(text, kind, file=f"net.{kind}", device="meta", **keywords)


def test_a_parameter_that_is_not_finite_is_refused_by_from_file(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("params:\n  drop: 0.1\n" + _IN + "  - (8, 2), Dropout(drop)\n")
    with pytest.raises(DefinitionFileError, match=r"net\.yaml:2:9: drop=nan is not a finite number: a parameter is a"):
        neurlink.from_file(path, drop=float("nan"))
    assert neurlink.from_file(path, drop=0.5, device="meta")[1].p == 0.5


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_file_starting_with_a_byte_order_mark_is_read(tmp_path, suffix):
    path = tmp_path / f"net{suffix}"
    text = (
        '{"lines": ["(3, 1), Input()", "(8, 2), Conv2d(3)"]}' if suffix == ".json" else _IN + "  - (8, 2), Conv2d(3)\n"
    )
    path.write_bytes(text.encode("utf-8-sig"))
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    net = neurlink.from_file(path, device="meta")
    assert [e.written for e in net.lines] == ["((3, 1), Input())", "((8, 2), Conv2d(3))"]


def test_a_misspelt_parameter_suggests_the_file_s_parameters():
    text = "params:\n  width: 16\n" + _IN + "  - (widht, 2), Conv2d_BN_ReLU(3)\n"
    with pytest.raises(
        DefinitionFileError,
        match=r"\Anet\.yaml:5:6: line 1: .*\n.*\n    unknown name 'widht'; did you mean 'width'\?\n",  # not swin_t's
    ):
        from_text(text, file="net.yaml", device="meta")
    with pytest.raises(
        DefinitionFileError, match=r"unknown name 'Silu'; did you mean 'SiLU' or 'silu'"
    ):  # no parameter
        from_text(text.replace("widht", "width").replace("(3)", "(3, act=Silu)"), file="net.yaml", device="meta")


def test_an_unknown_network_class_lists_the_network_classes():
    with pytest.raises(
        DefinitionFileError,
        match=r"\Anet\.yaml:1:10: unknown Network class 'Segmenter'\n    allowed: a subclass of neurlink\.Network"
        r" \(Network, AuxLogitsNetwork, Detector\), or one of yours by its import path",
    ):
        from_text("network: Segmenter\n" + _IN, file="net.yaml", device="meta")
    with pytest.raises(DefinitionFileError, match=r"unknown Network class 'Detectr'; did you mean 'Detector'\?"):
        from_text("network: Detectr\n" + _IN, file="net.yaml", device="meta")
    with pytest.raises(
        DefinitionFileError, match=r"Conv2d is the class torch\.nn\.modules\.conv\.Conv2d, not a Network"
    ):
        from_text("network: Conv2d\n" + _IN, file="net.yaml", device="meta")


def test_a_lone_string_selector_tagged_nowhere_suggests_tagging_the_line():
    text = _IN + '  - (8, 2), Conv2d_BN_ReLU["a"](3)\n'
    with pytest.raises(UnknownTagError) as caught:
        from_text(text, file="net.yaml", device="meta")
    assert isinstance(caught.value, DefinitionFileError)
    assert str(caught.value).startswith('net.yaml:3:28: line 1: (8, 2), Conv2d_BN_ReLU["a"](3)\n'), str(caught.value)
    assert caught.value.allowed.startswith("Conv2d_BN_ReLU[-1, \"a\"](3) tags this line 'a'")
    fixed = from_text(_IN + '  - (8, 2), Conv2d_BN_ReLU[-1, "a"](3)\n', device="meta")
    assert fixed.lines[1].tag == "a"
    as_value = _IN + '  - (8, 2), Conv2d(3, act=Conv2d_BN_ReLU["a"](3))\n'  # selects among its nerve's lines
    with pytest.raises(DefinitionFileError) as caught:
        from_text(as_value, device="meta")
    assert "nor any line of the file" not in str(caught.value)
    # a later line's tag, and a misspelt one, are the build's messages, which say so
    later = _IN + '  - (8, 2), Conv2d_BN_ReLU["a"](3)\n  - (8, 2), Conv2d[-1, "a"](3)\n'
    with pytest.raises(UnknownTagError, match=r"it is the tag of line 2, after line 1"):
        from_text(later, device="meta")
    close = _IN + '  - (8, 2), Conv2d[-1, "stem"](3)\n  - (8, 2), Add[["stm", -1]]()\n  - (8, 2), Conv2d["stm"](3)\n'
    with pytest.raises(UnknownTagError, match=r"no earlier line is tagged 'stm'; did you mean 'stem'\?"):
        from_text(close, device="meta")


def test_a_scale_asked_of_a_file_without_scales_and_a_quoted_width_say_what_is_allowed():
    with pytest.raises(
        DefinitionFileError,
        match=r"scale='n': the file declares no scales:\n    allowed: no scale \(the lines as written\), or a file"
        r" that declares its scales: scales: \{n: \{width: 0\.25, depth: 0\.34\}\}",
    ):
        from_text(_IN, device="meta", scale="n")
    with pytest.raises(DefinitionFileError, match=r"scale: chooses one .*\n    allowed: scales declared beside it"):
        from_text("scale: n\n" + _IN, device="meta")
    with pytest.raises(
        DefinitionFileError,
        match=r"\Anet\.yaml:2:14: width: '0\.5' is not a positive number up to 1,048,576\n"
        r"    allowed: a positive number written without quotes: width: 0\.5\n",
    ):
        from_text('scales:\n  a: {width: "0.5"}\n' + _IN, file="net.yaml", device="meta")


def test_from_file_of_a_checkpoint_folder_suggests_from_pretrained(tmp_path):
    folder = tmp_path / "ck"
    nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3))]).save_pretrained(folder)
    with pytest.raises(
        DefinitionFileError,
        match=rf"\A{re.escape(str(folder))}: is a folder holding config\.json, a checkpoint, not a definition file\n"
        rf"    allowed: neurlink\.from_pretrained\({re.escape(repr(str(folder)))}\) loads a checkpoint",
    ):
        neurlink.from_file(folder)
    assert len(neurlink.from_pretrained(folder).lines) == 2


def test_a_double_quote_inside_a_json_line_says_to_use_single_quotes_or_escape_it():
    text = '{"lines": ["(3, 1), Input()", "(16, "(1, 1)"), AvgPool2d()"]}'
    with pytest.raises(
        DefinitionFileError,
        match=r"\Anet\.json:1:38: not valid JSON: expected ','\n    allowed: a \" inside a string ends it: quotes"
        r" inside a line are single quotes, or escaped as \\\"",
    ):
        from_text(text, "json", file="net.json", device="meta")
    for fixed in ("(16, '(1, 1)'), AvgPool2d()", '(16, \\"(1, 1)\\"), AvgPool2d()'):
        net = from_text('{"lines": ["(16, 1), Input()", "' + fixed + '"]}', "json", device="meta")
        assert net.lines[1].dims[0].shape.is_absolute
