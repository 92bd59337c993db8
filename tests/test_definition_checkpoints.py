"""A network read from a definition file keeps the file: ``to_file`` writes the person's text again (its
comments, parameters and scales, with the keywords it was read with as defaults), and a checkpoint
keeps it beside the weights, ``from_pretrained`` building from it."""

from __future__ import annotations

import copy
import json
import pickle
import sys
from pathlib import Path

import pytest
import torch
import yaml

import neurlink
from neurlink import DefinitionFileError, PretrainedError
from neurlink.definition_files import to_text
from neurlink.errors import CheckpointError, DimsError
from neurlink.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "definitions"

TEXT = """\
# a small classifier: edit freely
params:
  classes: 10   # how many outputs
  width: 16
scales:
  n: {width: 0.5}
  s: {width: 1.0}
lines:
  - (3, 1), Input()
  - (32, 2), Conv2d_BN_ReLU(3)   # the stem
  - (width, 4), Conv2d_BN_ReLU(3)
  - (width, "(1, 1)"), AvgPool2d()
  - (classes, "()"), Linear()
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _same_function(net, again, size=(16, 16)) -> None:
    torch.manual_seed(0)
    for module in net.modules():  # norm statistics that are not the identity's
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    again.load_state_dict(net.state_dict())
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), again.eval()(x))


def _shapes(net) -> dict:
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


# --- to_file of a network read from a file -------------------------------------------------------------


def test_written_again_keeps_comments_and_the_keywords_as_defaults(tmp_path):
    net = neurlink.from_file(_write(tmp_path, "net.yaml", TEXT), classes=5, scale="n")
    text = to_text(net, "yaml")
    # the person's text, only the values that made this network changed
    expected = TEXT.replace("classes: 10   #", "classes: 5   #").replace("lines:\n", "scale: n\nlines:\n")
    assert text == expected
    again = neurlink.from_file(_write(tmp_path, "again.yaml", text))  # no keywords: the same network
    assert _shapes(again) == _shapes(net)
    assert [p.shape[0] for p in again.parameters()][:1] == [16]  # (32 channels at width 0.5)
    _same_function(net, again)


def test_written_without_keywords_is_the_file_unchanged(tmp_path):
    net = neurlink.from_file(_write(tmp_path, "net.yaml", TEXT), classes=10)  # its default
    assert to_text(net, "yaml") == TEXT


def test_an_existing_scale_key_is_set_in_place(tmp_path):
    path = _write(tmp_path, "net.yaml", TEXT.replace("lines:\n", "scale: s  # the default\nlines:\n"))
    text = to_text(neurlink.from_file(path, scale="n"), "yaml")
    assert "scale: n  # the default\nlines:" in text and text.count("scale:") == 1


@pytest.mark.parametrize("source_kind, target_kind", [("yaml", "json"), ("json", "yaml"), ("json", "json")])
def test_written_in_the_other_format_keeps_params_and_scales(tmp_path, source_kind, target_kind):
    source = TEXT
    if source_kind == "json":
        source = json.dumps(yaml.safe_load(TEXT), indent=2)
    net = neurlink.from_file(_write(tmp_path, f"net.{source_kind}", source), width=24, scale="n")
    text = to_text(net, target_kind)
    data = json.loads(text) if target_kind == "json" else yaml.safe_load(text)
    assert data["params"] == {"classes": 10, "width": 24}
    assert data["scales"] == {"n": {"width": 0.5}, "s": {"width": 1.0}}
    assert data["scale"] == "n"
    assert data["lines"][2] == "(width, 4), Conv2d_BN_ReLU(3)"  # the line as written, its parameter kept
    again = neurlink.from_file(_write(tmp_path, f"again.{target_kind}", text))
    _same_function(net, again)
    wider = neurlink.from_file(tmp_path / f"again.{target_kind}", width=40, device="meta")  # still a parameter
    assert wider.state_dict()["2.conv.weight"].shape[0] == 40


def test_a_replaced_module_is_refused_when_written_again(tmp_path):
    net = neurlink.from_file(_write(tmp_path, "net.yaml", TEXT))
    net[2] = torch.nn.Identity()
    with pytest.raises(DefinitionFileError, match=r"no longer matches its definition lines"):
        to_text(net, "yaml")


def test_the_source_survives_pickle_and_deepcopy(tmp_path):
    net = neurlink.from_file(_write(tmp_path, "net.yaml", TEXT), classes=3)
    for copied in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert to_text(copied, "yaml") == to_text(net, "yaml")
        assert "classes: 3   # how many outputs" in to_text(copied, "yaml")


def test_export_of_a_file_keeps_its_parameters(tmp_path, capsys):
    path = _write(tmp_path, "net.yaml", TEXT)
    assert main(["export", str(path), "--to", str(tmp_path / "out.json"), "--set", "classes=3"]) == 0
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["params"] == {"classes": 3, "width": 16} and data["lines"][-1] == '(classes, "()"), Linear()'


# --- checkpoints -------------------------------------------------------------------------------------


def test_a_checkpoint_keeps_the_file_beside_its_weights(tmp_path):
    net = neurlink.from_file(_write(tmp_path, "net.yaml", TEXT), classes=5).eval()
    net.save_pretrained(tmp_path / "checkpoint")
    files = sorted(path.name for path in (tmp_path / "checkpoint").iterdir())
    assert files == ["config.json", "definition.yaml", "model.safetensors"]
    kept = (tmp_path / "checkpoint" / "definition.yaml").read_text()
    assert kept == TEXT.replace("classes: 10   #", "classes: 5   #")
    config = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert config["definition_file"]["name"] == "definition.yaml"
    again = neurlink.from_pretrained(tmp_path / "checkpoint")
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(again(x), net(x))
    # read from its file, it keeps it: saved again, the same file
    again.save_pretrained(tmp_path / "second")
    assert (tmp_path / "second" / "definition.yaml").read_text() == kept


def test_a_json_file_is_kept_as_json(tmp_path):
    path = _write(tmp_path, "net.json", json.dumps(yaml.safe_load(TEXT), indent=2))
    net = neurlink.from_file(path).eval()
    net.save_pretrained(tmp_path / "checkpoint")
    assert (tmp_path / "checkpoint" / "definition.json").read_text() == path.read_text()
    _same_function(net, neurlink.from_pretrained(tmp_path / "checkpoint"))


def test_python_lines_keep_no_file(tmp_path):
    net = neurlink.nv.build([((3, 1), neurlink.nv.Input()), ((8, 2), neurlink.nv.Conv2d(3))])
    net.save_pretrained(tmp_path / "checkpoint")
    assert sorted(path.name for path in (tmp_path / "checkpoint").iterdir()) == ["config.json", "model.safetensors"]
    assert "definition_file" not in json.loads((tmp_path / "checkpoint" / "config.json").read_text())


def test_attributes_set_after_the_build_are_restored(tmp_path):
    net = neurlink.from_file(_write(tmp_path, "net.yaml", TEXT)).eval()
    net[1].norm.eps = 0.125  # e.g. weights ported from TensorFlow
    net.save_pretrained(tmp_path / "checkpoint")
    again = neurlink.from_pretrained(tmp_path / "checkpoint")
    assert again[1].norm.eps == 0.125
    _same_function(net, again)


def test_a_definition_file_edited_after_the_save_is_refused(tmp_path):
    neurlink.from_file(_write(tmp_path, "net.yaml", TEXT)).save_pretrained(tmp_path / "checkpoint")
    kept = tmp_path / "checkpoint" / "definition.yaml"
    kept.write_text(kept.read_text().replace("the stem", "THE STEM"))
    with pytest.raises(PretrainedError, match=r"definition.yaml is not the file the save of .*config.json wrote"):
        neurlink.from_pretrained(tmp_path / "checkpoint")
    kept.unlink()
    with pytest.raises(PretrainedError, match=r"definition.yaml: no such file \(.*config.json names it"):
        neurlink.from_pretrained(tmp_path / "checkpoint")


def _saved(tmp_path: Path) -> Path:
    """The checkpoint of TEXT's network, as save_pretrained writes it."""
    folder = tmp_path / "checkpoint"
    neurlink.from_file(_write(tmp_path, "net.yaml", TEXT)).save_pretrained(folder)
    return folder


