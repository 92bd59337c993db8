"""neurlink against hand-written torchvision models, side by side in one process.

Every case runs both models with the same weights, interleaved round by round (the order
alternates), and reports medians and the neurlink / torchvision ratio:

    python benchmarks/bench_vs_torchvision.py [--quick] [--only resnet|families|transformers|porting] [--json results.json]

Targets (issue 4, 2 CPU threads): inference resnet50 224 b1 <= 1.03, resnet18 32 b1 <= 1.03 (issue 9),
training step resnet50 128 b8 <= 1.03, peak inference memory resnet50 224 b16 <= 1.05,
building resnet152 <= 1.05 (issue 20; vs torchvision's constructor), a 2,000-line chain <= 12x a 200-line one
(shown beside the same ratio for the chain written by hand with torch.nn; the garbage collector's full
passes make both superlinear),
and checking a 100M-parameter definition on the meta device well under a second (the "budget" column).
Issue 12, the MobileNet, EfficientNet and ConvNeXt families (``--only families`` runs
just these, in a few minutes): inference at 224 batch 1 and a training step (128x128 batch 8) <= 1.03 for
mobilenet_v2, mobilenet_v3_large, efficientnet_b0 and convnext_tiny, their peak inference memory
(224 batch 16) <= 1.05,
and building convnext_large <= 1.2 (vs torchvision's constructor).
Issue 22, the vision transformers (``--only transformers``): inference at 224 batch 1 for vit_b_16 and
swin_t <= 1.03, a training step at 224 batch 4 for vit_b_32 and swin_t <= 1.03, peak inference memory at
224 batch 8 <= 1.05.
Issue 23, porting (``--only porting``): inference at batch 1 <= 1.03 for one model of each family added with
it: vgg16_bn, densenet121, googlenet, inception_v3 (at 299), squeezenet1_1, shufflenet_v2_x1_0, mnasnet1_0,
efficientnet_v2_s and regnet_y_1_6gf.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from side_by_side import command_line, inference, interleaved, peak_memory, training_step  # noqa: E402

import neurlink  # noqa: E402
import neurlink.nerves as nv  # noqa: E402
from neurlink.interop import load_torchvision  # noqa: E402

# issue 23: one model of each family ported with the geometry modes and the rest of the classification zoo
PORTING = [
    ("vgg16_bn", 224),
    ("densenet121", 224),
    ("googlenet", 224),
    ("inception_v3", 299),
    ("squeezenet1_1", 224),
    ("shufflenet_v2_x1_0", 224),
    ("mnasnet1_0", 224),
    ("efficientnet_v2_s", 224),
    ("regnet_y_1_6gf", 224),
]


# torchvision warns unless these builders are told their (default) init; neurlink's builders have no such keyword
REFERENCE_ONLY = {"googlenet": {"init_weights": True}, "inception_v3": {"init_weights": True}}


def pair(name: str, **kwargs):
    """A torchvision model and the neurlink model with the same weights."""
    reference = getattr(torchvision.models, name)(**kwargs, **REFERENCE_ONLY.get(name, {}))
    model = getattr(neurlink, name)(**kwargs)
    load_torchvision(model, reference.state_dict())
    return model, reference


def build_time(name: str, rounds: int):
    return interleaved(lambda: getattr(neurlink, name)(), lambda: getattr(torchvision.models, name)(), rounds, warmup=1)


def chain(length: int):
    return nv.build([((8, 1), nv.Input()), [((8, 1), nv.Conv2d_BN_ReLU(3))] * length])


def sequential(length: int):
    """The same chain written by hand: the reference for how CPython's collector scales builds."""
    blocks = [
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()) for _ in range(length)
    ]
    return nn.Sequential(*blocks)


