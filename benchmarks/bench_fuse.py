"""Inference fusion (``net.fuse()``) against torchvision's models, unfused and fused, side by side in one process.

Every case runs both models with the same weights (``load_torchvision``), interleaved round by round,
and reports medians and the ratio, at 224x224 batch 1 under ``inference_mode``:

    python benchmarks/bench_fuse.py [--quick] [--threads 2] [--json benchmarks/results_fuse.json]

For resnet18 and mobilenet_v3_large, neurlink fused against: torchvision eager, unfused (issue 24 asks
for the ratio); torchvision fused by ``torch.ao.quantization.fuse_modules`` (every conv and the BatchNorm
after it, in a Sequential or as ``convK``/``bnK`` attributes; it leaves an ``nn.Identity`` where each norm
was); torchvision fused by ``torch.fx.experimental.optimization.fuse`` (a traced graph without the norms).
And the cost of what a module swap would leave: neurlink fused against the same network with an
``nn.Identity`` in each folded norm's place, which the flat forward would call (at 32x32 batch 1, where
the Python overhead of a call shows).
"""

from __future__ import annotations

import copy
import json
import platform
import sys
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.ao.quantization import fuse_modules
from torch.fx.experimental.optimization import fuse as fx_fuse

sys.path.insert(0, str(Path(__file__).parent))

from bench_vs_torchvision import pair  # noqa: E402
from side_by_side import command_line, inference  # noqa: E402

from neurlink.fuse import FoldedNorm  # noqa: E402

MODELS = ("resnet18", "mobilenet_v3_large")


def conv_norm_pairs(model: nn.Module) -> list[list[str]]:
    """The names of every conv and the BatchNorm right after it, as ``fuse_modules`` takes them: consecutive
    children of a Sequential (torchvision's ``Conv2dNormActivation``, ResNet's downsample) and a block's
    ``convK``/``bnK`` attributes (ResNet's stem and blocks)."""
    pairs = []
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        children = list(module.named_children())
        if isinstance(module, nn.Sequential):
            for (a, first), (b, second) in zip(children, children[1:]):
                if isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d):
                    pairs.append([prefix + a, prefix + b])
        for child, conv in children:
            norm = getattr(module, child.replace("conv", "bn"), None) if child.startswith("conv") else None
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                pairs.append([prefix + child, prefix + child.replace("conv", "bn")])
    return pairs


def with_identities(net: nn.Module) -> nn.Module:
    """A copy of a fused network with an ``nn.Identity`` in each folded norm's place (called by the flat forward)."""
    other = copy.deepcopy(net)
    for path, module in list(other.named_modules()):
        if isinstance(module, FoldedNorm):
            parent, _, name = path.rpartition(".")
            setattr(other.get_submodule(parent), name, nn.Identity())
    return other


def main() -> None:
    args, rounds = command_line(__doc__.splitlines()[0])
    rows = []

    def report(case: str, ours: float, theirs: float, baseline: str) -> None:
        ratio = ours / theirs
        rows.append({"case": case, "unit": "ms", "neurlink": ours, baseline: theirs, "ratio": ratio})
        print(f"{case:<62} {ours:>9.4g} {theirs:>9.4g} ms {ratio:>6.3f}", flush=True)

    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} threads,"
        f" {platform.processor() or platform.machine()}"
    )
    print(f"{'case':<62} {'neurlink':>9} {'reference':>9}    {'ratio':>6}")
    x = torch.randn(1, 3, 224, 224)
    for name in MODELS:
        net, reference = pair(name)
        net.eval(), reference.eval()
        fused = copy.deepcopy(net).fuse()
        by_fuse_modules = fuse_modules(copy.deepcopy(reference), conv_norm_pairs(reference))
        by_fx = fx_fuse(reference)
        with torch.no_grad():  # the same function, each way (random weights: relative to the output's scale)
            expected = reference(x)
            for model in (fused, by_fuse_modules, by_fx):
                error = (model(x).flatten(1) - expected).abs().max() / expected.abs().max()
                assert error < 1e-4, f"{name}: a fused model differs from torchvision's by {error:.2e}"
        left = sum(isinstance(m, nn.BatchNorm2d) for m in by_fuse_modules.modules())
        assert left == 0, f"{name}: fuse_modules left {left} norms"
        a, b = inference(fused, reference, 224, 1, rounds(60))
        report(f"{name} 224 b1: fused vs torchvision eager (unfused)", a * 1e3, b * 1e3, "torchvision")
        a, b = inference(fused, by_fuse_modules, 224, 1, rounds(60))
        report(f"{name} 224 b1: fused vs torchvision + fuse_modules", a * 1e3, b * 1e3, "torchvision fuse_modules")
        a, b = inference(fused, by_fx, 224, 1, rounds(60))
        report(f"{name} 224 b1: fused vs torchvision + fx fuse", a * 1e3, b * 1e3, "torchvision fx fuse")
        # at 32x32 the Python overhead shows: one module call per folded norm, or none
        a, b = inference(fused, with_identities(fused), 32, 1, rounds(300))
        report(f"{name} 32 b1: fused vs fused with an nn.Identity per norm", a * 1e3, b * 1e3, "nn.Identity per norm")
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
