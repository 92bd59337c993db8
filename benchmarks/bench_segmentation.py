"""neurlink's segmentation models against torchvision's and smp's, side by side in one process.

Every case runs both models with the same weights, interleaved round by round (the order
alternates), and reports medians and the neurlink / reference ratio:

    python benchmarks/bench_segmentation.py [--quick] [--json results_segmentation.json]

Targets (issue 13, 2 CPU threads): eager inference at 224x224 batch 1 <= 1.03 for deeplabv3_resnet50
and lraspp_mobilenet_v3_large (vs torchvision, ``model(x)["out"]``) and unet_resnet34 (vs
``smp.Unet("resnet34")``); a training step (forward, backward, SGD; 128x128 batch 4) <= 1.03 for
lraspp_mobilenet_v3_large and unet_resnet34; peak inference memory (``no_grad``, 224x224) <= 1.05.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from side_by_side import command_line, inference, peak_memory, training_step  # noqa: E402

import neurlink  # noqa: E402
from neurlink.interop import load_smp, load_torchvision  # noqa: E402


class Out(nn.Module):
    """torchvision's segmentation model returning its ``["out"]`` tensor, as ours returns it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


def pair(name: str) -> tuple[nn.Module, nn.Module]:
    """A reference model and the neurlink model with the same weights."""
    if name.startswith("unet_"):
        reference = smp.Unet(name.removeprefix("unet_"), encoder_weights=None, classes=1)
        return load_smp(getattr(neurlink, name)(), reference), reference
    reference = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None)
    return load_torchvision(getattr(neurlink, name)(), reference), Out(reference)


def _mean_square(output: torch.Tensor) -> torch.Tensor:
    """The training objective of the segmentation cases: the mean of the squared logits."""
    return output.square().mean()


def main() -> None:
    args, rounds = command_line(__doc__.splitlines()[0])

    rows = []

    def report(case: str, unit: str, ours: float, theirs: float, target: float, baseline: str):
        ratio = ours / theirs
        rows.append({"case": case, "unit": unit, "neurlink": ours, baseline: theirs, "ratio": ratio, "target": target})
        status = f"(<= {target})  " + ("ok" if ratio <= target else "MISSED")
        print(f"{case:<48} {ours:>10.4g} {theirs:>10.4g} {unit:<3} {ratio:>6.3f}  {status}  vs {baseline}", flush=True)

    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, smp {smp.__version__},"
        f" {args.threads} threads, {platform.processor() or platform.machine()}"
    )
    print(f"{'case':<48} {'neurlink':>10} {'reference':>10}     {'ratio':>6}")
    for name, n, baseline in (
        ("deeplabv3_resnet50", 20, "torchvision"),
        ("lraspp_mobilenet_v3_large", 100, "torchvision"),
        ("unet_resnet34", 40, "smp"),
    ):
        a, b = inference(*pair(name), 224, 1, rounds(n))
        report(f"inference {name} 224x224 b1", "ms", a * 1e3, b * 1e3, 1.03, baseline)
    for name, n, baseline in (("lraspp_mobilenet_v3_large", 30, "torchvision"), ("unet_resnet34", 16, "smp")):
        a, b = training_step(*pair(name), 128, 4, rounds(n), objective=_mean_square)
        report(f"training step {name} 128x128 b4", "ms", a * 1e3, b * 1e3, 1.03, baseline)
    for name, batch, baseline in (
        ("deeplabv3_resnet50", 2, "torchvision"),
        ("lraspp_mobilenet_v3_large", 8, "torchvision"),
        ("unet_resnet34", 4, "smp"),
    ):
        a, b = peak_memory(*pair(name), 224, batch)
        report(f"peak inference memory {name} 224 b{batch}", "MB", a / 2**20, b / 2**20, 1.05, baseline)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
