"""neurlink's HRNets against timm's, side by side in one process.

Every case runs both models with the same weights (timm's, loaded by ``load_timm``),
interleaved round by round (the order alternates), and reports medians and the
neurlink / timm ratio:

    python benchmarks/bench_vs_timm.py [--quick] [--json results_timm.json]

Targets (issue 11, 2 CPU threads): inference at 224, batch 1, for hrnet_w18_small and hrnet_w18
<= 1.03; a training step <= 1.03; peak inference memory <= 1.05.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).parent))

from side_by_side import command_line, inference, peak_memory, training_step  # noqa: E402

import neurlink  # noqa: E402
from neurlink.interop import load_timm  # noqa: E402


def pair(name: str):
    """A timm model and the neurlink model with the same weights."""
    reference = timm.create_model(name)
    model = load_timm(getattr(neurlink, name)(), reference)
    return model, reference


def main() -> None:
    args, rounds = command_line(__doc__.splitlines()[0])

    rows = []

    def report(case: str, unit: str, ours: float, theirs: float, target: float):
        ratio = ours / theirs
        rows.append({"case": case, "unit": unit, "neurlink": ours, "timm": theirs, "ratio": ratio, "target": target})
        status = f"(<= {target})  " + ("ok" if ratio <= target else "MISSED")
        print(f"{case:<44} {ours:>10.4g} {theirs:>10.4g} {unit:<3} {ratio:>6.3f}  {status}", flush=True)

    print(f"torch {torch.__version__}, timm {timm.__version__}, {args.threads} threads, {platform.machine()}")
    print(f"{'case':<44} {'neurlink':>10} {'timm':>10}     {'ratio':>6}")
    for name in ("hrnet_w18_small", "hrnet_w18"):
        a, b = inference(*pair(name), 224, 1, rounds(40))
        report(f"inference {name} 224x224 b1", "ms", a * 1e3, b * 1e3, 1.03)
    for name in ("hrnet_w18_small", "hrnet_w18"):
        a, b = training_step(*pair(name), 128, 4, rounds(15))
        report(f"training step {name} 128x128 b4", "ms", a * 1e3, b * 1e3, 1.03)
    for name in ("hrnet_w18_small", "hrnet_w18"):
        a, b = peak_memory(*pair(name), 224, 8)
        report(f"peak inference memory {name} 224 b8", "MB", a / 2**20, b / 2**20, 1.05)
    if args.json:
        payload = {"torch": torch.__version__, "timm": timm.__version__, "threads": args.threads, "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
