"""Checkpoints that carry their network: save_pretrained / from_pretrained, weights by name, the Hub.

Round trips are bit-exact; configs are read as an attacker would write them.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import pickle
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import neurlink
import neurlink.nerves as nv
from neurlink import CheckpointError, NeurlinkError, PretrainedError, _names, nn
from neurlink.lines import NerveDef
from neurlink.shapes import Dims

USER_MODULE = "neurlink_test_user_nerves"
USER_SOURCE = '''
import neurlink.nerves as nv
from torch import nn


def leaky():
    return nn.LeakyReLU(0.1)


class Twice(nv.Nerve):
    """``block`` twice, through ``hidden`` dims: a nested nerve definition and dims as arguments."""

    def __init__(self, block, hidden, scale=1):
        super().__init__()
        self.scale = float(scale)
        self.add([(hidden, block), (self.target_dims[0], block)])


class Keeps(nv.Nerve):
    """Keeps any value it is given, and passes its input on."""

    def __init__(self, value=None):
        super().__init__()
        self.value = value

    def forward(self, x):
        return x
'''


@pytest.fixture
def user_nerves(tmp_path, monkeypatch):
    (tmp_path / f"{USER_MODULE}.py").write_text(USER_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(USER_MODULE)
    yield module
    sys.modules.pop(USER_MODULE, None)


def _equal(a, b) -> bool:
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return torch.equal(a, b)


def _round_trip(net, directory, x, **keywords):
    net.eval()
    net.save_pretrained(directory)
    again = neurlink.from_pretrained(directory, **keywords)
    with torch.no_grad():
        assert _equal(again(x), net(x))
    assert not again.training
    return again


# --- the zoo: builder name and keywords -----------------------------------------------------------


@pytest.mark.parametrize(
    "name, size",
    [
        ("resnet18", 32),
        ("hrnet_w18_small", 64),
        ("mobilenet_v3_small", 32),
        ("efficientnet_b0", 32),
        ("convnext_tiny", 32),
        ("lraspp_mobilenet_v3_large", 33),
        ("unet_resnet18", 37),
    ],
)
def test_every_zoo_family_round_trips_bit_exactly(tmp_path, name, size):
    torch.manual_seed(0)
    net = neurlink.create_model(name, num_classes=5)
    with torch.no_grad():  # batch norm statistics that are not the defaults
        net.train()(torch.randn(2, 3, size, size))
    again = _round_trip(net, tmp_path, torch.randn(2, 3, size, size))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == {"name": name, "keywords": {"num_classes": 5}}
    assert config["format"] == "neurlink" and config["format_version"] == 2
    assert config["neurlink_version"] == neurlink.__version__
    assert isinstance(again, neurlink.Network)


def test_zoo_keywords_are_data_too(tmp_path):
    net = neurlink.resnet18(10, act=nn.SiLU, norm=functools.partial(nn.GroupNorm, 8))
    _round_trip(net, tmp_path, torch.randn(1, 3, 32, 32))
    keywords = json.loads((tmp_path / "config.json").read_text())["model"]["keywords"]
    assert keywords == {
        "num_classes": 10,
        "act": {"object": "torch.nn:SiLU"},
        "norm": {"partial": {"func": {"object": "torch.nn:GroupNorm"}, "args": [8]}},
    }


# --- any definition: its lines ----------------------------------------------------------------


def _every_kind_of_line(user) -> list:
    bn = functools.partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
    return [
        ((3, 1), nv.Input["image"](dtype=torch.float32)),
        ((16, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3, act=nn.SiLU, norm=bn)),
        [((16, 2), nv.Conv2d_BN_ReLU(3, act=functools.partial(nn.LeakyReLU, 0.2)))] * 2,  # nested list
        ((16, 2), nn.LeakyReLU(0.1)),  # a plain module line (not in place: line 5 reads line 3 too)
        ((48, 2), nv.Concat["stem":4]()),  # a slice bounded by a tag
        ((32, 4), user.Twice(nv.Conv2d_BN_ReLU(3, act=user.leaky), Dims(24, 4), scale=Fraction(1, 3))),
        ((32, 4), nv.SkipConnect2d[[-2, -1]](1, norm=nn.BatchNorm2d)),
        ((16, (2, 2)), nv.ConvTransposed2d(4)),  # a tuple ratio
        ((32, 8.0), nv.Conv2d_BN_ReLU[-2, "deep"](3)),  # a float ratio
        ((32, 4), (32, 8), nv.Bundle[[-3, "deep"], "pair"]()),  # a multi-output line
        ((32, Fraction(4)), nv.Interpolate[nv.output("pair", 1)]("nearest")),
        ((64, 4), nv.Concat[[nv.output("pair", 0), -1]]()),
        ((64, "(1, 1)"), nv.AvgPool2d()),  # an absolute shape
        ((64, "(1, 1)"), nn.Dropout(0.1)),
        ((10, "()"), nv.Linear()),  # a vector line
        ((10, "()"), nn.Rearrange("b c -> b c")),
    ]


def test_a_definition_of_every_kind_round_trips_with_a_trusted_user_nerve(tmp_path, user_nerves):
    torch.manual_seed(0)
    net = nv.build(_every_kind_of_line(user_nerves), outputs=["deep", "pair", -1])
    with torch.no_grad():
        net.train()(torch.randn(2, 3, 32, 32))
    again = _round_trip(net, tmp_path, torch.randn(2, 3, 32, 32), trusted=[USER_MODULE])
    assert [entry.written for entry in again.lines] == [entry.written for entry in net.lines]
    lines = json.loads((tmp_path / "config.json").read_text())["lines"]
    assert lines[6]["nerve"]["class"] == f"{USER_MODULE}:Twice"
    assert lines[4] == {
        "dims": [[16, 2]],
        "module": {"class": "torch.nn:LeakyReLU", "kwargs": {"negative_slope": 0.1, "inplace": False}},
    }
    assert lines[11]["nerve"]["selector"] == {"output": ["pair", 1]}
    assert lines[6]["nerve"]["kwargs"]["scale"] == {"fraction": [1, 3]}
    assert lines[6]["nerve"]["args"][1] == {"dims": [24, 4]}
    assert lines[2]["nerve"]["kwargs"]["act"] == {"partial": {"func": {"object": "torch.nn:LeakyReLU"}, "args": [0.2]}}


def test_a_user_module_that_is_not_trusted_is_not_imported(tmp_path, user_nerves):
    nv.build(_every_kind_of_line(user_nerves)).save_pretrained(tmp_path)
    del sys.modules[USER_MODULE]
    with pytest.raises(PretrainedError, match=rf"names module '{USER_MODULE}', which is not trusted") as caught:
        neurlink.from_pretrained(tmp_path)
    assert f"trusted=['{USER_MODULE}']" in str(caught.value)
    assert str(tmp_path) in str(caught.value)
    assert USER_MODULE not in sys.modules
    neurlink.from_pretrained(tmp_path, trusted=USER_MODULE)  # a single name is a list of one
    assert USER_MODULE in sys.modules


def test_copies_of_a_network_save_too(tmp_path):
    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3, act=nn.GELU))])
    for k, copied in enumerate([copy.deepcopy(net), pickle.loads(pickle.dumps(net))]):
        _round_trip(copied, tmp_path / str(k), torch.randn(1, 3, 8, 8))


def test_half_precision_is_kept(tmp_path):
    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3))]).to(torch.float64)
    again = _round_trip(net, tmp_path, torch.randn(1, 3, 8, 8, dtype=torch.float64))
    assert next(again.parameters()).dtype == torch.float64


# --- what cannot be written as data ---------------------------------------------------------


class _Local(nn.Module):
    def __init__(self):
        super().__init__()
        self.lookup = {"anything": object()}

    def forward(self, x):
        return x


def _local_factory():
    class Inner(nn.ReLU):
        pass

    return Inner


CANNOT_BE_WRITTEN = [
    pytest.param(
        nv.Conv2d_BN_ReLU(3, act=lambda: nn.ReLU()),
        r"line 1: .*\n    act=<function .*<lambda>.* cannot be written as data: a lambda has no import path",
        id="lambda",
    ),
    pytest.param(
        nn.Sequential(nn.ReLU()),
        r"line 1: \(\(3, 1\), Sequential\(...\)\)\n    the module cannot be written as data: Sequential\(...\) has children",
        id="container-module",
    ),
    pytest.param(_Local(), r"line 1: .*\n    the module .*: _Local\(\) has state of its own", id="state-of-its-own"),
    pytest.param(
        nv.Conv2d_BN_ReLU(3, act=_local_factory()), r"act=.*Inner.* is defined inside a function", id="local-class"
    ),
    pytest.param(object(), r"value=<object object .*> cannot be written as data: an object is not data", id="object"),
    pytest.param(torch.load, r"value=<function load .*torch.serialization.load.*may not name", id="torch.load"),
    pytest.param({1: 2}, r"value=\{1: 2\} cannot be written as data: a dict is written with string keys", id="dict"),
    pytest.param(torch.zeros(2), r"value=tensor.* a Tensor is not data", id="tensor"),
    pytest.param([[1, 2], (3, print)], r"value\[1\]\[1\]=<built-in function print>.* builtins", id="nested"),
]


@pytest.mark.parametrize("nerve, message", CANNOT_BE_WRITTEN)
def test_what_is_not_data_is_refused_before_anything_is_written(tmp_path, user_nerves, nerve, message):
    if not isinstance(nerve, (NerveDef, nn.Module)):
        nerve = user_nerves.Keeps(value=nerve)
    net = nv.build([((3, 1), nv.Input()), ((3, 1), nerve)])
    with pytest.raises(PretrainedError, match=message):
        net.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_network_changed_after_its_build_is_refused(tmp_path):
    net = neurlink.resnet18(num_classes=10)
    net.get_submodule("12").conv = torch.nn.Conv2d(512, 3, 1)
    with pytest.raises(PretrainedError, match="no longer matches its definition") as info:
        net.save_pretrained(tmp_path)
    assert not (tmp_path / "config.json").exists()
    # the line the user wrote (here the zoo's), and the class as a user knows it
    assert str(info.value).startswith("line 12: ((10, '(1, 1)'), Conv2d(1))")
    assert "module '12.conv' is Conv2d, the definition makes Conv2dOnPoints (an nn.Conv2d)" in str(info.value)


def test_a_pickled_network_with_a_lambda_still_pickles_but_does_not_save(tmp_path):
    def act():
        return nn.ReLU()

    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU(3, act=act))])
    with pytest.raises(AttributeError):  # pickle cannot write a local function anyway
        pickle.dumps(act)
    with pytest.raises(PretrainedError, match="line 1: .*\n    act=<function .*act.* is defined inside a function"):
        net.save_pretrained(tmp_path)
    copied = pickle.loads(pickle.dumps(net))  # pickles as before: without the definition it cannot write
    with pytest.raises(PretrainedError, match="this Network keeps no definition to write"):
        copied.save_pretrained(tmp_path)


# --- hostile configs ------------------------------------------------------------------------


def _config(lines=None, **top):
    config = {"format": "neurlink", "format_version": 1, "neurlink_version": "0.3.0", "dtype": "float32"}
    config["lines"] = lines if lines is not None else [{"dims": [[3, 1]], "nerve": {"class": "neurlink.nerves:Input"}}]
    config.update(top)
    return config


def _line(nerve_class="neurlink.nerves:Conv2d", dims=((8, 2),), **nerve):
    return {"dims": [list(d) for d in dims], "nerve": {"class": nerve_class, **nerve}}


def _with(*lines, **top):
    return _config([{"dims": [[3, 1]], "nerve": {"class": "neurlink.nerves:Input"}}, *lines], **top)


def _write(directory: Path, config, weights: dict | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = config if isinstance(config, str) else json.dumps(config)
    (directory / "config.json").write_text(text)
    save_file(weights or {}, str(directory / "model.safetensors"))
    return directory


def _replace_weights(directory: Path, tensors: dict) -> None:
    """Other tensors under the same save's id (as a tool editing the weights of one save would write them)."""
    weights_id = json.loads((directory / "config.json").read_text())["weights_id"]
    save_file(tensors, str(directory / "model.safetensors"), metadata={"neurlink_weights_id": weights_id})


