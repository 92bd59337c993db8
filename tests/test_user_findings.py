"""What a new user's review found (issue: pools that grow, --set true, errors of the command line at the
file's line, trust advice of a checkpoint, nerves named as torch's classes).

References: torch's own modules (nn.AdaptiveAvgPool2d, nn.BatchNorm2d), parameter counts worked out by
hand, and the place of each line in the files written here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import neurlink
import neurlink.nerves as nv
from neurlink import DefinitionFileError
from neurlink.definition_files import from_text
from neurlink.errors import DimsError, InputError, UnexpectedArgumentError
from neurlink.tools.cli import _setting, main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "definitions"


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


# --- 1. a pool keeps or shrinks its input ----------------------------------------------------------------


@pytest.mark.parametrize("pool", [nv.AvgPool2d(), nv.MaxPool2d(), nv.AvgPool2d(3), nv.MaxPool2d(2)])
def test_a_pool_that_would_grow_its_input_is_refused_at_its_line(pool):
    lines = [((3, 1), nv.Input()), ((16, 4), nv.Conv2d(3)), ((16, 1), pool)]
    with pytest.raises(DimsError, match=r"line 2: .*\n.*keeps or shrinks its input: ratio 4 -> 1 grows it") as caught:
        nv.build(lines, device="meta")
    assert 'for an absolute shape write it as a string, "(1, 1)"' in str(caught.value)


def test_a_shape_missing_its_quotes_is_named_at_the_files_line():
    text = "lines:\n  - (3, 1), Input()\n  - (16, 2), Conv2d(3)\n  - (16, (1, 1)), AvgPool2d()\n"
    with pytest.raises(DefinitionFileError, match=r"net\.yaml:4:5: line 2: \(16, \(1, 1\)\), AvgPool2d\(\)") as caught:
        from_text(text, file="net.yaml", device="meta")
    message = str(caught.value)
    assert "ratio 2 -> (1, 1) grows it" in message and 'write it as a string, "(1, 1)"' in message
    # as the advice says: the global average, as torch's adaptive pool computes it
    net = from_text(text.replace("(1, 1)),", '"(1, 1)"),'), file="net.yaml")
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        expected = nn.AdaptiveAvgPool2d(1)(net[1](x))
        assert torch.equal(net(x), expected)


def test_a_pool_between_absolute_sizes_that_grows_is_refused():
    with pytest.raises(DimsError, match=r"AvgPool2d keeps or shrinks its input: size \(4, 4\) -> \(7, 7\) grows it"):
        nv.build([((3, "(4, 4)"), nv.Input()), ((3, "(7, 7)"), nv.AvgPool2d())], device="meta")


def test_pools_that_keep_or_shrink_still_build_and_a_size_known_per_call_still_grows_as_torch():
    x = torch.randn(1, 3, 32, 32)
    kept = nv.build([((3, 1), nv.Input()), ((3, 2), nv.MaxPool2d(2)), ((3, 2), nv.AvgPool2d())])
    assert kept(x).shape == (1, 3, 16, 16)
    # ratio 32 -> "(7, 7)" is known per call only: at 32x32 torchvision's VGG head repeats its 1x1 map
    net = nv.build([((3, 1), nv.Input()), ((3, 32), nv.AvgPool2d(32)), ((3, "(7, 7)"), nv.AvgPool2d())])
    with torch.no_grad():
        assert torch.equal(net(x), nn.AdaptiveAvgPool2d(7)(nn.AvgPool2d(32)(x)))


# --- 2. --set speaks the spellings of a file ---------------------------------------------------------------

PARAMS = """\
params:
  flag: false
  n: 8
lines:
  - (3, 1), Input()
  - (n, 1), Conv2d(3, bias=flag)
"""


def test_set_reads_true_false_and_null_in_any_case():
    assert _setting("c3k=true") == ("c3k", True)
    assert _setting("c3k=FALSE") == ("c3k", False)
    assert _setting("c3k=Null") == ("c3k", None)
    assert _setting("c3k=True") == ("c3k", True)  # (Python's, as before)
    assert _setting("c3k=yes") == ("c3k", "yes")  # a word: a file refuses yes as a bool too
    assert _setting("n=10") == ("n", 10)


def test_set_true_builds_and_a_mismatch_is_advised_in_the_command_lines_spelling(tmp_path, capsys):
    path = _write(tmp_path, "net.yaml", PARAMS)
    assert main(["check", path, "--set", "flag=true"]) == 0
    assert "224 parameters" in capsys.readouterr().out  # 3 * 8 * 3 * 3 weights and 8 biases
    assert main(["check", path, "--set", "flag=False"]) == 0
    assert "216 parameters" in capsys.readouterr().out
    assert main(["check", path, "--set", "flag=yes"]) == 1
    err = capsys.readouterr().err
    assert "net.yaml:2:9: --set flag=yes is a str, but the file's flag is a bool (false)" in err
    assert "allowed: --set flag=true or --set flag=false (a bool)" in err
    assert main(["check", path, "--set", "n=true"]) == 1
    err = capsys.readouterr().err
    assert "--set n=true is a bool, but the file's n is an int (8)" in err and "allowed: --set n=8 (an int)" in err
    assert main(["check", path, "--set", "flag=null"]) == 1
    assert "--set flag=null is null, but the file's flag is a bool" in capsys.readouterr().err


# --- 3. the command line's errors at the file's line ------------------------------------------------------

TORCH_LINE = """\
lines:
  - (3, 1), Input()
  - (8, 1), Conv2d(3)
  - (8, 2), nn.Conv2d({}, 8, 3)
