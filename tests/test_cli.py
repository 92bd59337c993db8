"""The ``neurlink`` command line, every command and error path, as ``main()`` in this process and as a
real ``python -m neurlink``.

Starting Python and torch takes seconds, so a module fixture starts its commands at once (one per core
at a time) and each test reads the result of its own. Every run starts the commands whose test needs a
process of its own: progress on a terminal and nothing on a stderr that is not one (``list_tty``,
``summary_zoo``), and the errors of broken files imported by a fresh interpreter (``check_errors``). The
other commands run in this process in every run, and again as ``python -m neurlink`` with ``-m slow``
(their parameter ``subprocess``).
"""

from __future__ import annotations

import importlib.metadata
import os
import pty
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import neurlink
import neurlink.nerves as nv
from neurlink.tools.cli import main

ROOT = Path(__file__).resolve().parent.parent

NETS = """
import neurlink.nerves as nv


class Residual(nv.Nerve):
    def __init__(self):
        super().__init__()
        dims = self.target_dims[0]
        self.add([(dims, nv.Conv2d_BN_ReLU(3)), (dims, nv.Add[[0, -1]]())])


def small():
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d_BN_ReLU[-1, "stem"](3)),
            ((8, 2), Residual()),
            ((16, 2), nv.Concat[["stem", -1]]()),
        ]
    )


def lines():
    return [((1, 1), nv.Input()), ((4, 2), nv.Conv2d(3))]


def broken():
    return nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 3), nv.Conv2d(3)),
            ((8, 4), nv.Conv2d(3)),
        ]
    )


def crashes():
    return {}["weights"]


def not_a_network():
    return 3
"""

COMMANDS = {
    "list_tty": ["list"],
    "list_nothing": ["list", "xception*"],
    "summary_zoo": ["summary", "resnet18", "--input", "1x3x64x64"],
    "summary_file": ["summary", "nets.py:small", "--depth", "2"],
    "summary_unknown_model": ["summary", "resnt50"],
    "summary_bad_input": ["summary", "resnet18", "--input", "1x3xax224"],
    "summary_wrong_input": ["summary", "nets.py:small", "--input", "1x4x32x32"],
    "graph_svg": ["graph", "nets.py:small", "--input", "1x3x32x32", "--depth", "2", "-o", "small.svg"],
    "graph_mmd": ["graph", "resnet18", "--no-shapes", "-o", "resnet18.mmd"],
    "graph_bad_suffix": ["graph", "nets.py:small", "-o", "small.txt"],
    "check_ok": ["check", "nets.py:small", "resnet50", f"{ROOT / 'examples' / 'tiny_unet.py'}:tiny_unet"],
    "check_errors": [
        "check",
        "nets.py:broken",
        "nets.py:crashes",
        "nets.py:not_a_network",
        "nets.py:missing",
        "nets.py",
        "nope.py:small",
        "syntax.py:f",
        "imports.py:f",
        "nets.py:small",
    ],
}
# The commands whose tests need a process of their own; the others run in this process (and in one of
# their own with -m slow).
OWN_PROCESS = ("list_tty", "summary_zoo", "check_errors")
# Each command starts Python and torch (seconds): one torch thread each, one command per core at a time.
ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(name: str, folder: Path) -> tuple[int, str, str]:
    command = [sys.executable, "-m", "neurlink", *COMMANDS[name]]
    if not name.endswith("_tty"):
        done = subprocess.run(
            command, cwd=folder, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=ENVIRONMENT
        )
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()  # stderr on a terminal: progress is shown
    try:
        done = subprocess.run(
            command, cwd=folder, stdout=subprocess.PIPE, stderr=follower, text=True, timeout=300, env=ENVIRONMENT
        )
    finally:
        os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal is closed once everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return done.returncode, done.stdout, b"".join(chunks).decode()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "nets.py").write_text(textwrap.dedent(NETS))
    (folder / "syntax.py").write_text("def f(:\n    pass\n")
    (folder / "imports.py").write_text("import a_module_that_is_not_installed\n")
    return folder


