"""Using and training the YOLO detectors: boxes from their output, their training loss, and mAP@0.5.

A detector in eval mode returns one tensor ``(N, 4 + classes, anchors)``: per anchor a box
``(cx, cy, w, h)`` in the input's pixels, then one probability per class. :func:`postprocess` turns
it into boxes per image, after a score threshold and non-maximum suppression:

>>> import torch
>>> from neurlink.models.detection import postprocess
>>> output = torch.tensor([[  # one image, 2 classes, 3 anchors
...     [20.0, 22.0, 80.0],  # cx
...     [20.0, 20.0, 80.0],  # cy
...     [10.0, 10.0, 30.0],  # w
...     [10.0, 10.0, 30.0],  # h
...     [0.9, 0.8, 0.1],  # class 0
...     [0.1, 0.1, 0.6],  # class 1
... ]])
>>> (found,) = postprocess(output)
>>> found["boxes"]  # the second anchor overlaps the first (IoU 0.67 < 0.7) and is kept
tensor([[15., 15., 25., 25.],
        [17., 15., 27., 25.],
        [65., 65., 95., 95.]])
>>> found["scores"], found["labels"]
(tensor([0.9000, 0.8000, 0.6000]), tensor([0, 0, 1]))

In training mode it returns the raw map of each level (strides 8, 16, 32), which
:class:`DetectionLoss` takes with the ground truth, and :func:`mean_average_precision` scores
the boxes :func:`postprocess` finds against it:

>>> from neurlink.models.detection import DetectionLoss, mean_average_precision
>>> criterion = DetectionLoss(num_classes=2)
>>> maps = [torch.zeros(1, 64 + 2, 64 // s, 64 // s, requires_grad=True) for s in (8, 16, 32)]
>>> truth = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 30.0]]), "labels": torch.tensor([1])}]
>>> losses = criterion(maps, truth)  # (total, box, cls, dfl): total = box + cls + dfl, each with its gain
>>> losses.total.backward()
>>> round(losses.cls.item(), 2)  # 84 anchors x 2 classes at probability 0.5: gain 0.5 x 168 x ln 2
58.22
>>> mean_average_precision([{"boxes": torch.tensor([[9.0, 8.0, 40.0, 31.0]]), "scores": torch.tensor([0.7]),
...                          "labels": torch.tensor([1])}], truth)
1.0

The boxes are ``(x1, y1, x2, y2)`` in the input's pixels throughout (torchvision's convention);
``torchvision.ops.box_convert`` converts others. :func:`postprocess` needs torchvision (its NMS);
the loss and the metric are torch alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError, NerveArgumentError, a_kind
from ..nerves._args import positive_int, probability
from .yolo import anchor_points, anchor_strides

__all__ = [
    "postprocess",
    "DetectionLoss",
    "DetectionLosses",
    "Assignment",
    "assign_targets",
    "complete_iou",
    "distribution_focal_loss",
    "mean_average_precision",
]


# --- boxes from the eval output -------------------------------------------------------------------


def postprocess(
    output: Tensor,
    score_threshold: float = 0.25,
    iou_threshold: float = 0.7,
    max_detections: int = 300,
    class_agnostic: bool = False,
    multi_label: bool = False,
) -> list[dict[str, Tensor]]:
    """The detections of every image in a detector's eval output ``(N, 4 + classes, anchors)``.

    Returns one dict per image: ``"boxes"`` ``(K, 4)`` as ``(x1, y1, x2, y2)`` pixels, ``"scores"``
    ``(K,)`` and ``"labels"`` ``(K,)`` (int64), sorted by decreasing score, at most ``max_detections``.

    Each anchor gives its best class only (Ultralytics' ``predict`` does the same), kept when that
    class's probability is above ``score_threshold``; ``multi_label=True`` keeps every class above it
    instead (one detection per anchor and class, as Ultralytics' validation does). Then
    ``torchvision.ops.batched_nms`` drops a box that overlaps a better one of its class by IoU above
    ``iou_threshold`` (of any class with ``class_agnostic=True``). The defaults are Ultralytics' for
    prediction (0.25, 0.7, 300).
    """
    from torchvision.ops import batched_nms  # torchvision is not a dependency of the core library

    owner = "postprocess"
    probability("score_threshold", score_threshold, owner)
    probability("iou_threshold", iou_threshold, owner)
    positive_int("max_detections", max_detections, owner)
    if isinstance(output, (list, tuple)):
        raise InputError(
            f"{owner}: got {len(output)} tensors, the head's maps: a detector's output in training mode, or the"
            " output of lines built with nv.build (which do not decode the maps)",
            allowed="the eval output, a tensor (N, 4 + classes, anchors): net.eval() before the forward, and lines"
            " built with neurlink.models.yolo.Detector(lines) (or net[-1].decode(maps))",
        )
    if not isinstance(output, Tensor) or output.dim() != 3 or output.shape[1] < 5:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise InputError(f"{owner}: output {shape} is not (N, 4 + classes, anchors)", allowed="a tensor (N, 4 + C, A)")
    found = []
    if output.dtype in (torch.float16, torch.bfloat16):  # torchvision's NMS takes float32 on the CPU
        output = output.float()
    for image in output.detach():
        boxes = _xywh_to_xyxy(image[:4].T)
        probabilities = image[4:].T  # (anchors, classes)
        if multi_label:
            anchors, labels = (probabilities > score_threshold).nonzero(as_tuple=True)
            scores = probabilities[anchors, labels]
        else:
            scores, labels = probabilities.max(1)
            anchors = (scores > score_threshold).nonzero().squeeze(1)
            scores, labels = scores[anchors], labels[anchors]
        boxes = boxes[anchors]
        groups = torch.zeros_like(labels) if class_agnostic else labels
        keep = batched_nms(boxes, scores, groups, iou_threshold)[:max_detections]  # by decreasing score
        found.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return found


def _xywh_to_xyxy(boxes: Tensor) -> Tensor:
    centre, size = boxes[..., :2], boxes[..., 2:]
    return torch.cat((centre - size / 2, centre + size / 2), -1)


# --- the loss ---------------------------------------------------------------------------------------


def complete_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """The complete IoU (CIoU, Zheng et al. 2020) of ``(x1, y1, x2, y2)`` boxes, pair by pair
    (shapes ``(..., 4)`` that broadcast): IoU less the centres' squared distance over the squared
    diagonal of the smallest box enclosing both, less ``alpha * v``, where ``v`` measures how far the
    aspect ratios differ. ``1 - complete_iou`` is the CIoU loss; ``alpha`` is the paper's trade-off
    weight and takes no gradient (as in the paper's code and torchvision's ``complete_box_iou_loss``)."""
    x1, y1, x2, y2 = boxes1.unbind(-1)
    u1, v1, u2, v2 = boxes2.unbind(-1)
    width1, height1 = x2 - x1, y2 - y1
    width2, height2 = u2 - u1, v2 - v1
    overlap = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0) * (
        torch.minimum(y2, v2) - torch.maximum(y1, v1)
    ).clamp(min=0)
    iou = overlap / (width1 * height1 + width2 * height2 - overlap + eps)
    diagonal = (torch.maximum(x2, u2) - torch.minimum(x1, u1)) ** 2 + (
        torch.maximum(y2, v2) - torch.minimum(y1, v1)
    ) ** 2
    centres = ((u1 + u2 - x1 - x2) ** 2 + (v1 + v2 - y1 - y2) ** 2) / 4
    v = (4 / math.pi**2) * (torch.atan(width2 / (height2 + eps)) - torch.atan(width1 / (height1 + eps))) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + 1 + eps)
    return iou - centres / (diagonal + eps) - alpha * v


def distribution_focal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """GFL's distribution focal loss (Li et al. 2020) of distributions ``logits (..., bins)`` over the
    distances ``0, 1, ..., bins - 1`` for targets ``(...)`` in the same units.

    A target ``y`` between the bins ``i = floor(y)`` and ``i + 1`` is learnt as the two-bin mixture
    that has it as its mean: ``-((i + 1 - y) log p_i + (y - i) log p_{i+1})``, with ``p`` the softmax.
    Targets are clamped to ``[0, bins - 1.01]`` (the last bin has no right neighbour; the 0.01 is the
    YOLOv8 recipe's)."""
    bins = logits.shape[-1]
    target = target.clamp(0, bins - 1 - 0.01)
    left = target.floor().long()
    weight_left = left + 1 - target
    log_p = F.log_softmax(logits, -1)
    log_left = log_p.gather(-1, left.unsqueeze(-1)).squeeze(-1)
    log_right = log_p.gather(-1, (left + 1).unsqueeze(-1)).squeeze(-1)
    return -(log_left * weight_left + log_right * (1 - weight_left))


class Assignment(NamedTuple):
    """What :func:`assign_targets` gives each of an image's ``A`` anchors."""

    foreground: Tensor  #: (A,) bool: the anchor learns a box
    gt_index: Tensor  #: (A,) int64: the ground-truth box it learns (0 for the background)
    boxes: Tensor  #: (A, 4): that box, ``(x1, y1, x2, y2)`` pixels (the first box for the background)
    scores: Tensor  #: (A, classes): the soft class targets, zero but for the box's class on the foreground


@torch.no_grad()
def assign_targets(
    scores: Tensor,
    boxes: Tensor,
    points: Tensor,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    *,
    topk: int = 10,
    alpha: float = 0.5,
    beta: float = 6.0,
    min_side: float = 16.0,
    eps: float = 1e-9,
) -> Assignment:
    """Task-aligned assignment (TOOD, Feng et al. 2021) of one image's anchors to its ground truth.

    ``scores`` ``(A, classes)`` are the predicted probabilities, ``boxes`` ``(A, 4)`` the predicted
    boxes and ``points`` ``(A, 2)`` the anchor centres, all in pixels; ``gt_boxes`` ``(M, 4)`` and
    ``gt_labels`` ``(M,)`` the ground truth. For every ground-truth box, its candidates are the
    anchors whose centres lie inside it (a side shorter than ``min_side`` widened to it about the
    centre, so that a small object still has anchors: YOLOv8's rule, 16 pixels); of those,
    the ``topk`` with the largest alignment ``t = score ** alpha * overlap ** beta`` (``score`` the
    anchor's probability of the box's class, ``overlap`` the CIoU of its predicted box with the
    ground truth, clamped at 0: YOLOv8's choice, where TOOD takes the IoU) become its positives. An
    anchor claimed by several boxes goes to the one its prediction overlaps most. Each positive's
    class target is ``t`` rescaled per ground-truth box so that its best positive gets the largest
    overlap among its positives.
    """
    anchors, classes = scores.shape
    count = gt_boxes.shape[0]
    if count == 0:
        return Assignment(
            torch.zeros(anchors, dtype=torch.bool, device=scores.device),
            torch.zeros(anchors, dtype=torch.long, device=scores.device),
            torch.zeros_like(boxes),
            torch.zeros_like(scores),
        )
    centre = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    half = (gt_boxes[:, 2:] - gt_boxes[:, :2]).clamp(min=min_side) / 2
    low, high = (centre - half)[:, None], (centre + half)[:, None]  # (M, 1, 2)
    inside = ((points - low).amin(-1) > eps) & ((high - points).amin(-1) > eps)  # (M, A)
    overlaps = complete_iou(gt_boxes[:, None], boxes[None]).clamp(min=0) * inside
    alignment = scores[:, gt_labels].T.pow(alpha) * overlaps.pow(beta)  # (M, A), zero outside
    best = alignment.topk(min(topk, anchors), dim=1).indices
    positive = torch.zeros_like(inside).scatter_(1, best, True) & inside
    contested = positive.sum(0) > 1
    closest = F.one_hot(overlaps.argmax(0), count).T.bool()  # the box each anchor's prediction overlaps most
    positive = torch.where(contested, closest, positive)
    foreground = positive.any(0)
    gt_index = positive.byte().argmax(0)  # the first positive box (the only one now)
    alignment, overlaps = alignment * positive, overlaps * positive
    rescaled = alignment * overlaps.amax(1, keepdim=True) / (alignment.amax(1, keepdim=True) + eps)
    target_scores = F.one_hot(gt_labels[gt_index], classes).to(scores.dtype) * rescaled.amax(0)[:, None]
    return Assignment(foreground, gt_index, gt_boxes[gt_index], target_scores * foreground[:, None])


class DetectionLosses(NamedTuple):
    """The loss of a batch and its parts, each with its gain: ``total = box + cls + dfl``."""

    total: Tensor
    box: Tensor  #: the CIoU loss of the positives, weighted by their class targets
    cls: Tensor  #: binary cross-entropy of every anchor's class logits against the soft targets
    dfl: Tensor  #: the distribution focal loss of the positives' box distributions


class DetectionLoss(nn.Module):
    """YOLOv8's training loss, from its raw per-level maps and the ground truth of every image.

    ``loss(maps, targets)``: ``maps`` is what the detector returns in training mode, one tensor
    ``(N, 4 * reg_max + num_classes, H_s, W_s)`` per stride in ``strides``: for each of the distances
    left, top, right and bottom from the anchor centre ``((j + 0.5) * s, (i + 0.5) * s)``, logits over
    ``reg_max`` bins (distances 0 to ``reg_max - 1`` strides, the box is their expected value), then
    the class logits. ``targets`` holds per image a dict ``{"boxes": (M, 4), "labels": (M,)}`` or a
    pair ``(boxes, labels)``, boxes ``(x1, y1, x2, y2)`` in pixels (``M`` may be 0).

    The anchors are assigned by :func:`assign_targets` (top ``topk``, ``alpha``, ``beta``). The class
    loss is the binary cross-entropy of every anchor's logits against the soft targets; the box loss
    ``1 -`` :func:`complete_iou` and the :func:`distribution_focal_loss` (mean of the four sides) of
    every positive, each weighted by its class target. All three are divided by the sum of the class
    targets over the batch (at least 1) and multiplied by their gains (``box_gain`` 7.5,
    ``cls_gain`` 0.5, ``dfl_gain`` 1.5: YOLOv8's). Returns :class:`DetectionLosses`. Ultralytics'
    trainer backpropagates the batch size times this total; with Adam or AdamW the scale does not matter.
    """

    def __init__(
        self,
        num_classes: int,
        strides: Sequence[int] = (8, 16, 32),
        reg_max: int = 16,
        *,
        box_gain: float = 7.5,
        cls_gain: float = 0.5,
        dfl_gain: float = 1.5,
        topk: int = 10,
        alpha: float = 0.5,
        beta: float = 6.0,
    ) -> None:
        super().__init__()
        owner = "DetectionLoss"
        self.num_classes = positive_int("num_classes", num_classes, owner)
        if not isinstance(strides, (tuple, list)) or not strides:
            raise NerveArgumentError(f"{owner}: strides={strides!r} is not a sequence", allowed="e.g. (8, 16, 32)")
        # whole strides, given as ints or as a head's floats (DetectionLoss(nc, strides=net[-1].strides))
        self.strides = tuple(
            positive_int("strides", int(stride) if isinstance(stride, float) and stride.is_integer() else stride, owner)
            for stride in strides
        )
        self.reg_max = positive_int("reg_max", reg_max, owner)
        if reg_max < 2:
            raise NerveArgumentError(f"{owner}: reg_max={reg_max!r} gives no distribution", allowed="reg_max >= 2")
        self.topk = positive_int("topk", topk, owner)
        self.box_gain, self.cls_gain, self.dfl_gain = box_gain, cls_gain, dfl_gain
        self.alpha, self.beta = alpha, beta
        # candidates' smallest side: the second stride, 16 of (8, 16, 32) (YOLOv8's; the only one of a single level)
        self.min_side = float(self.strides[1] if len(self.strides) > 1 else self.strides[0])

    def forward(self, maps: Sequence[Tensor], targets: Sequence[Any]) -> DetectionLosses:
        batch = self._check_maps(maps)
        ground_truth = [_boxes_and_labels(target, index, self.num_classes) for index, target in enumerate(targets)]
        if len(ground_truth) != batch:
            raise InputError(
                f"DetectionLoss: {len(ground_truth)} targets for a batch of {batch} images",
                allowed="one target (boxes, labels) per image, an empty one for an image without objects",
            )
        logits_box, logits_cls, boxes, points, strides = _decode(maps, self.strides, self.reg_max)
        scores, pixel_boxes = logits_cls.detach().sigmoid(), boxes.detach() * strides
        assigned = [
            assign_targets(
                scores[i],
                pixel_boxes[i],
                points * strides,
                gt_boxes.to(boxes),
                gt_labels.to(boxes.device),
                topk=self.topk,
                alpha=self.alpha,
                beta=self.beta,
                min_side=self.min_side,
            )
            for i, (gt_boxes, gt_labels) in enumerate(ground_truth)
        ]
        foreground = torch.stack([a.foreground for a in assigned])  # (N, A)
        target_scores = torch.stack([a.scores for a in assigned])
        target_boxes = torch.stack([a.boxes for a in assigned]) / strides  # in strides
        normaliser = target_scores.sum().clamp(min=1)

        cls = F.binary_cross_entropy_with_logits(logits_cls, target_scores, reduction="sum") / normaliser
        weight = target_scores[foreground].sum(-1)  # (P,): each positive's class target
        anchor = foreground.nonzero()[:, 1]
        box = ((1 - complete_iou(boxes[foreground], target_boxes[foreground])) * weight).sum() / normaliser
        goal = torch.cat(
            (points[anchor] - target_boxes[foreground][:, :2], target_boxes[foreground][:, 2:] - points[anchor]), -1
        )
        dfl = (distribution_focal_loss(logits_box[foreground], goal).mean(-1) * weight).sum() / normaliser
        box, cls, dfl = box * self.box_gain, cls * self.cls_gain, dfl * self.dfl_gain
        return DetectionLosses(box + cls + dfl, box, cls, dfl)

    def _check_maps(self, maps: Sequence[Tensor]) -> int:
        channels = 4 * self.reg_max + self.num_classes
        allowed = (
            f"the detector's training-mode output: {len(self.strides)} tensors (N, {channels}, H_s, W_s), "
            f"one per stride {self.strides} (4 * reg_max={self.reg_max} box bins + num_classes={self.num_classes})"
        )
        if isinstance(maps, Tensor):
            hint = " (an eval output: call net.train() before the forward)" if maps.dim() == 3 else ""
            raise InputError(f"DetectionLoss: maps is one tensor {tuple(maps.shape)}{hint}", allowed=allowed)
        if not isinstance(maps, (list, tuple)) or len(maps) != len(self.strides):
            got = f"{len(maps)} maps" if isinstance(maps, (list, tuple)) else type(maps).__name__
            raise InputError(f"DetectionLoss: got {got} for strides {self.strides}", allowed=allowed)
        for level, (tensor, stride) in enumerate(zip(maps, self.strides)):
            if not isinstance(tensor, Tensor) or tensor.dim() != 4 or tensor.shape[1] != channels:
                shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
                raise InputError(
                    f"DetectionLoss: the map of stride {stride} (level {level}) is {shape}", allowed=allowed
                )
            if tensor.shape[0] != maps[0].shape[0]:
                raise InputError(
                    f"DetectionLoss: the maps' batch sizes differ: {[tuple(t.shape) for t in maps]}", allowed=allowed
                )
        for dim in (2, 3):  # a map of n cells at stride s comes from an image of s * (n - 1) + 1 to s * n pixels
            low = max(stride * (t.shape[dim] - 1) + 1 for t, stride in zip(maps, self.strides))
            high = min(stride * t.shape[dim] for t, stride in zip(maps, self.strides))
            if low > high:
                sizes = ", ".join(f"{t.shape[dim]} at stride {s}" for t, s in zip(maps, self.strides))
                raise InputError(
                    f"DetectionLoss: maps of {sizes} cannot come from one image: the strides are not the maps'",
                    allowed="strides= in the head's order (DetectionLoss(num_classes, strides=net[-1].strides))",
                )
        return maps[0].shape[0]


def _decode(maps: Sequence[Tensor], strides: Sequence[int], bins: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The training maps of all levels as the box logits ``(N, A, 4, bins)``, the class logits
    ``(N, A, classes)``, the boxes ``(N, A, 4)`` (``x1, y1, x2, y2``), the anchor centres ``(A, 2)``,
    all three in units of each anchor's stride, and the strides ``(A, 1)``: what the eval output
    holds, before the boxes are scaled to pixels and the logits made probabilities."""
    flat = torch.cat([level.flatten(2) for level in maps], 2).transpose(1, 2)  # (N, A, 4 * bins + classes)
    logits_box, logits_cls = flat.split((4 * bins, flat.shape[-1] - 4 * bins), -1)
    logits_box = logits_box.unflatten(-1, (4, bins))
    points = anchor_points(list(maps)).T  # (A, 2): (j + 0.5, i + 0.5), level by level, row by row
    per_anchor = anchor_strides(list(maps), tuple(float(stride) for stride in strides)).T
    distances = logits_box.softmax(-1) @ torch.arange(bins, dtype=flat.dtype, device=flat.device)  # the mean bin
    boxes = torch.cat((points - distances[..., :2], points + distances[..., 2:]), -1)
    return logits_box, logits_cls, boxes, points, per_anchor


def _boxes_and_labels(target: Any, index: int, num_classes: int | None) -> tuple[Tensor, Tensor]:
    """An image's ground truth as ``(boxes (M, 4) float, labels (M,) int64)``, from a dict or a pair."""
    allowed = 'per image {"boxes": (M, 4) (x1, y1, x2, y2) pixels, "labels": (M,) ints} or a pair (boxes, labels)'
    if isinstance(target, Mapping) and "boxes" in target and "labels" in target:
        boxes, labels = target["boxes"], target["labels"]
    elif isinstance(target, (tuple, list)) and len(target) == 2:
        boxes, labels = target
    else:
        raise InputError(f"target {index} is {_describe(target)}", allowed=allowed)
    boxes, labels = torch.as_tensor(boxes), torch.as_tensor(labels)
    if boxes.numel() == 0 and labels.numel() == 0:  # an image without objects, however written: [], zeros(0, 4)
        boxes, labels = boxes.reshape(0, 4), labels.reshape(0).long()
    if boxes.dim() != 2 or boxes.shape[1] != 4 or labels.shape != (boxes.shape[0],):
        raise InputError(
            f"target {index}: boxes {tuple(boxes.shape)} and labels {tuple(labels.shape)} are not (M, 4) and (M,)",
            allowed=allowed,
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:  # a float label is a box coordinate misplaced
        raise InputError(f"target {index}: labels of dtype {labels.dtype}", allowed="integer class indices")
    if num_classes is not None and ((labels < 0) | (labels >= num_classes)).any():
        raise InputError(
            f"target {index}: labels {labels.tolist()} outside the {num_classes} classes",
            allowed=f"0 <= label < {num_classes}",
        )
    if not torch.isfinite(boxes).all():
        raise InputError(f"target {index}: boxes {boxes.tolist()} are not all finite", allowed=allowed)
    if boxes.numel() and boxes.abs().max() <= 1.0:  # no box of a pixel or more: coordinates normalised to 0..1
        raise InputError(
            f"target {index}: every box lies within 1 pixel of the corner ({boxes.tolist()[:2]}...): boxes"
            " normalised to the image's size",
            allowed="(x1, y1, x2, y2) in pixels: multiply normalised boxes by (width, height, width, height)",
        )
    flipped = (boxes[:, 2:] < boxes[:, :2]).any(1)
    if flipped.any():
        raise InputError(
            f"target {index}: box {boxes[flipped][0].tolist()} has x2 < x1 or y2 < y1",
            allowed="(x1, y1, x2, y2) pixels; from (cx, cy, w, h): torchvision.ops.box_convert(boxes, 'cxcywh', 'xyxy')",
        )
    return boxes.float() if not boxes.is_floating_point() else boxes, labels.long()


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a tensor {tuple(value.shape)}"
    if isinstance(value, Mapping):
        return f"a dict with keys {sorted(map(str, value))}"
    return a_kind(type(value).__name__)


# --- the metric -------------------------------------------------------------------------------------


def mean_average_precision(
    predictions: Sequence[Mapping[str, Tensor]], targets: Sequence[Any], iou_threshold: float = 0.5
) -> float:
    """The mean over classes of the average precision at one IoU threshold (mAP@0.5 by default), as
    COCO computes it: 101-point interpolation.

    ``predictions`` holds per image a dict of ``"boxes"`` ``(K, 4)``, ``"scores"`` ``(K,)`` and
    ``"labels"`` ``(K,)`` (what :func:`postprocess` returns); ``targets`` per image the ground truth,
    a dict of ``"boxes"`` and ``"labels"`` or a pair ``(boxes, labels)``; boxes ``(x1, y1, x2, y2)``.

    Per class, the detections of all images are taken by decreasing score; each is a true positive
    when a ground-truth box of its class and image not yet matched overlaps it by IoU at least
    ``iou_threshold`` (the one overlapping most), else a false positive (a second detection of a
    box among them). The precision at each recall is made the best at that recall or above, and
    read at the recalls 0, 0.01, ..., 1 (0 past the largest recall reached); AP is their mean. The
    classes averaged are those with ground truth (a class only predicted counts nowhere, as in
    COCO); without any ground-truth box the result is ``nan``.
    """
    probability("iou_threshold", iou_threshold, "mean_average_precision")
    if len(predictions) != len(targets):
        raise InputError(
            f"mean_average_precision: {len(predictions)} predictions for {len(targets)} targets",
            allowed="one prediction dict and one target per image",
        )
    truth = [_boxes_and_labels(target, index, None) for index, target in enumerate(targets)]
    found = [_predicted(prediction, index) for index, prediction in enumerate(predictions)]
    classes = sorted({int(label) for _, labels in truth for label in labels.tolist()})
    if not classes:
        return float("nan")
    precisions = [_average_precision(found, truth, label, iou_threshold) for label in classes]
    return sum(precisions) / len(precisions)


def _predicted(prediction: Any, index: int) -> tuple[Tensor, Tensor, Tensor]:
    if not isinstance(prediction, Mapping) or not {"boxes", "scores", "labels"} <= set(prediction):
        raise InputError(
            f"prediction {index} is {_describe(prediction)}",
            allowed='per image {"boxes": (K, 4), "scores": (K,), "labels": (K,)}, as postprocess returns',
        )
    boxes, scores, labels = (torch.as_tensor(prediction[key]).detach().cpu() for key in ("boxes", "scores", "labels"))
    if boxes.reshape(-1, 4).shape[0] != scores.numel() or scores.shape != labels.shape or scores.dim() != 1:
        raise InputError(
            f"prediction {index}: boxes {tuple(boxes.shape)}, scores {tuple(scores.shape)} and labels "
            f"{tuple(labels.shape)} are not (K, 4), (K,) and (K,)",
            allowed="one box, score and label per detection",
        )
    return boxes.reshape(-1, 4).double(), scores.double(), labels.long()


def _average_precision(
    found: list[tuple[Tensor, Tensor, Tensor]], truth: list[tuple[Tensor, Tensor]], label: int, iou_threshold: float
) -> float:
    gt_boxes = [boxes.detach().cpu().double()[labels.cpu() == label] for boxes, labels in truth]
    total = sum(len(boxes) for boxes in gt_boxes)
    detections = [
        (score, image, box)
        for image, (boxes, scores, labels) in enumerate(found)
        for box, score in zip(boxes[labels == label], scores[labels == label].tolist())
    ]
    detections.sort(key=lambda detection: -detection[0])  # stable: ties keep the images' order
    matched = [torch.zeros(len(boxes), dtype=torch.bool) for boxes in gt_boxes]
    hits = []
    for _, image, box in detections:
        candidates = gt_boxes[image]
        overlaps = _iou(box, candidates).masked_fill(matched[image], -1.0)
        best = int(overlaps.argmax()) if len(candidates) else -1
        hit = best >= 0 and bool(overlaps[best] >= iou_threshold)
        if hit:
            matched[image][best] = True
        hits.append(hit)
    if not hits:
        return 0.0
    true = torch.tensor(hits, dtype=torch.float64).cumsum(0)
    recall = true / total
    precision = true / torch.arange(1, len(hits) + 1, dtype=torch.float64)
    precision = precision.flip(0).cummax(0).values.flip(0)  # the best precision at this recall or above
    at = torch.searchsorted(recall, torch.linspace(0, 1, 101, dtype=torch.float64), side="left")
    read = torch.where(at < len(hits), precision[at.clamp(max=len(hits) - 1)], torch.zeros(()))
    return float(read.mean())


def _iou(box: Tensor, boxes: Tensor) -> Tensor:
    """The IoU of one box ``(4,)`` with each of ``boxes (M, 4)``."""
    low, high = torch.maximum(box[:2], boxes[:, :2]), torch.minimum(box[2:], boxes[:, 2:])
    overlap = (high - low).clamp(min=0).prod(-1)
    area = (box[2:] - box[:2]).prod()
    areas = (boxes[:, 2:] - boxes[:, :2]).prod(-1)
    return overlap / (area + areas - overlap).clamp(min=torch.finfo(boxes.dtype).tiny)