HOSTILE = [
    ("os:system", r"names module 'os', which is not trusted"),
    ("neurlink_test_evil_module:Thing", r"names module 'neurlink_test_evil_module', which is not trusted"),
    ("torch:__builtins__", r"private or dunder part"),
    ("torch:_C._nn", r"private or dunder part"),
    ("torch.__builtins__:eval", r"private or dunder part"),
    ("torch:os.system", r"reaches the builtin_function_or_method posix.system, which a definition may not name"),
    ("torch:load", r"reaches the function torch.serialization.load"),
    ("torch:hub.load", r"reaches the function torch.hub.load"),
    ("torch.nn.functional:torch.load", r"reaches the function torch.serialization.load"),
    ("torch:nn", r"reaches the module torch.nn"),
    ("torch.nn", r"'torch.nn' is malformed"),
    ("torch.nn:ReLU:x", r"is malformed"),
    ("torch..nn:ReLU", r"is malformed"),
    ("torch.nn:ReLU ", r"is malformed"),
    ("tоrch.nn:ReLU", r"is malformed"),  # a Cyrillic o
    ("torch.nn:" + "A" * 600, r"is malformed"),
    ("torch.nn:ReLU", r"lines\[1\].nerve.class: 'torch.nn:ReLU' is not a nerve class"),
    (
        "torch.nonexistent_module:X",
        r"names module 'torch.nonexistent_module', which torch and neurlink do not load themselves",
    ),
    ("neurlink.nerves:NoSuchNerve", r"has no attribute path 'NoSuchNerve'"),
]


