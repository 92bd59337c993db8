"""The live forward's own costs, each against the case without it, in one process:

- new input sizes against repeated ones: a network fed sizes it has never seen, call by call
  interleaved with the same network (same weights) that has seen every one of them (a 1-d network
  over 300 lengths, resnet18 over 50 sizes from 64 to 256); torch's own caches are warm for both;
- every block of resnet50 with a forward pre-hook (as FSDP2's ``fully_shard`` places them) against
  the unhooked network, per call;
- building resnet152 against torchvision's constructor.

    python benchmarks/bench_live_forward.py [--quick] [--json results_live_forward.json]
"""

from __future__ import annotations

import copy
import json
import random
import statistics
import time

import torch
import torchvision
from side_by_side import command_line, interleaved

import neurlink
import neurlink.nerves as nv


def new_against_repeated(make, shapes: list[tuple[int, ...]]) -> tuple[float, float]:
    """Median seconds per call of a fresh network on shapes new to it, and of a copy that saw them all."""
    seen = make().eval()
    with torch.inference_mode():
        for shape in shapes:
            seen(torch.randn(shape)), seen(torch.randn(shape))
    inputs = [torch.randn(shape) for shape in shapes]
    fresh = copy.deepcopy(seen)
    fresh._start_checks(as_built=True)  # as just built: no size checked yet
    with torch.inference_mode():
        fresh(torch.randn(shapes[0])), fresh(torch.randn(shapes[0]))  # its first call checks every line
    new, repeated = [], []
    with torch.inference_mode():
        for k, x in enumerate(inputs[1:]):
            order = ((fresh, new), (seen, repeated)) if k % 2 else ((seen, repeated), (fresh, new))
            for net, times in order:
                start = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - start)
    return statistics.median(new), statistics.median(repeated)


def one_d_network():
    return nv.build(
        [
            ((8, 1), nv.Input()),
            ((32, 2), nv.Conv1d_BN_ReLU(5)),
            ((32, 2), nv.Conv1d_BN_ReLU(3)),
            ((64, 4), nv.Conv1d_BN_ReLU(3)),
            ((64, 4), nv.Conv1d_BN_ReLU(3)),
        ]
    )


def hooked_against_plain(rounds: int) -> tuple[float, float]:
    torch.manual_seed(0)
    plain = neurlink.resnet50().eval()
    hooked = copy.deepcopy(plain)
    blocks = [module for module in hooked.modules() if type(module).__name__ == "Bottleneck"]
    for block in blocks:
        block.register_forward_pre_hook(lambda module, args: None)
    x = torch.randn(1, 3, 64, 64)

    def run(net):
        def call():
            with torch.inference_mode():
                net(x)

        return call

    return interleaved(run(hooked), run(plain), rounds)


def build_against_torchvision(rounds: int) -> tuple[float, float]:
    def ours():
        torch.manual_seed(0)
        neurlink.resnet152()

    def theirs():
        torch.manual_seed(0)
        torchvision.models.resnet152()

    return interleaved(ours, theirs, rounds, warmup=1)


def main() -> None:
    args, rounds = command_line(__doc__.splitlines()[0])
    random.seed(0)
    results = {}
    lengths = random.sample(range(64, 2048), 300 if not args.quick else 60)
    results["1-d network, 300 new lengths"] = new_against_repeated(one_d_network, [(1, 8, n) for n in lengths])
    sizes = random.sample(range(64, 257), 50 if not args.quick else 10)
    results["resnet18, 50 new sizes 64-256"] = new_against_repeated(
        neurlink.resnet18, [(1, 3, n, n + 8) for n in sizes]
    )
    results["resnet50, a pre-hook on every block"] = hooked_against_plain(rounds(60))
    results["build resnet152 (vs torchvision)"] = build_against_torchvision(rounds(15))
    print(f"{'case':40} {'neurlink ms':>12} {'against ms':>11} {'ratio':>7}")
    for case, (ours, theirs) in results.items():
        print(f"{case:40} {ours * 1e3:12.3f} {theirs * 1e3:11.3f} {ours / theirs:7.3f}")
    if args.json:
        rows = {case: {"ms": a * 1e3, "against_ms": b * 1e3, "ratio": a / b} for case, (a, b) in results.items()}
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
