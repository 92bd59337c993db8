"""YOLOv8 and YOLO11 against Ultralytics' own models, side by side in one process.

Every case runs both models with the same weights (``load_ultralytics``), interleaved round by round,
and reports medians and the ratio (2 threads unless --threads N):

    python benchmarks/bench_yolo.py [--quick] [--json benchmarks/results_yolo.json]

For yolov8n and yolo11n: inference at batch 1, 640x640, under ``inference_mode``, both fused (neurlink's
``net.fuse()`` against Ultralytics' ``DetectionModel.fuse()``: target 1.00) and both unfused (1.03); a
training step at batch 4, 320x320 (forward, backward, SGD; 1.03). The training objective is the mean
square of each model's raw predictions (neurlink's per-level maps, Ultralytics' ``boxes`` and ``scores``
of the same values): the step times the networks, not a loss. Ultralytics (AGPL-3.0) is this
benchmark's reference only, imported here as its users import it.
"""

from __future__ import annotations

import copy
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from side_by_side import command_line, inference, interleaved  # noqa: E402

import neurlink  # noqa: E402
from neurlink.interop import load_ultralytics  # noqa: E402

MODELS = ("yolov8n", "yolo11n")


def pair(name: str):
    """A random-weight Ultralytics DetectionModel and the neurlink model with its weights (norms randomised,
    so that no BatchNorm is the identity)."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    reference = DetectionModel(f"{name}.yaml", verbose=False)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    net = load_ultralytics(getattr(neurlink, name)(), reference)
    return net, reference


def check_equal(net, reference, size: int) -> None:
    """The two compute the same function (each fused model too), relative to the output's scale."""
    x = torch.rand(1, 3, size, size)
    net.eval(), reference.eval()
    with torch.no_grad():
        ours, theirs = net(x), reference(x)[0]
    error = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    assert error < 1e-4, f"neurlink and Ultralytics differ by {error:.2e}"


def training_step(net, reference, size: int, batch: int, rounds: int) -> tuple[float, float]:
    x = torch.rand(batch, 3, size, size)

    def run(model, objective):
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

        def step():
            optimizer.zero_grad(set_to_none=True)
            objective(model(x)).backward()
            optimizer.step()

        return step

    def ours(maps):
        return sum(m.square().mean() for m in maps)

    def theirs(predictions):
        return predictions["boxes"].square().mean() + predictions["scores"].square().mean()

    return interleaved(run(net, ours), run(reference, theirs), rounds, warmup=2)


def main() -> None:
    args, rounds = command_line(__doc__.splitlines()[0])
    rows = []

    def report(case: str, ours: float, theirs: float, target: float) -> None:
        ratio = ours / theirs
        rows.append(
            {"case": case, "unit": "ms", "neurlink": ours, "ultralytics": theirs, "ratio": ratio, "target": target}
        )
        verdict = "ok" if ratio <= target else "OVER"
        print(f"{case:<52} {ours:>9.4g} {theirs:>9.4g} ms {ratio:>6.3f}  (<= {target})  {verdict}", flush=True)

    import ultralytics

    print(
        f"torch {torch.__version__}, ultralytics {ultralytics.__version__}, {args.threads} threads,"
        f" {platform.processor() or platform.machine()}"
    )
    print(f"{'case':<52} {'neurlink':>9} {'ultralytics':>9}    {'ratio':>6}")
    for name in MODELS:
        net, reference = pair(name)
        check_equal(net, reference, 640)
        a, b = inference(net, reference, 640, 1, rounds(30))
        report(f"inference {name} 640x640 b1 unfused", a * 1e3, b * 1e3, 1.03)
        fused, fused_reference = copy.deepcopy(net).eval().fuse(), copy.deepcopy(reference).eval().fuse(verbose=False)
        check_equal(fused, fused_reference, 640)
        a, b = inference(fused, fused_reference, 640, 1, rounds(30))
        report(f"inference {name} 640x640 b1 fused", a * 1e3, b * 1e3, 1.00)
        a, b = training_step(net, reference, 320, 4, rounds(12))
        report(f"training step {name} 320x320 b4", a * 1e3, b * 1e3, 1.03)
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