@pytest.mark.parametrize("name, message", HOSTILE, ids=[name[:40] for name, _ in HOSTILE])
def test_names_in_a_config_are_checked_before_anything_is_imported(tmp_path, name, message):
    before = set(sys.modules)
    with pytest.raises(PretrainedError, match=message):
        neurlink.from_pretrained(_write(tmp_path, _with(_line(name))))
    if "not trusted" in message or "private" in message or "do not load themselves" in message:
        assert set(sys.modules) == before


@pytest.mark.parametrize("module", ["torch.utils.tensorboard", "torch.utils.cpp_extension", "torch.utils.bottleneck"])
def test_a_torch_submodule_torch_has_not_loaded_is_not_imported(tmp_path, module):
    """Importing it would run its code (and load third-party packages): refused before any import."""
    if module in sys.modules:
        pytest.skip(f"{module} was imported by an earlier test")
    with pytest.raises(PretrainedError, match="which torch and neurlink do not load themselves"):
        neurlink.from_pretrained(_write(tmp_path, _with(_line(f"{module}:Anything"))))
    assert module not in sys.modules


def test_a_name_through_a_lazy_attribute_imports_nothing(tmp_path):
    """``torch:onnx.ONNXProgram`` passes the module rule (``torch``), but reading ``torch.onnx`` through
    torch's ``__getattr__`` would import it (27 modules) before the value is refused: attributes are
    read as stored, so nothing is imported by any spelling. In a fresh process, where nothing else did."""
    names = ["torch:onnx.ONNXProgram", "torch:ao.pruning.BaseSparsifier", "torch:utils.tensorboard.SummaryWriter"]
    for k, name in enumerate(names):
        _write(tmp_path / str(k), _with(_line(name)))
    _write(tmp_path / "warm", _with(_line("neurlink.nerves:NoSuchNerve")))  # what loading itself imports
    script = textwrap.dedent(
        f"""
        import sys, neurlink
        lazy = [m for m in ("torch.onnx", "torch.ao.pruning", "torch.utils.tensorboard") if m in sys.modules]
        assert not lazy, f"imported by neurlink itself: {{lazy}}"
        try:
            neurlink.from_pretrained(r"{tmp_path}/warm")
        except neurlink.PretrainedError:
            pass
        before = set(sys.modules)
        for k in range({len(names)}):
            try:
                neurlink.from_pretrained(r"{tmp_path}/" + str(k))
            except neurlink.PretrainedError as error:
                assert "is not loaded, and a definition loads none" in str(error), error
            else:
                raise AssertionError("loaded")
        assert set(sys.modules) == before, sorted(set(sys.modules) - before)[:5]
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_modules_in_a_config_are_made_on_the_meta_device_first(tmp_path):
    """A 4-terabyte Linear written in a config: its shapes are checked before any memory is spent."""
    config = {
        "format": "neurlink",
        "format_version": 1,
        "dtype": "float32",
        "lines": [
            {"dims": [[3, 1]], "nerve": {"class": "neurlink.nerves:Input"}},
            {"dims": [[3, 1]], "module": {"class": "torch.nn:Linear", "args": [1_000_000, 1_000_000]}},
        ],
    }
    with pytest.raises(CheckpointError, match="does not fit"):
        neurlink.from_pretrained(_write(tmp_path, config), device="meta")
    with pytest.raises(CheckpointError, match="does not fit"):
        neurlink.from_pretrained(_write(tmp_path, config))


def test_a_saved_zoo_model_never_downloads_weights(tmp_path):
    config = {
        "format": "neurlink",
        "format_version": 1,
        "dtype": "float32",
        "model": {"name": "resnet18", "keywords": {"weights": "DEFAULT"}},
    }
    with pytest.raises(
        PretrainedError, match="model.keywords.weights: a saved model takes its weights from its own file"
    ):
        neurlink.from_pretrained(_write(tmp_path, config))


def test_weights_of_another_dtype_are_not_cast_silently(tmp_path):
    net = nv.build([((3, 1), nv.Input()), ((4, 1), nv.Conv2d(1))])
    net.save_pretrained(tmp_path)
    _replace_weights(tmp_path, {key: value.to(torch.int8) for key, value in net.state_dict().items()})
    with pytest.raises(
        CheckpointError, match=r"tensor '1.conv.(weight|bias)' is torch.int8, but the definition's is torch.float32"
    ):
        neurlink.from_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "dtype": [1]}))
    with pytest.raises(PretrainedError, match=r"dtype \[1\] is not a floating-point torch dtype"):
        neurlink.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "value, message",
    [
        ({"object": "os:system"}, r"lines\[1\].nerve.kwargs.act.object: 'os:system' names module 'os'"),
        ({"partial": {"func": {"object": "torch:load"}}}, r"kwargs.act.partial.func.object: 'torch:load' reaches"),
        ({"module": {"class": "neurlink.nerves:Conv2d"}}, r"is not a module class \(a nerve is written as 'nerve'\)"),
        ({"eval": "__import__('os')"}, r"unknown value kind 'eval'"),
        ({"tuple": [1], "list": [2]}, r"expected a value, got an object with keys 'tuple', 'list'"),
        ({"float": "1e999"}, r"'1e999' is not 'inf', '-inf' or 'nan'"),
        ({"fraction": [1, 0]}, r"a fraction with denominator 0"),
        ({"dtype": "FloatTensor"}, r"'FloatTensor' is not a torch dtype"),
        ({"slice": [1, 2]}, r"expected an array of 3, got 2 items"),
        ({"nerve": {"class": "neurlink.nerves:Conv2d", "code": "x"}}, r"unknown key 'code'"),
        ({"partial": {"func": {"object": "torch.nn:ReLU"}, "kwargs": [1]}}, r"partial.kwargs: expected an object"),
        (functools.reduce(lambda inner, _: [inner], range(100), 1), r"values nest deeper than 64 levels"),
        ({"object": 12}, r"12 is not a name"),
    ],
    ids=lambda value: json.dumps(value)[:30] if not isinstance(value, str) else None,
)
def test_hostile_values(tmp_path, value, message):
    before = set(sys.modules)
    with pytest.raises(PretrainedError, match=message):
        neurlink.from_pretrained(_write(tmp_path, _with(_line(kwargs={"act": value}, args=[3]))))
    assert "os" in before or "os" not in sys.modules


HOSTILE_CONFIGS = [
    pytest.param("{", r"not valid JSON", id="truncated-json"),
    pytest.param("[]", r"a config is a JSON object, not a list", id="array"),
    pytest.param('{"format": NaN}', r"not valid JSON: NaN is not JSON", id="nan"),
    pytest.param('{"format": "neurlink", "format": "x"}', r"the key 'format' is given twice", id="duplicate-key"),
    pytest.param("[" * 100_000 + "]" * 100_000, r"not valid JSON", id="deep-json"),
    pytest.param('{"lines": ' + "9" * 5000 + "}", r"not valid JSON", id="huge-int"),
    pytest.param(_config(extra=1), r"unknown key 'extra'", id="unknown-key"),
    pytest.param(_config(format="pickle"), r"not a neurlink config", id="foreign-format"),
    pytest.param(_config(format_version=3), r"format version 3 is not one this neurlink reads", id="version-3"),
    pytest.param(_config(format_version="1"), r"format version '1'", id="version-string"),
    pytest.param(_config(format_version=True), r"format version True", id="version-bool"),
    pytest.param(_config(dtype="int64"), r"dtype 'int64' is not a floating-point torch dtype", id="dtype"),
    pytest.param(
        _config(model={"name": "resnet18"}),
        r"one of 'model' .*, 'lines' .* and 'definition_file'",
        id="model-and-lines",
    ),
    pytest.param(_config(lines={"0": 1}), r"lines: expected an array, got an object", id="lines-object"),
    pytest.param(_with({"dims": [[3, 1]]}), r"lines\[1\]: a line has one of 'nerve' and 'module'", id="no-nerve"),
    pytest.param(_with(_line(dims=[["8", 2]])), r"lines\[1\].dims\[0\]\[0\]: expected an integer", id="str-channels"),
    pytest.param(_with(_line(dims=[[8, 2, 3]])), r"expected an array of 2, got 3 items", id="dims-of-3"),
    pytest.param(_with(_line(args="3")), r"lines\[1\].nerve.args: expected an array", id="args-string"),
    pytest.param(_with(_line(tag=7)), r"a tag is a string", id="tag-int"),
    pytest.param(_with(_line(args=[3], selector="nowhere")), r"no earlier line is tagged 'nowhere'", id="bad-tag"),
    pytest.param(
        _with(_line(dims=[[10**30, 2]], args=[3])), r"dims\[0\]\[0\]: an integer of 31 digits", id="huge-channels"
    ),
    pytest.param(_with(_line(args=[10**30])), r"args\[0\]: an integer of 31 digits, larger than", id="huge-kernel"),
    pytest.param(_with(_line(args=[2**39])), r"the definition does not build", id="large-kernel"),
    pytest.param(_with(_line(dims=[[8, "((((((((1))))))))" * 50]], args=[3])), r"does not build", id="shape-code"),
    pytest.param(
        _with(_line(dims=[[8, "__import__('os').system('x')"]], args=[3])), r"not a literal shape", id="shape-import"
    ),
    pytest.param(_with(*[_line(args=[1], dims=[[1, 1]])] * 3, outputs={"eval": 1}), r"outputs", id="outputs"),
    pytest.param(
        _config(None, model={"name": "no_such_model"}) | {"lines": None},
        r"unknown key|one of 'model'",
        id="model-unknown",
    ),
]


@pytest.mark.parametrize("config, message", HOSTILE_CONFIGS)
def test_hostile_and_damaged_configs(tmp_path, config, message):
    with pytest.raises(PretrainedError, match=message) as caught:
        neurlink.from_pretrained(_write(tmp_path, config))
    assert str(tmp_path) in str(caught.value)


def _zoo_config(**model):
    config = _config(model=model)
    del config["lines"]
    return config


@pytest.mark.parametrize(
    "model, message",
    [
        ({"name": "no_such_model"}, r"model.name: 'no_such_model' is not a model of the zoo"),
        ({"name": ["resnet18"]}, r"model.name: \['resnet18'\] is not a model of the zoo"),
        ({"name": "resnet18", "keywords": {"num_classes": "ten"}}, r"the definition does not build"),
        ({"name": "resnet18", "keywords": {"no_such_keyword": 1}}, r"the definition does not build"),
        ({"name": "resnet18", "keywords": [1]}, r"model.keywords: expected an object"),
        ({"name": "resnet18", "weights": "DEFAULT"}, r"model: unknown key 'weights'"),
    ],
)
def test_hostile_zoo_configs(tmp_path, model, message):
    with pytest.raises(PretrainedError, match=message):
        neurlink.from_pretrained(_write(tmp_path, _zoo_config(**model)))


# --- damaged directories and weights --------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3)), ((4, 2), nv.Conv2d(1))])
    net.save_pretrained(tmp_path / "saved")
    return tmp_path / "saved"


def test_a_missing_directory_or_file(tmp_path, saved):
    with pytest.raises(PretrainedError, match=rf"{tmp_path / 'nowhere'}: no such directory"):
        neurlink.from_pretrained(tmp_path / "nowhere")
    (saved / "model.safetensors").unlink()
    with pytest.raises(PretrainedError, match=r"model.safetensors: no such file"):
        neurlink.from_pretrained(saved)
    (saved / "config.json").unlink()
    with pytest.raises(PretrainedError, match=r"config.json: no such file"):
        neurlink.from_pretrained(saved)
    with pytest.raises(PretrainedError, match=r"is not a path"):
        neurlink.from_pretrained(42)


def test_truncated_and_foreign_weights(saved):
    weights = saved / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 10])
    with pytest.raises(PretrainedError, match=rf"{weights}: not a readable safetensors file"):
        neurlink.from_pretrained(saved)
    torch.save({"1.conv.weight": torch.zeros(8, 3, 3, 3)}, weights)  # a pickle under the name
    with pytest.raises(PretrainedError, match=rf"{weights}: not a readable safetensors file"):
        neurlink.from_pretrained(saved)
    weights.write_bytes(b"")
    with pytest.raises(PretrainedError, match="not a readable safetensors file"):
        neurlink.from_pretrained(saved)


def test_weights_of_another_definition_name_each_line(saved):
    tensors = load_file(saved / "model.safetensors")
    tensors["1.conv.weight"] = torch.zeros(16, 3, 3, 3)
    tensors["9.extra"] = torch.zeros(1)
    del tensors["2.conv.bias"]
    _replace_weights(saved, tensors)
    with pytest.raises(CheckpointError) as caught:
        neurlink.from_pretrained(saved)
    message = str(caught.value)
    assert "model.safetensors does not fit" in message and "config.json" in message
    assert "line 1 ('stem'): ((8, 2), Conv2d_BN_ReLU[-1, 'stem'](3))" in message
    assert "conv.weight: the network has (8, 3, 3, 3), the state_dict (16, 3, 3, 3)" in message
    assert "line 2: ((4, 2), Conv2d(1))" in message and "missing: conv.bias (4,)" in message
    assert "unexpected: 9.extra (1,)" in message


def test_a_directory_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    net = nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3))])
    with pytest.raises(PretrainedError, match="exists and is not a directory"):
        net.save_pretrained(tmp_path / "file")
    with pytest.raises(PretrainedError, match="trusted: 3 is not a module name"):
        neurlink.from_pretrained(tmp_path, trusted=[3])
    with pytest.raises(PretrainedError, match=r"file: is a file, not a directory"):
        neurlink.from_pretrained(tmp_path / "file")


def test_a_local_path_that_is_not_there_is_not_looked_up_on_the_hub(tmp_path, monkeypatch):
    """checkpoints/run1 reads as a Hub id "user/repo"; beside a folder ./checkpoints it is a local path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    looked_up = []

    def from_hub(repo_id):
        looked_up.append(repo_id)
        raise PretrainedError("looked up")

    monkeypatch.setattr(neurlink.pretrained, "_from_hub", from_hub)
    with pytest.raises(neurlink.CheckpointNotFoundError, match=r"checkpoints/run1: no such directory"):
        neurlink.from_pretrained("checkpoints/run1")
    assert looked_up == []
    with pytest.raises(PretrainedError, match="looked up"):
        neurlink.from_pretrained("someone/run1")  # no such folder here: a Hub repository id
    assert looked_up == ["someone/run1"]


# --- published weights by name, through torchvision's cache -----------------------------------


@pytest.mark.parametrize(
    "name, weights",
    [
        ("resnet18", "IMAGENET1K_V1"),
        ("resnet50", "DEFAULT"),
        ("mobilenet_v3_small", "IMAGENET1K_V1"),
        ("efficientnet_b0", "DEFAULT"),
        ("convnext_tiny", "enum"),
    ],
)
def test_weights_by_name_come_from_torchvision_s_cache(tmp_path, monkeypatch, name, weights):
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    enum = torchvision.models.get_model_weights(name)
    chosen = enum.DEFAULT if weights in ("DEFAULT", "enum") else enum[weights]
    if weights == "enum":
        weights = chosen
    torch.manual_seed(0)
    random = torchvision.models.get_model(name, weights=None)
    for module in random.modules():  # batch norm statistics that are not the defaults
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(random.state_dict(), folder / os.path.basename(chosen.url))
    reference = torchvision.models.get_model(name, weights=weights).eval()
    net = neurlink.create_model(name, weights=weights).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(x).flatten(1), reference(x), rtol=1e-4, atol=1e-4)
    assert net._made_by[1] == {}  # the saved keywords leave the weights out: the safetensors carry them


