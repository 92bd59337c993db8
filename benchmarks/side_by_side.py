"""Timing and measuring two models side by side in one process: what every benchmark here shares.

Each function takes the neurlink model and its reference, given the same weights by the caller;
times are medians of rounds run interleaved (the order alternates), memory is measured by
``memory_meter.PeakMemory`` the same way for both.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from memory_meter import PeakMemory
from torch import nn


def command_line(
    description: str, more: Callable[[argparse.ArgumentParser], None] | None = None
) -> tuple[argparse.Namespace, Callable[[int], int]]:
    """The options every benchmark takes (--quick, --json, --threads, and ``more``), applied: torch's
    thread count, and denormals flushed. Also the number of rounds to run for ``n`` (fewer with --quick)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, not a measurement)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--threads", type=int, default=2)
    if more is not None:
        more(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # Random weights make subnormal floats, on which CPUs run 10-100x slower and erratically;
    # both models run flushed (as trained weights rarely produce them anyway).
    torch.set_flush_denormal(True)
    scale = 0.2 if args.quick else 1.0
    return args, lambda n: max(3, int(n * scale))


def interleaved(fn_a, fn_b, rounds: int, warmup: int = 3) -> tuple[float, float]:
    """Median seconds of two callables timed in alternating order, round by round."""
    for _ in range(warmup):
        fn_a(), fn_b()
    times_a, times_b = [], []
    for i in range(rounds):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)) if i % 2 == 0 else ((fn_b, times_b), (fn_a, times_a)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


def inference(model: nn.Module, reference: nn.Module, size: int, batch: int, rounds: int):
    """Median seconds of one eval-mode call under ``inference_mode`` on a ``(batch, 3, size, size)`` input."""
    model.eval(), reference.eval()
    x = torch.randn(batch, 3, size, size)

    def run(m):
        def call():
            with torch.inference_mode():
                m(x)

        return call

    return interleaved(run(model), run(reference), rounds)


def training_step(
    model: nn.Module, reference: nn.Module, size: int, batch: int, rounds: int, objective: Callable | None = None
):
    """Median seconds of a training step (forward, ``objective(output)`` backward, SGD with momentum).

    The default objective is the cross-entropy of a classifier's output against random labels."""
    x = torch.randn(batch, 3, size, size)
    if objective is None:
        target, loss = torch.randint(0, 1000, (batch,)), torch.nn.CrossEntropyLoss()

        def objective(output):
            return loss(output.flatten(1), target)

    def run(m):
        optimizer = torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9)

        def step():
            optimizer.zero_grad(set_to_none=True)
            objective(m(x)).backward()
            optimizer.step()

        return step

    return interleaved(run(model), run(reference), rounds, warmup=2)


def peak_memory(model: nn.Module, reference: nn.Module, size: int, batch: int) -> tuple[int, int]:
    """Peak bytes of one eval-mode call under ``no_grad``, weights and input included."""
    model.eval(), reference.eval()
    peaks = []
    for m in (model, reference):
        x = torch.randn(batch, 3, size, size)
        with torch.no_grad():
            m(x)  # neurlink checks every line's output on the first call of a size; measure the calls after it
        gc.collect()
        with torch.no_grad(), PeakMemory(x, *m.parameters(), *m.buffers()) as meter:
            m(x)
        peaks.append(meter.peak)
    return tuple(peaks)
