"""A zoo model trained under DistributedDataParallel: 2 processes on CPU with gloo.

Each process trains resnet18 (10 classes, 32x32 inputs, batch 8) on its own fixed batch for a
few steps. The test checks that the loss goes down, that both replicas end with identical
parameters, and that the checkpoints written from the run (a rank-0 ``state_dict`` and a
``torch.distributed.checkpoint``) load into a fresh network that gives the same outputs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import neurlink
from neurlink import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
WORLD = 2
STEPS = 8


def probe() -> torch.Tensor:
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(123))


def worker(rank: int, out: str) -> None:
    """One replica; what the parent checks is written to ``out`` (an exception fails the spawn)."""
    torch.set_num_threads(1)  # two processes on a small CI machine: no oversubscription
    # The ranks meet through a file in the test's own folder, not a TCP port picked beforehand (which
    # another process could take in between); a rank that waits 5 minutes for the other fails the test
    # instead of hanging it for gloo's default 30.
    store = f"file://{os.path.join(out, 'rendezvous')}"
    dist.init_process_group("gloo", init_method=store, rank=rank, world_size=WORLD, timeout=timedelta(minutes=5))
    torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
    model = neurlink.resnet18(num_classes=10)
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.02, momentum=0.9)
    data = torch.Generator().manual_seed(1000 + rank)  # each rank its own batch
    x = torch.randn(8, 3, 32, 32, generator=data)
    y = torch.randint(0, 10, (8,), generator=data)
    losses = []
    for _ in range(STEPS):
        loss = F.cross_entropy(ddp(x).flatten(1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(mean.item() / WORLD)

    # identical replicas: every rank's parameters, gathered everywhere
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    # DDP broadcasts rank 0's buffers at the start of each forward, so after the last one every
    # rank's batch-norm statistics have seen its own batch: make them rank 0's before saving
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)
    gathered = [torch.empty_like(flat) for _ in range(WORLD)]
    dist.all_gather(gathered, flat)
    differences = [(g - gathered[0]).abs().max().item() for g in gathered]

    # both ways of saving a checkpoint from a run: rank 0's state_dict, and DCP (every rank writes)
    model.eval()
    dcp.save(model.state_dict(), checkpoint_id=os.path.join(out, "dcp"))
    if rank == 0:
        with torch.no_grad():
            expected = model(probe())
        torch.save(model.state_dict(), os.path.join(out, "model.pt"))
        torch.save(ddp.state_dict(), os.path.join(out, "ddp.pt"))  # keys start with "module."
        torch.save({"losses": losses, "differences": differences, "expected": expected}, os.path.join(out, "run.pt"))
    # every rank reaches this point before the group goes (rank 0 saves while rank 1 would be done);
    # after an exception the spawn's join stops the other rank, so no teardown is attempted then
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.filterwarnings(
    # DCP warns when loading without a process group, which is what the parent does on purpose
    "ignore:torch.distributed is disabled, unavailable or uninitialized:UserWarning"
)
def test_resnet18_under_distributed_data_parallel(tmp_path, monkeypatch):
    # spawned processes import this module by name (tests.test_ddp) from the parent's sys.path
    monkeypatch.syspath_prepend(str(ROOT))
    mp.spawn(worker, args=(str(tmp_path),), nprocs=WORLD, join=True)

    run = torch.load(tmp_path / "run.pt")
    losses = run["losses"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert run["differences"] == [0.0] * WORLD  # bit for bit: DDP averages the gradients on every rank

    # compared bit for bit with the workers' outputs, computed as they were: with one thread
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reload_and_compare(tmp_path, run["expected"])
    finally:
        torch.set_num_threads(threads)


def reload_and_compare(tmp_path: Path, expected: torch.Tensor) -> None:

    fresh = neurlink.resnet18(num_classes=10).eval()
    fresh.load_state_dict(torch.load(tmp_path / "model.pt"))
    with torch.no_grad():
        torch.testing.assert_close(fresh(probe()), expected, rtol=0, atol=0)

    other = neurlink.resnet18(num_classes=10).eval()
    state = other.state_dict()
    dcp.load(state, checkpoint_id=str(tmp_path / "dcp"))
    other.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(other(probe()), expected, rtol=0, atol=0)

    # the wrapper's own state_dict: the error says what to strip
    with pytest.raises(CheckpointError, match="every key starts with 'module.'"):
        neurlink.resnet18(num_classes=10).load_state_dict(torch.load(tmp_path / "ddp.pt"))


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="no torchrun")
def test_the_example_trains_under_torchrun(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    command = [torchrun, "--standalone", "--nproc_per_node", "2", str(ROOT / "examples" / "train_ddp.py")]
    command += ["--epochs", "2", "--steps", "3", "--save", str(tmp_path / "model.pt")]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "terminate called" not in result.stderr, result.stderr  # a rank aborted at exit (teardown)
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2, result.stdout  # printed once, by rank 0
    assert "2 processes" in result.stdout
    assert (tmp_path / "model.pt").exists()


def test_the_example_runs_in_one_process_without_torchrun(tmp_path):
    command = [sys.executable, str(ROOT / "examples" / "train_ddp.py"), "--epochs", "1", "--steps", "2"]
    environment = {key: value for key, value in os.environ.items() if key not in ("WORLD_SIZE", "RANK")}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "on 1 process, cpu" in result.stdout and "epoch 1: loss" in result.stdout