def test_weights_by_a_name_there_is_not(tmp_path, monkeypatch):
    pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(NeurlinkError, match=r"weights='IMAGENET1K_V9' names no published weights of ResNet18_Weights"):
        neurlink.resnet18(weights="IMAGENET1K_V9")
    with pytest.raises(NeurlinkError, match=r"ResNet18_Weights.IMAGENET1K_V1 has 1000 classes, but num_classes=10"):
        neurlink.resnet18(num_classes=10, weights="DEFAULT")
    with pytest.raises(NeurlinkError, match=r"HRNet's published weights are timm's.*\n.*load_timm"):
        neurlink.hrnet_w18_small(weights="DEFAULT")


def test_builders_without_published_weights(tmp_path):
    from neurlink._registry import _BUILDERS
    from neurlink.models import register_model

    def tiny_ckpt_builder(channels=4):
        return nv.build([((3, 1), nv.Input()), ((channels, 2), nv.Conv2d(3))])

    def tiny_ckpt_weights(weights=None):
        return nv.build([((3, 1), nv.Input()), ((2, 2), nv.Conv2d(3))]), weights

    try:
        builder = register_model(tiny_ckpt_builder)
        with pytest.raises(NeurlinkError, match=r"tiny_ckpt_builder has no published weights to load by name"):
            builder(weights="x")
        net = neurlink.create_model("tiny_ckpt_builder", channels=6)
        _round_trip(net, tmp_path, torch.randn(1, 3, 8, 8))  # written as lines: a user's builder may not be there
        assert "lines" in json.loads((tmp_path / "config.json").read_text())
        assert register_model(tiny_ckpt_weights)(weights="mine")[1] == "mine"  # its own weights parameter
    finally:
        _BUILDERS.pop("tiny_ckpt_builder", None)
        _BUILDERS.pop("tiny_ckpt_weights", None)