def _run_all(names, folder: Path) -> dict[str, tuple[int, str, str]]:
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(_run, name, folder) for name in names}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def runs(folder) -> dict[str, tuple[int, str, str]]:
    return _run_all(OWN_PROCESS, folder)


@pytest.fixture(scope="module")
def slow_runs(folder) -> dict[str, tuple[int, str, str]]:
    """The other commands as ``python -m neurlink``: only a slow test asks for it."""
    return _run_all([name for name in COMMANDS if name not in OWN_PROCESS], folder)


@pytest.fixture(params=["in_process", pytest.param("subprocess", marks=pytest.mark.slow)])
def cli(request, folder, capsys, monkeypatch):
    """``cli(name)``: the exit status, stdout and stderr of ``COMMANDS[name]``, run by ``main()`` in the
    module's folder (an argparse error exits, as it does the process) or read from ``slow_runs``."""
    if request.param == "subprocess":
        return request.getfixturevalue("slow_runs").__getitem__

    def in_process(name: str) -> tuple[int, str, str]:
        assert name not in OWN_PROCESS
        monkeypatch.chdir(folder)
        capsys.readouterr()
        try:
            code = main(COMMANDS[name])
        except SystemExit as exited:
            code = exited.code
        out, err = capsys.readouterr()
        return code, out, err

    return in_process


def assert_one_clear_error(stderr: str, *parts: str) -> None:
    assert "Traceback" not in stderr
    assert stderr.startswith("neurlink: error: ") or stderr.startswith("usage: ")
    for part in parts:
        assert part in stderr


def test_list_shows_progress_on_a_terminal(runs):
    code, out, err = runs["list_tty"]
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    models = len(neurlink.list_models())
    assert rows[0] == ["model", "parameters"] and len(rows) == 1 + models
    assert ["resnet50", "25,557,032"] in rows and ["wide_resnet101_2", "126,886,696"] in rows
    assert ["convnext_large", "197,767,336"] in rows and ["mobilenet_v3_small", "2,542,856"] in rows
    assert ["hrnet_w18", "21,299,004"] in rows
    last = neurlink.list_models()[-1]
    assert f"counting the parameters of {last} ({models}/{models})" in err  # stderr is a terminal here
    assert "Traceback" not in err
    assert runs["summary_zoo"][2] == ""  # and not a terminal there: nothing on stderr


def test_list_without_a_match(cli):
    code, out, err = cli("list_nothing")
    assert (code, out) == (1, "")
    assert_one_clear_error(err, "no model matches 'xception*'")


def test_summary_of_a_zoo_model(runs):
    code, out, err = runs["summary_zoo"]
    assert (code, err) == (0, "")
    assert "Total params:         11,689,512" in out
    assert "Input size:           (1, 3, 64, 64)" in out
    row = next(line for line in out.splitlines() if line.startswith("1 "))
    stem_macs = f"{64 * 32 * 32 * 3 * 7 * 7:,}"
    assert row.split() == "1 stem 0 Conv2d_BN_ReLU[-1, 'stem'](7) (64, 2) (1, 64, 32, 32) 9,536".split() + [stem_macs]


def test_summary_of_a_file_with_nested_rows(cli):
    code, out, err = cli("summary_file")
    assert (code, err) == (0, "")
    rows = [line.split() for line in out.splitlines()[2:8]]
    assert [row[0] for row in rows] == ["0", "1", "2", "2.1", "2.2", "3"]
    assert rows[4][:3] == ["2.2", "1,", "2.1"]  # the block's Add selects the block's input: line 1
    assert rows[5][:3] == ["3", "1,", "2"]  # Concat["stem", -1]
    assert "Input size:           (1, 3, 224, 224)" in out  # by default: batch 1, the declared channels, 224


