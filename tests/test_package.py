"""The package as a user gets it: the wheel and sdist that ``python -m build`` makes, installed on
their own, and the README's first command.

The build runs without isolation (setuptools from this environment, pinned in the test extra), so
it needs no network. The installed wheel gets a fresh virtual environment of its own; its
dependencies (torch and the rest) are this environment's, seen through a ``.pth`` file, which puts
them after the new environment's own site-packages and does not run the ``.pth`` files there (the
editable install of neurlink in this environment is one of those, so it cannot be what gets imported).
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import neurlink

ROOT = Path(__file__).resolve().parent.parent
# Every command here starts Python and torch: one torch thread each, and no path to the checkout.
ENVIRONMENT = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "OMP_NUM_THREADS": "1"}
# A guard against a hang, not a timing: a build or a command takes seconds.
TIMEOUT = 600


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, the wheel built from the sdist (what ``python -m build`` does), so
    the sdist is proved complete."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, cwd=out)
    return out


def _one(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_version_is_the_installed_distributions():
    assert neurlink.__version__ == importlib.metadata.version("neurlink")


def test_wheel_and_sdist_pass_twine_check(dist):
    wheel, sdist = _one(dist, "*.whl"), _one(dist, "*.tar.gz")
    checked = run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist, cwd=dist)
    assert checked.stdout.count("PASSED") == 2


def test_wheel_holds_the_type_marker_license_and_metadata(dist):
    wheel = _one(dist, f"neurlink-{neurlink.__version__}-py3-none-any.whl")
    info = f"neurlink-{neurlink.__version__}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
        license_text = archive.read(f"{info}/licenses/LICENSE").decode()
    assert "neurlink/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)
    assert license_text.startswith("MIT License") and "Yuyao Huang" in license_text
    assert metadata["Version"] == neurlink.__version__
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    assert "Issues, https://github.com/tjyuyao/neurlink/issues" in metadata.get_all("Project-URL")
    assert "numpy" in metadata.get_all("Requires-Dist")


def test_sdist_holds_the_license_changelog_and_type_marker(dist):
    sdist = _one(dist, f"neurlink-{neurlink.__version__}.tar.gz")
    top = f"neurlink-{neurlink.__version__}"
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    for name in ["LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "src/neurlink/py.typed"]:
        assert f"{top}/{name}" in names
    assert not any(name.startswith(f"{top}/tests") for name in names)


def test_wheel_installed_on_its_own_lists_the_zoo(dist, tmp_path):
    wheel = _one(dist, "*.whl")
    venv = tmp_path / "venv"
    # No pip inside (ensurepip takes seconds): this environment's pip installs into it.
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    site_packages = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path).stdout.strip()
    )
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site_packages / "test_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))

    found = run(
        python,
        "-c",
        "import neurlink, importlib.metadata as m; print(neurlink.__file__); print(neurlink.__version__)",
        cwd=tmp_path,
    ).stdout.splitlines()
    assert Path(found[0]).is_relative_to(site_packages), found[0]
    assert found[1] == neurlink.__version__
    assert (site_packages / "neurlink" / "py.typed").is_file()

    listed = run(venv / "bin" / "neurlink", "list", cwd=tmp_path).stdout
    names = [row.split()[0] for row in listed.splitlines()[1:]]
    assert names == neurlink.list_models()
    assert "resnet50" in names and "unet_resnet34" in names

    # What the installed package imports as it loads comes from what it declares: the .pth above also
    # shows this environment's test tools (torchvision, timm, ...), so an undeclared import would still
    # work here. Libraries it only reaches for inside a function (torchvision's weight cache, the Hub)
    # are optional, and say so when they are missing.
    requirements = [r for r in importlib.metadata.requires("neurlink") or [] if "extra ==" not in r]
    declared = {re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0] for r in requirements}
    allowed = set(sys.stdlib_module_names) | {"neurlink"} | {name.replace("-", "_") for name in declared}
    imported = {
        f"{path.relative_to(site_packages)}: {name}"
        for path in (site_packages / "neurlink").rglob("*.py")
        for name in _loaded_on_import(path)
        if name not in allowed
    }
    assert not imported, f"imported as neurlink loads, but not a declared dependency: {sorted(imported)}"


def _loaded_on_import(path: Path) -> set[str]:
    """The top-level packages a module imports, unguarded, when it is loaded (its body's import
    statements: not those inside functions, under ``if TYPE_CHECKING`` or in a ``try``)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_numpy_is_a_dependency_because_torch_warns_without_it():
    """``import torch`` without NumPy warns "Failed to initialize NumPy" (torch's own import probes
    for it: ``torch/_subclasses/functional_tensor.py``), and torch does not require NumPy."""
    assert "numpy" in importlib.metadata.requires("neurlink")
    assert not any(r.startswith("numpy") for r in importlib.metadata.requires("torch"))
    blocked = "import sys; sys.modules['numpy'] = None; import torch"  # as if NumPy were not installed
    done = run(sys.executable, "-c", blocked, cwd=ROOT)
    assert "UserWarning: Failed to initialize NumPy" in done.stderr