# --- the Hugging Face Hub, offline, from a cache laid out by hand -----------------------------


def test_a_hub_repository_id_through_huggingface_hub_s_cache(tmp_path, saved):
    pytest.importorskip("huggingface_hub")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--someone--tiny-net"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).write_bytes((saved / name).read_bytes())
    script = textwrap.dedent(
        f"""
        import torch, neurlink
        net = neurlink.from_pretrained("someone/tiny-net")
        reference = neurlink.from_pretrained({str(saved)!r})
        x = torch.randn(1, 3, 16, 16)
        assert torch.equal(net(x), reference(x))
        try:
            neurlink.from_pretrained("someone/not-there")
        except neurlink.PretrainedError as error:
            print("refused:", error)
        """
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "refused: someone/not-there: no such directory, and the Hugging Face Hub gives no repository" in done.stdout


# --- the command line --------------------------------------------------------------------------


def test_the_command_line_takes_a_saved_directory(saved, capsys):
    from neurlink.tools.cli import main

    assert main(["summary", str(saved), "--input", "1x3x16x16"]) in (0, None)
    out = capsys.readouterr().out
    assert "Conv2d_BN_ReLU[-1, 'stem'](3)" in out and "(1, 8, 8, 8)" in out


def test_weights_by_name_without_cache_or_network_say_where_the_file_goes(tmp_path, monkeypatch):
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(NeurlinkError, match="is not in torch hub's cache and cannot be downloaded") as raised:
        neurlink.resnet18(weights="DEFAULT")
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in str(raised.value)


def test_the_command_line_trusts_a_module_beside_the_user(tmp_path):
    (tmp_path / "beside_nerves.py").write_text(
        "import neurlink.nerves as nv\n\n\nclass Twice(nv.Nerve):\n    def __init__(self):\n"
        "        super().__init__()\n\n    def forward(self, x):\n        return x * 2\n"
    )
    make = "import neurlink.nerves as nv, beside_nerves\nnv.build([((3, 1), nv.Input()), ((3, 1), beside_nerves.Twice())]).save_pretrained('saved')"
    subprocess.run([sys.executable, "-c", make], cwd=tmp_path, check=True)
    command = [str(Path(sys.executable).parent / "neurlink"), "summary", "saved", "--input", "1x3x8x8"]
    refused = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 1 and "allowed: --trust beside_nerves imports it" in refused.stderr
    trusted = subprocess.run([*command, "--trust", "beside_nerves"], cwd=tmp_path, capture_output=True, text=True)
    assert trusted.returncode == 0, trusted.stderr
    assert "Twice()" in trusted.stdout


def test_lines_written_with_the_zoos_norms_save_and_load(tmp_path):
    """``yolo_norm`` and ``basic_conv_norm`` are functions of neurlink.models that lines pass as ``norm=``:
    named in config.json, read back; a builder of the same package is still refused as a name."""
    from neurlink.models.googlenet import basic_conv_norm
    from neurlink.models.yolo_blocks import C2f, conv

    net = nv.build(
        [
            ((3, 1), nv.Input()),
            ((16, 2), conv(3)),
            ((16, 2), C2f(1, True)),
            ((8, 2), nv.Conv2d_BN_ReLU(1, norm=basic_conv_norm)),
        ]
    ).eval()
    net.save_pretrained(tmp_path)
    config = (tmp_path / "config.json").read_text()
    assert "neurlink.models.yolo_blocks:yolo_norm" in config or "neurlink.models:yolo_norm" in config
    again = neurlink.from_pretrained(tmp_path)
    x = torch.randn(1, 3, 33, 47)
    torch.testing.assert_close(again(x), net(x), rtol=0, atol=0)
    with pytest.raises(neurlink.errors.PretrainedError, match="which a definition may not name"):
        _names.resolve("neurlink.models:resnet50", ())