def _edit_config(folder: Path, edit) -> None:
    """config.json changed by ``edit`` (a function of its dict)."""
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


def _rehash(folder: Path, text: str) -> None:
    """``definition.yaml`` replaced by ``text``, the config's hash of it made to match (a hand-made checkpoint)."""
    import hashlib

    (folder / "definition.yaml").write_text(text)
    _edit_config(
        folder, lambda config: config["definition_file"].update(sha256=hashlib.sha256(text.encode()).hexdigest())
    )


def test_a_kept_file_that_does_not_build_names_its_line(tmp_path):
    folder = _saved(tmp_path)
    _rehash(folder, TEXT.replace("(32, 2), Conv2d_BN_ReLU(3)", "(32, 2), AvgPool2d(3)"))
    with pytest.raises(DimsError) as caught:
        neurlink.from_pretrained(folder)
    assert isinstance(caught.value, DefinitionFileError)
    assert str(caught.value).startswith(f"{folder / 'definition.yaml'}:10:5: line 1: (32, 2), AvgPool2d(3)")


def test_weights_that_do_not_fit_the_kept_file_name_it(tmp_path):
    folder = _saved(tmp_path)
    _rehash(folder, TEXT.replace("width: 16", "width: 24"))
    with pytest.raises(CheckpointError, match=r"model.safetensors does not fit .*definition.yaml: "):
        neurlink.from_pretrained(folder)