def test_unknown_model_suggests_names(cli):
    code, out, err = cli("summary_unknown_model")
    assert (code, out) == (1, "")
    assert_one_clear_error(err, "unknown model 'resnt50'; did you mean 'resnet50'", "neurlink list")


def test_bad_input_size(cli):
    code, out, err = cli("summary_bad_input")
    assert code == 2 and out == ""
    assert_one_clear_error(err, "usage: neurlink summary", "'1x3xax224' is not an input size", "e.g. 1x3x224x224")


def test_input_that_contradicts_the_input_line(cli):
    code, out, err = cli("summary_wrong_input")
    assert (code, out) == (1, "")
    assert_one_clear_error(
        err, "line 0 ((3, 1), Input()): expected a tensor of shape (N, 3, *, *), got (1, 4, 32, 32): 4 channels, but"
    )


def test_graph_svg(cli, folder, dot_program):
    code, out, err = cli("graph_svg")
    assert (code, err) == (0, "")
    assert out == "wrote small.svg (5 lines, 6 selections)\n"
    root = ET.parse(folder / "small.svg").getroot()
    texts = {node.text for node in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"1x3x32x32", "1x8x16x16", "1x16x16x16", "16 x base/2", "2 Residual()"} <= texts


def test_graph_mermaid_file(cli, folder):
    code, out, err = cli("graph_mmd")
    assert (code, err) == (0, "")
    text = (folder / "resnet18.mmd").read_text()
    assert text.startswith("flowchart TB\n") and 'n12["12<br/>Conv2d(1)<br/>1000 x (1, 1)"]' in text
    assert "n11 --> n12" in text


def test_graph_unknown_format(cli):
    code, out, err = cli("graph_bad_suffix")
    assert (code, out) == (1, "")
    assert_one_clear_error(err, "cannot write a diagram as 'small.txt'", ".svg", ".mmd")


def test_check_ok(cli):
    code, out, err = cli("check_ok")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "ok: nets.py:small builds: 4 lines, 824 parameters",
        "ok: resnet50 builds: 21 lines, 25,557,032 parameters",
        f"ok: {ROOT / 'examples' / 'tiny_unet.py'}:tiny_unet builds: 10 lines, 91,570 parameters",
    ]


def test_check_reports_every_error(runs):
    code, out, err = runs["check_errors"]
    assert code == 1 and out == "ok: nets.py:small builds: 4 lines, 824 parameters\n"  # the good one still runs
    assert "Traceback" not in err
    errors = err.split("neurlink: error: ")[1:]
    expected = [
        ("nets.py:broken() (at nets.py:", "line 2: ((8, 4), Conv2d(3))", "needs a stride of 1.33333"),
        ("nets.py:crashes() raised KeyError (at nets.py:", "'weights'"),
        ("nets.py:not_a_network() returned int, not a network",),
        ("nets.py defines no function 'missing'; it defines: small, lines, broken, crashes, not_a_network",),
        ("nets.py: name the function that returns the network, as nets.py:function",),
        ("nope.py: no such file",),
        ("syntax.py:1: syntax error",),
        ("importing imports.py raised ModuleNotFoundError (at imports.py:1)", "a_module_that_is_not_installed"),
    ]
    assert len(errors) == len(expected)
    for message, parts in zip(errors, expected):
        for part in parts:
            assert part in message


# The same entry point in this process, for variants of the commands above.


def test_in_process_variants(folder, capsys, monkeypatch):
    monkeypatch.chdir(folder)
    assert main(["list", "wide"]) == 0  # a plain word matches a part of the name
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [
        "model",
        "wide_resnet101_2",
        "wide_resnet50_2",
    ]
    assert main(["summary", "nets.py:lines", "--device", "meta"]) == 0  # a list of lines is built
    assert "Input size:           (1, 1, 224, 224)" in capsys.readouterr().out
    assert main(["graph", "nets.py:small", "--input", "1x3x32x32"]) == 0  # DOT on stdout
    assert 'n1 -> n3 [label="0", style=dashed];' in capsys.readouterr().out
    assert main(["summary", "nets.py:broken"]) == 1
    assert "line 2: ((8, 4), Conv2d(3))" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_status:
        main([])
    assert exit_status.value.code == 2 and "required: COMMAND" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_status:
        main(["--version"])
    assert exit_status.value.code == 0
    assert capsys.readouterr().out == f"neurlink {importlib.metadata.version('neurlink')}\n"