def main() -> None:
    def only(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--only",
            choices=("resnet", "families", "transformers", "porting"),
            help="only the ResNet cases, the MobileNet/EfficientNet/ConvNeXt ones, the vision transformers, or the ported families (issue 23)",
        )

    args, rounds = command_line(__doc__.splitlines()[0], only)

    rows = []

    def report(case: str, unit: str, ours: float, theirs: float, target: float | None, baseline: str = "torchvision"):
        ratio = ours / theirs
        rows.append({"case": case, "unit": unit, "neurlink": ours, baseline: theirs, "ratio": ratio, "target": target})
        status = "(reference)" if target is None else f"(<= {target})  " + ("ok" if ratio <= target else "MISSED")
        print(f"{case:<44} {ours:>10.4g} {theirs:>10.4g} {unit:<3} {ratio:>6.3f}  {status}", flush=True)

    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}"
    )
    print(f"{'case':<44} {'neurlink':>10} {'reference':>10}     {'ratio':>6}")
    if args.only in (None, "resnet"):
        a, b = inference(*pair("resnet50"), 224, 1, rounds(60))
        report("inference resnet50 224x224 b1", "ms", a * 1e3, b * 1e3, 1.03)
        a, b = inference(*pair("resnet18"), 32, 1, rounds(400))
        report("inference resnet18 32x32 b1", "ms", a * 1e3, b * 1e3, 1.03)
        a, b = training_step(*pair("resnet50"), 128, 8, rounds(20))
        report("training step resnet50 128x128 b8", "ms", a * 1e3, b * 1e3, 1.03)
        a, b = peak_memory(*pair("resnet50"), 224, 16)
        report("peak inference memory resnet50 224 b16", "MB", a / 2**20, b / 2**20, 1.05)
        a, b = build_time("resnet152", rounds(6))
        report("build resnet152", "ms", a * 1e3, b * 1e3, 1.05)
        long_chain, short_chain = interleaved(lambda: chain(2000), lambda: chain(200), rounds(5), warmup=1)
        report("build 2,000-line chain vs 200-line chain", "ms", long_chain * 1e3, short_chain * 1e3, 12.0, "200 lines")
        # With the cyclic collector on (neurlink no longer pauses it), a build large enough to trigger
        # full collections scales like the hand-written modules do: this row is torch's own ratio.
        long_seq, short_seq = interleaved(lambda: sequential(2000), lambda: sequential(200), rounds(5), warmup=1)
        report(
            "hand-written nn.Sequential: 2,000 vs 200 blocks", "ms", long_seq * 1e3, short_seq * 1e3, None, "200 lines"
        )
        start = time.perf_counter()
        with torch.device("meta"):
            checked = neurlink.create_model("wide_resnet101_2")
        seconds = time.perf_counter() - start
        parameters = sum(p.numel() for p in checked.parameters())
        report(
            f"check {parameters / 1e6:.1f}M-param wide_resnet101_2 on meta", "ms", seconds * 1e3, 1000.0, 1.0, "budget"
        )
    if args.only in (None, "families"):
        families = ("mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")
        for name in families:
            a, b = inference(*pair(name), 224, 1, rounds(60))
            report(f"inference {name} 224x224 b1", "ms", a * 1e3, b * 1e3, 1.03)
        for name in families:
            a, b = training_step(*pair(name), 128, 8, rounds(12))
            report(f"training step {name} 128x128 b8", "ms", a * 1e3, b * 1e3, 1.03)
        for name in families:
            a, b = peak_memory(*pair(name), 224, 16)
            report(f"peak inference memory {name} 224 b16", "MB", a / 2**20, b / 2**20, 1.05)
        a, b = build_time("convnext_large", rounds(4))
        report("build convnext_large", "ms", a * 1e3, b * 1e3, 1.2)
    if args.only in (None, "porting"):
        for name, size in PORTING:
            a, b = inference(*pair(name), size, 1, rounds(40))
            report(f"inference {name} {size}x{size} b1", "ms", a * 1e3, b * 1e3, 1.03)
    if args.only in (None, "transformers"):
        for name in ("vit_b_16", "swin_t"):
            a, b = inference(*pair(name), 224, 1, rounds(40))
            report(f"inference {name} 224x224 b1", "ms", a * 1e3, b * 1e3, 1.03)
        for name in ("vit_b_32", "swin_t"):
            a, b = training_step(*pair(name), 224, 4, rounds(12))
            report(f"training step {name} 224x224 b4", "ms", a * 1e3, b * 1e3, 1.03)
        for name in ("vit_b_16", "swin_t"):
            a, b = peak_memory(*pair(name), 224, 8)
            report(f"peak inference memory {name} 224 b8", "MB", a / 2**20, b / 2**20, 1.05)
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