def test_a_hostile_kept_file_imports_nothing(tmp_path, monkeypatch):
    folder = _saved(tmp_path)
    marker = tmp_path / "imported"
    _write(tmp_path, "evil_definition_module.py", f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _rehash(folder, TEXT.replace("AvgPool2d()", "evil_definition_module.Pool()"))
    with pytest.raises(DefinitionFileError, match=r"definition.yaml:12:.*evil_definition_module"):
        neurlink.from_pretrained(folder)
    assert not marker.exists()
    sys.modules.pop("evil_definition_module", None)


def test_a_trusted_module_is_named_when_loading(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    net = neurlink.from_file(EXAMPLES / "residual.yaml", trusted=["my_nerves"], num_classes=4).eval()
    net.save_pretrained(tmp_path / "checkpoint")
    with pytest.raises(DefinitionFileError, match=r"definition.yaml:\d+:\d+: line 2: .*my_nerves.Residual"):
        neurlink.from_pretrained(tmp_path / "checkpoint")
    again = neurlink.from_pretrained(tmp_path / "checkpoint", trusted=["my_nerves"])
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(again(x), net(x))


def test_a_malformed_entry_is_refused(tmp_path):
    folder = _saved(tmp_path)
    _edit_config(folder, lambda config: config["definition_file"].update(name="../net.yaml"))
    with pytest.raises(PretrainedError, match=r"(?s)definition_file is .*allowed: \{'name': 'definition.yaml' or"):
        neurlink.from_pretrained(folder)


def test_a_kept_file_too_large_for_a_definition_is_refused(tmp_path):
    folder = _saved(tmp_path)
    _rehash(folder, TEXT + "#" * (4 * 2**20))
    with pytest.raises(PretrainedError, match=r"definition.yaml: more than 4,194,304 bytes is too large for a def"):
        neurlink.from_pretrained(folder)  # (said before its hash is compared)


def test_a_detector_read_from_a_file_is_saved_and_loaded_as_one(tmp_path):
    net = neurlink.from_file(EXAMPLES / "yolov8.yaml", scale="n", num_classes=3).eval()
    net.save_pretrained(tmp_path / "checkpoint")  # (a Detector from lines alone is refused: no builder made it)
    again = neurlink.from_pretrained(tmp_path / "checkpoint")
    assert type(again) is type(net) and type(net).__name__ == "Detector"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(again(x), net(x))  # the decoded (N, 4 + classes, anchors), as the Detector returns it
    kept = (tmp_path / "checkpoint" / "definition.yaml").read_text()
    assert "  num_classes: 3" in kept and "\nscale: n\n" in kept


def test_a_kept_file_that_is_a_fifo_or_a_folder_is_refused_without_waiting(tmp_path):
    import os

    folder = _saved(tmp_path)
    (folder / "definition.yaml").unlink()
    os.mkfifo(folder / "definition.yaml")  # a reader that opened it blocking would wait for a writer forever
    with pytest.raises(PretrainedError, match=r"definition.yaml: cannot be read: .*is not a regular file"):
        neurlink.from_pretrained(folder)
    (folder / "definition.yaml").unlink()
    (folder / "definition.yaml").mkdir()
    with pytest.raises(PretrainedError, match=r"(?i)definition.yaml: cannot be read: .*is a directory"):
        neurlink.from_pretrained(folder)


def test_the_config_of_a_file_built_network_holds_no_lines(tmp_path):
    """The file is the definition: the config names it (a config's lines beside it could say anything,
    and would bound the file's build by their count)."""
    folder = _saved(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    assert "lines" not in config and "model" not in config and "outputs" not in config
    _edit_config(folder, lambda config: config.update(lines=[0] * 10))
    with pytest.raises(PretrainedError, match=r"a config has one of 'model' .*, 'lines' .* and 'definition_file'"):
        neurlink.from_pretrained(folder)


def test_a_kept_file_is_bounded_by_its_own_lines(tmp_path):
    folder = _saved(tmp_path)
    bomb = (
        "lines:\n  - (3, 1), Input()\n  - (3, 1), TransformerEncoder(TransformerEncoderLayer(3, 1), num_layers=5000)\n"
    )
    _rehash(folder, bomb)
    with pytest.raises(PretrainedError, match=r"more than [0-9,]+ torch calls on the meta device"):
        neurlink.from_pretrained(folder)


def test_a_trusted_class_exported_by_its_package_is_saved(tmp_path, monkeypatch):
    """The kept file is built again with the modules the network was read with (the class's own module,
    pkg._impl, is private, and the file names pkg.Block)."""
    package = tmp_path / "reexporting_nerves"
    package.mkdir()
    (package / "_impl.py").write_text("import neurlink.nerves as nv\n\n\nclass Block(nv.Conv2d_BN_ReLU):\n    pass\n")
    (package / "__init__.py").write_text("from ._impl import Block\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    text = "lines:\n  - (3, 1), Input()\n  - (8, 2), reexporting_nerves.Block(3)\n"
    net = neurlink.from_file(_write(tmp_path, "net.yaml", text), trusted=["reexporting_nerves"]).eval()
    net.save_pretrained(tmp_path / "checkpoint")
    again = neurlink.from_pretrained(tmp_path / "checkpoint", trusted=["reexporting_nerves"])
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(again(x), net(x))
    for name in list(sys.modules):
        if name.startswith("reexporting_nerves"):
            sys.modules.pop(name)


def test_a_changed_network_is_refused_with_the_saves_advice(tmp_path):
    net = neurlink.from_file(_write(tmp_path, "net.yaml", TEXT)).eval().fuse()
    with pytest.raises(PretrainedError, match=r"(?s)fuse"):
        net.save_pretrained(tmp_path / "checkpoint")
    assert not (tmp_path / "checkpoint").exists()


def test_an_int_given_for_a_float_parameter_is_written_as_a_float(tmp_path):
    text = TEXT.replace("  width: 16\n", "  width: 16\n  rate: 0.5\n").replace(
        '  - (width, "(1, 1)"), AvgPool2d()', '  - (width, 4), Dropout(rate)\n  - (width, "(1, 1)"), AvgPool2d()'
    )
    net = neurlink.from_file(_write(tmp_path, "net.yaml", text), rate=1)
    written = to_text(net, "yaml")
    assert "  rate: 1.0\n" in written
    again = neurlink.from_file(_write(tmp_path, "again.yaml", written), rate=0.25, device="meta")  # still a float
    assert again[3].p == 0.25


def test_a_wrapped_network_is_named_with_the_way_in(tmp_path):
    net = neurlink.from_file(_write(tmp_path, "net.yaml", TEXT))
    with pytest.raises(PretrainedError, match=r"allowed: the network it wraps: DataParallel.module.save_pretrained"):
        neurlink.pretrained.save_pretrained(torch.nn.DataParallel(net), tmp_path / "checkpoint")
    with pytest.raises(DefinitionFileError, match=r"allowed: the network it wraps: DataParallel.module.to_file"):
        to_text(torch.nn.DataParallel(net), "yaml")


def test_a_call_error_is_not_placed_in_the_file_after_a_module_is_replaced(tmp_path):
    class Raiser(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("replacement raised")

    net = neurlink.from_file(_write(tmp_path, "net.yaml", TEXT))
    net[2] = Raiser()
    with pytest.raises(neurlink.NeurlinkError) as caught:
        net(torch.randn(2, 3, 16, 16))
    assert "net.yaml" not in str(caught.value) and not isinstance(caught.value, DefinitionFileError)