def test_dtype_builder_keywords_and_huge_inputs_in_process(capsys, tmp_path):
    from neurlink.tools.cli import main

    assert main(["summary", "resnet18", "--dtype", "float64", "--input", "1x3x32x32", "--arg", "num_classes=10"]) == 0
    out = capsys.readouterr().out
    assert "(1, 10, 1, 1)" in out and "Parameter memory:     85.31 MiB" in out  # 11,181,642 float64 parameters
    broken = tmp_path / "broken.py"
    broken.write_text("import missing_module_xyz\n")
    before_path, before_modules = list(sys.path), set(sys.modules)
    assert main(["summary", f"{broken}:net"]) == 1
    assert sys.path == before_path and set(sys.modules) == before_modules
    capsys.readouterr()


# --- pointed at anything: hostile names, shadowed names, sizes --------------------------------


def test_a_zoo_name_means_the_zoo_beside_a_folder_of_that_name(tmp_path, capsys, monkeypatch):
    """A cloned repository holding a folder resnet18/ must not shadow the zoo's resnet18."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet18").mkdir()
    assert main(["check", "resnet18"]) == 0
    assert "ok: resnet18 builds: 13 lines, 11,689,512 parameters" in capsys.readouterr().out
    assert main(["check", "./resnet18"]) == 1  # the folder, as a path: it holds no checkpoint
    assert "resnet18/config.json: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "size, message",
    [
        ("99999999999999999999x3x2x2", "is more than 1,073,741,824 elements"),
        ("100000x3x2000x2000", "is more than 1,073,741,824 elements"),
        ("0x3x2x2", "is not an input size"),
    ],
)
def test_input_sizes_are_bounded_before_anything_is_allocated(size, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["summary", "resnet18", "--input", size])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_weights_are_not_an_argument_of_the_command_line(capsys):
    with pytest.raises(SystemExit):
        main(["check", "resnet18", "--arg", "weights=DEFAULT"])
    assert "--arg weights=... is not taken here" in capsys.readouterr().err


def test_text_from_a_file_reaches_the_terminal_escaped(tmp_path, capsys):
    """A tag holding an escape sequence (set the window title, clear the screen) is refused at build, and
    the message that shows it prints its control characters as escapes."""
    import json

    net = nv.build([((3, 1), nv.Input()), ((4, 1), nv.Conv2d[-1, "stem"](1))])
    net.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["lines"][1]["nerve"]["tag"] = "\x1b]0;pwned\x07\x1b[2J"
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert main(["summary", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "holds characters that are not printable" in err and "\\x1b]0;pwned\\x07" in err


def test_a_summary_row_escapes_what_a_definition_wrote():
    from neurlink.tools.summary import SummaryRow

    row = SummaryRow("1", 0, "t\x1b[2J", ("0",), "Evil(\x1b]0;x\x07)", "(4, 1)\r", ((1, 4, 2, 2),), 0, 0)
    cells = row.cells()
    assert not any(ch in "".join(cells) for ch in "\x1b\x07\r")
    assert cells[1] == "t\\x1b[2J" and cells[4] == "(4, 1)\\r"


def test_a_declared_input_larger_than_the_bound_is_refused_and_names_are_printed_escaped(tmp_path, capsys):
    net = nv.build([((3, "(40000, 40000)"), nv.Input()), ((4, "(40000, 40000)"), nv.Conv2d(1))])
    net.save_pretrained(tmp_path / "big")
    assert main(["summary", str(tmp_path / "big")]) == 1
    err = capsys.readouterr().err
    assert "line 0's input would be 1x3x40000x40000, more than 1,073,741,824 elements" in err
    evil = tmp_path / "evil\x1b]0;PWNED\x07"
    nv.build([((3, 1), nv.Input()), ((4, 1), nv.Conv2d(1))]).save_pretrained(evil)
    assert main(["check", str(evil)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "evil\\x1b]0;PWNED\\x07 builds" in out


# --- check calls each network once on the meta device, as its first call would -----------------------------

FIRST_CALLS = """
import torch
import neurlink.nerves as nv


