"""The zoo page's generator (docs/_hooks/zoo_gallery.py): every registered model has a family, and
every test the page names as a model's proof exists (pytest collects it)."""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from pathlib import Path

import torch

import neurlink

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _gallery():
    spec = importlib.util.spec_from_file_location("zoo_gallery", ROOT / "docs" / "_hooks" / "zoo_gallery.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def _collect(files: list[str], marks: str) -> set[str]:
    """The node ids pytest collects from ``files`` under ``-m marks`` (collecting runs no test)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", marks, "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a guard against a hang, not a time limit
    )
    assert result.returncode in (0, 5), result.stdout + result.stderr  # 5: nothing matched the marks
    return set(result.stdout.split())


def test_every_named_test_exists_and_is_marked_slow_where_the_page_says() -> None:
    gallery = _gallery()
    proofs = {name: gallery.proof(name)[0] for name in neurlink.list_models()}
    files = sorted({node.split("::")[0] for node in proofs.values()})
    collected = _collect(files, "")  # "": the slow tests too (the default options deselect them)
    missing = sorted(set(proofs.values()) - collected)
    assert not missing, f"the zoo page names tests that pytest does not collect: {missing}"
    slow = _collect(files, "slow")
    assert {name for name, node in proofs.items() if node in slow} == gallery._SLOW


def test_every_model_has_a_family_and_a_reference() -> None:
    gallery = _gallery()
    for name in neurlink.list_models():
        family = gallery.family_of(name)
        assert family.shown in neurlink.list_models()
        assert name in gallery.reference(name) or name.removeprefix("unet_") in gallery.reference(name)


def test_grammar_lines_are_the_built_lines() -> None:
    with torch.device("meta"):
        net = neurlink.resnet18()
    lines = _gallery().grammar_lines(net).splitlines()
    assert lines[1:4] == [
        "    ((3, 1), Input()),",
        "    ((64, 2), Conv2d_BN_ReLU[-1, 'stem'](7)),",
        "    ((64, 4), MaxPool2d(3)),",
    ]
    assert "    [((64, 4), BasicBlock())] * 1," not in lines  # a single line is not written as a run
    assert lines[-2] == "    ((1000, '(1, 1)'), Conv2d(1)),"
