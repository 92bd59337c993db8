"""Train a small neurlink network with DistributedDataParallel, on generated data.

Two processes on one machine (gloo on CPU, nccl when there are GPUs)::

    torchrun --nproc_per_node 2 examples/train_ddp.py

or a single process, without torchrun::

    python examples/train_ddp.py

The task is generated, so nothing is downloaded: which quadrant of a noisy image holds a bright
square (4 classes). Every process generates the same data set from the same seed and a
``DistributedSampler`` gives each its share; rank 0 shows the progress bar and prints the loss
of every epoch, averaged over all processes.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from tqdm import tqdm

import neurlink.nerves as nv


def definition(classes: int) -> list:
    return [
        ((3, 1), nv.Input()),
        ((16, 2), nv.Conv2d_BN_ReLU(3)),
        ((32, 4), nv.Conv2d_BN_ReLU(3)),
        ((32, 4), nv.Conv2d_BN_ReLU(3)),
        ((32, "(1, 1)"), nv.AvgPool2d()),
        ((classes, "(1, 1)"), nv.Conv2d(1)),
    ]


def quadrant_images(count: int, size: int, seed: int) -> TensorDataset:
    """Noise with a bright square in one quadrant; the label is the quadrant (0..3)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(count, 3, size, size, generator=generator) * 0.5
    labels = torch.randint(0, 4, (count,), generator=generator)
    half, side = size // 2, max(size // 4, 1)
    offsets = torch.randint(0, half - side + 1, (count, 2), generator=generator)
    for image, label, (dy, dx) in zip(images, labels.tolist(), offsets.tolist()):
        top, left = (label // 2) * half + dy, (label % 2) * half + dx
        image[:, top : top + side, left : left + side] += 2.0
    return TensorDataset(images, labels)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="at most this many steps per epoch (a quick run)")
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--samples", type=int, default=2048, help="training images (plus a quarter for validation)")
    parser.add_argument("--size", type=int, default=32, help="image side")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu", action="store_true", help="train on CPU (gloo) even when there are GPUs")
    parser.add_argument("--save", metavar="PATH", help="rank 0 saves the trained state_dict here")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    distributed = "WORLD_SIZE" in os.environ  # set by torchrun
    cuda = torch.cuda.is_available() and not args.cpu
    if distributed:
        dist.init_process_group("nccl" if cuda else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)

    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP broadcasts rank 0's anyway)
    model = nv.build(definition(classes=4)).to(device)
    trained = DistributedDataParallel(model, device_ids=[device] if cuda else None) if distributed else model
    train = quadrant_images(args.samples, args.size, args.seed)  # the same data on every process
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(train, batch_size=args.batch_size, sampler=sampler)
    optimizer = torch.optim.SGD(trained.parameters(), lr=args.lr, momentum=0.9)
    if rank == 0:
        count = sum(p.numel() for p in model.parameters())
        where = f"{world} process{'es' if world > 1 else ''}, {device.type}" + (
            f", {dist.get_backend()}" if distributed else ""
        )
        print(f"training {count} parameters on {where}", flush=True)

    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a new shuffle every epoch, the same on every process
        model.train()
        steps = len(loader) if args.steps is None else min(args.steps, len(loader))
        totals = torch.zeros(3, device=device)  # loss * count, correct, count
        bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{args.epochs}", disable=rank != 0, leave=False)
        for step, (x, y) in enumerate(loader):
            if step == steps:
                break
            x, y = x.to(device), y.to(device)
            logits = trained(x).flatten(1)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            totals += torch.stack(
                [loss.detach() * len(y), (logits.argmax(1) == y).sum(), torch.tensor(len(y), device=device)]
            )
            bar.set_postfix(loss=f"{loss.item():.4f}")
            bar.update()
        bar.close()
        if distributed:
            dist.all_reduce(totals)  # the epoch's loss over every process's batches
        if rank == 0:
            loss, correct, count = totals.tolist()
            print(f"epoch {epoch + 1}: loss {loss / count:.4f}, accuracy {correct / count:.1%}", flush=True)

    if rank == 0:
        model.eval()
        held_out = quadrant_images(args.samples // 4, args.size, args.seed + 1)
        with torch.no_grad():
            images, labels = (t.to(device) for t in held_out.tensors)
            accuracy = (model(images).flatten(1).argmax(1) == labels).float().mean().item()
        print(f"validation accuracy {accuracy:.1%}", flush=True)
        if args.save:
            torch.save(model.state_dict(), args.save)  # the plain network's keys, no "module." prefix
    if distributed:
        # Every rank reaches the same point before the process group goes: without this, rank 1 tore
        # its group down and exited while rank 0 was still validating, and under load gloo's threads
        # aborted that exit ("terminate called without an active exception"). On an exception no
        # rank gets here: the others' next collective fails, and torchrun stops them all.
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