class ByValue(torch.nn.Module):  # reads a value of its input: what the meta device cannot do
    def forward(self, x):
        return x * x.flatten().tolist()[0]


def vectors():
    return nv.build([((5, "()"), nv.Input()), ((3, "()"), torch.nn.Identity())])


def by_value():
    return nv.build([((3, 1), nv.Input()), ((3, 1), ByValue())])
"""


def test_check_runs_the_first_call_checks_without_memory(tmp_path, capsys, monkeypatch):
    """What the build cannot see (a torch module's output at a size) the first call finds: ``check`` makes
    it on the meta device, at the smallest input the lines take (2 x 2 per ratio 2, here 4 x 4) and, as a
    torch module may return the declared size at one size only, at 224 x 224 too."""
    monkeypatch.chdir(tmp_path)
    lines = "lines:\n  - (3, 1), Input()\n  - (8, 1), Conv2d(3)\n"
    Path("three.yaml").write_text(lines + "  - (8, 2), AdaptiveAvgPool2d(3)\n")
    Path("two.yaml").write_text(lines + "  - (8, 2), AdaptiveAvgPool2d(2)\n")  # right at 4 x 4 only
    Path("huge.yaml").write_text("lines:\n  - (100000, 1), Input()\n  - (100000, 1), Conv2d(7)\n")  # 1.8 TiB
    Path("first_calls.py").write_text(FIRST_CALLS)
    models = ["three.yaml", "two.yaml", "huge.yaml", "first_calls.py:vectors", "first_calls.py:by_value"]
    assert main(["check", *models]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "ok: huge.yaml builds: 2 lines, 490,000,100,000 parameters",
        "ok: first_calls.py:by_value builds: 2 lines, 0 parameters (its first call was not checked: the meta"
        " device cannot run line 1: Cannot copy out of meta tensor; no data!)",
    ]
    found = "\n    allowed: a module whose output has the declared channels and shape (or declare what it returns)"
    assert err.split("neurlink: error: ")[1:] == [
        "three.yaml:4:5: line 2: (8, 2), AdaptiveAvgPool2d(3)\n"
        "    the line declares (8, 2), that is (N, 8, 2, 2) for this input, but its module returned (N, 8, 3, 3)"
        f"{found}\n    (found by its first call, on an input of 2x3x4x4, made on the meta device)\n",
        "two.yaml:4:5: line 2: (8, 2), AdaptiveAvgPool2d(2)\n"
        "    the line declares (8, 2), that is (N, 8, 112, 112) for this input, but its module returned (N, 8, 2, 2)"
        f"{found}\n    (found by its first call, on an input of 2x3x224x224, made on the meta device)\n",
        "first_calls.py:vectors: line 1: ((3, '()'), Identity())\n"
        "    the line declares (3, '()'), that is (N, 3) for this input, but its module returned (N, 5)"
        f"{found}\n    (found by its first call, on an input of 2x5, made on the meta device)\n",
    ]
    assert main(["summary", "huge.yaml"]) == 1  # on the CPU: refused before anything is allocated
    err = capsys.readouterr().err
    assert "huge.yaml:3:5: line 1: (100000, 1), Conv2d(7)" in err and "need 1.8 TiB, but cpu has" in err
    assert "--device meta checks it" in err
