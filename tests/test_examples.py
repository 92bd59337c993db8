"""The examples run, and the hand-written ResNet-18 prints the original README's shapes."""

import importlib.util
from pathlib import Path

import torch
import torchvision
from networks import SEED_SHAPES  # shared with test_zoo.py

EXAMPLES = Path(__file__).parent.parent / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hand_written_resnet18_prints_the_seed_shapes(capsys):
    example = load("resnet18_shapes")
    example.main()
    printed = capsys.readouterr().out.splitlines()
    assert printed == [str(torch.Size(shape)) for shape in SEED_SHAPES]
    model = example.resnet18()
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in torchvision.models.resnet18().parameters()
    )


def test_train_segmentation_runs_briefly(capsys):
    example = load("train_segmentation")
    score = example.main(["--epochs", "1", "--steps", "2", "--batch-size", "2", "--size", "24"])
    printed = capsys.readouterr().out
    assert "epoch 1: loss" in printed and "IoU" in printed and "validation IoU" in printed
    assert 0.0 <= score <= 1.0
