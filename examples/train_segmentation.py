"""Train a small U-Net written in the grammar to segment generated shapes, on CPU in a few minutes::

    python examples/train_segmentation.py

Every image is noise with a few bright discs and squares at random places and sizes; the target is
the mask of those shapes. Images are made on the fly, so nothing is downloaded. The encoder halves
the size three times, the decoder comes back with ``UnetDecoderBlock`` lines that read the encoder's
lines by tag (any image size works: the validation images are 61x75). Prints the loss and the
intersection over union (IoU) of every epoch, and the IoU on held-out images at the end.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from tqdm import tqdm

import neurlink.nerves as nv
from neurlink.models.resnet import BasicBlock
from neurlink.models.unet import UnetDecoderBlock


def small_unet(classes: int = 1) -> list:
    return [
        ((3, 1), nv.Input()),
        ((16, 1), nv.Conv2d_BN_ReLU[-1, "full"](3)),
        ((24, 2), BasicBlock[-1, "half"]()),
        ((32, 4), BasicBlock[-1, "quarter"]()),
        ((48, 8), BasicBlock()),
        ((32, 4), UnetDecoderBlock[[-1, "quarter"]]()),  # resized to the size of "quarter", concatenated
        ((24, 2), UnetDecoderBlock[[-1, "half"]]()),
        ((16, 1), UnetDecoderBlock[[-1, "full"]]()),
        ((classes, 1), nv.Conv2d(1)),  # one logit per pixel
    ]


def shapes(count: int, height: int, width: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` noisy images with 1 to 3 bright discs or squares, and their masks (N, 1, H, W)."""
    rows = torch.arange(height).view(1, height, 1).float()
    cols = torch.arange(width).view(1, 1, width).float()
    masks = torch.zeros(count, height, width, dtype=torch.bool)
    for _ in range(3):
        present = torch.rand(count, 1, 1, generator=generator) < 0.7
        cy = torch.rand(count, 1, 1, generator=generator) * height
        cx = torch.rand(count, 1, 1, generator=generator) * width
        radius = (0.08 + 0.12 * torch.rand(count, 1, 1, generator=generator)) * min(height, width)
        disc = torch.rand(count, 1, 1, generator=generator) < 0.5
        inside = torch.where(
            disc,
            (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2,
            ((rows - cy).abs() <= radius) & ((cols - cx).abs() <= radius),
        )
        masks |= inside & present
    colour = 0.5 + torch.rand(count, 3, 1, 1, generator=generator)
    images = torch.randn(count, 3, height, width, generator=generator) * 0.6 + masks.unsqueeze(1) * colour
    return images, masks.unsqueeze(1).float()


def iou(logits: torch.Tensor, masks: torch.Tensor) -> float:
    predicted, truth = logits > 0, masks > 0.5
    union = (predicted | truth).sum().item()
    return (predicted & truth).sum().item() / union if union else 1.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=48, help="side of the training images")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> float:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    model = nv.build(small_unet())
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f"training {sum(p.numel() for p in model.parameters())} parameters", flush=True)
    for epoch in range(args.epochs):
        model.train()
        total_loss, total_iou = 0.0, 0.0
        bar = tqdm(range(args.steps), desc=f"epoch {epoch + 1}/{args.epochs}", leave=False)
        for _ in bar:
            images, masks = shapes(args.batch_size, args.size, args.size, generator)
            logits = model(images)
            loss = F.binary_cross_entropy_with_logits(logits, masks)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
            total_iou += iou(logits.detach(), masks)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        print(f"epoch {epoch + 1}: loss {total_loss / args.steps:.4f}, IoU {total_iou / args.steps:.1%}", flush=True)
    model.eval()
    images, masks = shapes(64, 61, 75, torch.Generator().manual_seed(args.seed + 1))  # another size
    with torch.no_grad():
        score = iou(model(images), masks)
    print(f"validation IoU {score:.1%} (61x75 images)", flush=True)
    return score


if __name__ == "__main__":
    main()