def test_the_readme_main_command_prints_no_warning(tmp_path):
    """``neurlink summary resnet50``, the README's first command, prints its table and nothing else."""
    neurlink_command = Path(sysconfig.get_path("scripts")) / "neurlink"
    done = run(neurlink_command, "summary", "resnet50", cwd=tmp_path)
    assert done.stderr == ""
    assert "Total params:         25,557,032" in done.stdout


def test_ci_runs_the_readme_test_command():
    """CI (.ci/run) runs the README's test command, the Quick start's second, type check and the site's
    strict build included; the site's Getting started page gives the same two commands."""
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^python3 -m venv \.venv && .*$", readme, flags=re.MULTILINE)
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert commands[1] == ci
    assert "&& .venv/bin/mypy &&" in ci and "&& .venv/bin/mkdocs build --strict" in ci
    page = (ROOT / "docs" / "getting-started.md").read_text()
    assert re.findall(r"^python3 -m venv \.venv && .* && .*$", page, flags=re.MULTILINE) == commands


USER_CODE = '''
"""What the docs teach a user to write, as a user checking it with mypy --strict would."""
from pathlib import Path

import torch
from torch import Tensor

import neurlink
import neurlink.nerves as nv
from neurlink.tools import Summary, summary


class Gate(nv.Nerve):
    """docs/custom-nerves.md: a forward of its own, one argument per selected line."""

    def __init__(self) -> None:
        super().__init__()
        self.expect_links(2)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        return x * torch.sigmoid(g)


class Resize(nv.Nerve):
    """A forward that takes the base shape."""

    def forward(self, x: Tensor, base_shape: tuple[int, ...] | None = None) -> Tensor:
        assert base_shape is not None  # the network passes it to every nerve whose forward takes it
        size = self.output_shapes(base_shape)[0]
        return torch.nn.functional.interpolate(x, size=size)


def main(folder: Path) -> None:
    net: neurlink.Network = nv.build(
        [
            ((3, 1), nv.Input()),
            ((8, 2), nv.Conv2d[-1, "x"](3)),
            ((8, 2), nv.Conv2d[0](3)),
            ((8, 2), Gate[["x", -1]]()),
            ((8, 1), Resize()),
        ]
    )
    table: Summary = summary(net, input_size=(1, 3, 32, 32))
    print(table.rows[0])
    net.save_pretrained(folder)
    again: neurlink.Network = neurlink.from_pretrained(folder, trusted=["user_code"])
    again.save_pretrained(folder / "again")
    zoo: neurlink.Network = neurlink.resnet18(num_classes=10)
    print(len(zoo), neurlink.__version__)
'''


def test_what_the_docs_teach_passes_mypy_strict(tmp_path):
    """A user's own nerves (a forward of their own, with and without base_shape), a build, a summary and a
    checkpoint round trip type-check with ``mypy --strict``: neurlink's hints give them no false errors."""
    (tmp_path / "user_code.py").write_text(USER_CODE)
    # the project's cache (the test command runs mypy on src/neurlink first) keeps this to seconds
    done = run(sys.executable, "-m", "mypy", "--strict", "--no-error-summary", tmp_path / "user_code.py", cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