"""


@pytest.mark.parametrize("command", ["summary", "graph"])
def test_summary_and_graph_name_the_files_line_of_a_line_that_fails(tmp_path, capsys, command):
    path = _write(tmp_path, "net.yaml", TORCH_LINE.format(3))
    assert main([command, path, "--input", "1x3x16x16"]) == 1
    err = capsys.readouterr().err
    assert f"{path}:4:5: line 2: (8, 2), nn.Conv2d(3, 8, 3)" in err
    assert "expected input[1, 8, 16, 16] to have 3 channels, but got 8 channels" in err  # torch's words


def test_summary_names_the_files_line_of_a_mismatch(tmp_path, capsys):
    path = _write(tmp_path, "net.yaml", TORCH_LINE.format(8))
    assert main(["summary", path, "--input", "1x3x16x16"]) == 1
    captured = capsys.readouterr()
    assert "MISMATCH, declared (1, 8, 8, 8)" in captured.out  # unpadded 3x3: 14x14
    assert f"{path}:4:5: line 2: (8, 2), nn.Conv2d(8, 8, 3)\n    returns other dims than declared" in captured.err


def test_check_says_what_a_torch_line_gets_where_the_meta_device_says_little(tmp_path, capsys):
    path = _write(tmp_path, "net.yaml", TORCH_LINE.format(3))
    assert main(["check", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:4:5: line 2: (8, 2), nn.Conv2d(3, 8, 3)" in err
    assert "its input: line 1's (8, 1), 8 channels, but nn.Conv2d's in_channels is 3" in err


CNN = """\
lines:
  - (3, 1), Input()
  - (8, 2), Conv2d(3)
"""


def test_an_input_error_of_a_files_network_names_the_input_line_of_the_file(tmp_path, capsys):
    path = _write(tmp_path, "cnn.yaml", CNN)
    net = neurlink.from_file(path)
    with pytest.raises(
        InputError, match=r"cnn\.yaml:2:5: line 0: \(3, 1\), Input\(\)\n    expected a tensor"
    ) as caught:
        net(torch.zeros(1, 4, 8, 8))
    assert isinstance(caught.value, DefinitionFileError)
    assert "got (1, 4, 8, 8): 4 channels, but the line declares 3" in str(caught.value)
    assert main(["summary", path, "--input", "1x4x8x8"]) == 1
    assert f"{path}:2:5: line 0: (3, 1), Input()" in capsys.readouterr().err
    # a network built in Python names its line as before
    with pytest.raises(
        InputError, match=r"^line 0 \(\(3, 1\), Input\(\)\): expected a tensor of shape \(N, 3, \*, \*\)"
    ):
        nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3))])(torch.zeros(1, 4, 8, 8))


# --- 4. the advice to trust a module, as each entry point takes it ----------------------------------------


def test_trust_advice_names_the_entry_point(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    path = EXAMPLES / "residual.yaml"
    with pytest.raises(DefinitionFileError, match=r"allowed: from_file\(path, trusted=\['my_nerves'\]\)"):
        neurlink.from_file(path, device="meta")
    net = neurlink.from_file(path, trusted=["my_nerves"])
    net.save_pretrained(tmp_path / "checkpoint")
    with pytest.raises(DefinitionFileError, match=r"allowed: from_pretrained\(directory, trusted=\['my_nerves'\]\)"):
        neurlink.from_pretrained(tmp_path / "checkpoint")
    assert main(["check", str(tmp_path / "checkpoint")]) == 1
    err = capsys.readouterr().err
    assert "allowed: --trust my_nerves imports it" in err and "trusted=" not in err.split("allowed:")[1]


ABSENT = "neurlink_test_absent_nerves"


def test_a_trusted_module_that_cannot_be_imported_says_where_it_is_looked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, "net.yaml", f"lines:\n  - (3, 1), Input()\n  - (8, 1), {ABSENT}.Block()\n")
    with pytest.raises(DefinitionFileError, match=f"module '{ABSENT}' cannot be imported") as caught:
        neurlink.from_file(path, trusted=[ABSENT])
    assert f"allowed: put the folder holding {ABSENT}.py on sys.path (PYTHONPATH), or run from it" in str(caught.value)
    assert main(["check", path, "--trust", ABSENT]) == 1
    err = capsys.readouterr().err
    assert (
        f"allowed: run neurlink from the folder holding {ABSENT}.py, or put that folder on PYTHONPATH"
        " (--trust looks in the current folder and the file's)"
    ) in err


# --- 5. a nerve named as a torch.nn class -----------------------------------------------------------------


def test_a_nerve_given_torchs_arguments_names_torchs_module():
    with pytest.raises(UnexpectedArgumentError, match=r"channels come from the line's dims: give keywords;") as caught:
        nv.build([((8, 1), nv.Input()), ((8, 1), nv.BatchNorm2d(8))])
    assert "torch's module is nn.BatchNorm2d(8): in a file write nn.BatchNorm2d(...)" in str(caught.value)
    text = "lines:\n  - (8, 1), Input()\n  - (8, 1), BatchNorm2d(8)\n"
    with pytest.raises(DefinitionFileError, match=r"net\.yaml:3:5: .*\n.*torch's module is nn\.BatchNorm2d\(8\)"):
        from_text(text, file="net.yaml")
    # the advice builds torch's module
    net = from_text(text.replace("BatchNorm2d", "nn.BatchNorm2d"), file="net.yaml")
    assert type(net[1]) is nn.BatchNorm2d and net[1].num_features == 8
    # arguments torch's class does not take either: no such note
    with pytest.raises(UnexpectedArgumentError) as caught:
        nv.build([((3, 1), nv.Input()), ((8, 2), nv.Conv2d(3, stride=2))])
    assert "torch's module" not in str(caught.value)
