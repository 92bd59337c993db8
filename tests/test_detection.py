"""neurlink.models.detection: postprocess against torchvision's NMS and Ultralytics' non_max_suppression,
the loss against Ultralytics' v8DetectionLoss (values and gradients) and hand-checkable cases, mAP@0.5 on
cases of known AP, and the training example for two steps."""

import importlib.util
import math
import types
from pathlib import Path

import pytest
import torch
import torchvision
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.nms import non_max_suppression

from neurlink.errors import InputError, NerveArgumentError
from neurlink.models.detection import (
    DetectionLoss,
    assign_targets,
    complete_iou,
    distribution_focal_loss,
    mean_average_precision,
    postprocess,
)
from neurlink.models.detection import _decode as decode

STRIDES = (8, 16, 32)


def eval_tensor(boxes_xywh, probabilities):
    """(1, 4 + C, A) from per-anchor boxes (A, 4) and probabilities (A, C)."""
    return torch.cat([torch.tensor(boxes_xywh, dtype=torch.float), torch.tensor(probabilities)], 1).T[None]


def random_output(generator, batch=2, classes=4, anchors=300, size=160.0):
    centres = torch.rand(batch, 2, anchors, generator=generator) * size
    sides = 4 + torch.rand(batch, 2, anchors, generator=generator) * size / 3
    probabilities = torch.rand(batch, classes, anchors, generator=generator) ** 3  # a tail above 0.25
    return torch.cat([centres, sides, probabilities], 1)


# --- postprocess ------------------------------------------------------------------------------------


def test_postprocess_converts_boxes_thresholds_scores_and_sorts():
    output = eval_tensor(
        [[10, 20, 4, 6], [50, 50, 10, 10], [80, 80, 10, 10], [30, 30, 10, 10]],
        [[0.3, 0.1], [0.1, 0.25], [0.2, 0.9], [0.26, 0.0]],
    )
    (found,) = postprocess(output)
    # the second anchor's best score is exactly the threshold: kept only above it
    assert found["boxes"].tolist() == [[75, 75, 85, 85], [8, 17, 12, 23], [25, 25, 35, 35]]
    assert found["scores"].tolist() == pytest.approx([0.9, 0.3, 0.26])
    assert found["labels"].tolist() == [1, 0, 0] and found["labels"].dtype == torch.int64


def test_postprocess_suppresses_within_a_class_unless_class_agnostic():
    # IoU of the first two boxes: 90 / 110 = 0.82 > 0.7; the third overlaps the first as much, another class
    output = eval_tensor([[20, 20, 10, 10], [21, 20, 10, 10], [19, 20, 10, 10]], [[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]])
    (found,) = postprocess(output)
    assert found["labels"].tolist() == [0, 1] and found["scores"].tolist() == pytest.approx([0.9, 0.7])
    (found,) = postprocess(output, class_agnostic=True)
    assert found["labels"].tolist() == [0]
    (found,) = postprocess(output, iou_threshold=0.9)  # 0.82 is below it: nothing suppressed
    assert found["scores"].tolist() == pytest.approx([0.9, 0.8, 0.7])


def test_postprocess_multi_label_keeps_every_class_above_the_threshold():
    output = eval_tensor([[20, 20, 10, 10]], [[0.6, 0.5, 0.1]])
    assert postprocess(output)[0]["labels"].tolist() == [0]
    (found,) = postprocess(output, multi_label=True)
    assert found["labels"].tolist() == [0, 1] and found["boxes"].tolist() == [[15, 15, 25, 25]] * 2


def test_postprocess_keeps_the_best_max_detections_and_returns_empty_results():
    far_apart = [[20 * i + 10, 10, 8, 8] for i in range(5)]
    output = eval_tensor(far_apart, [[0.3], [0.9], [0.5], [0.7], [0.4]])
    (found,) = postprocess(output, max_detections=2)
    assert found["scores"].tolist() == pytest.approx([0.9, 0.7]) and found["boxes"][:, 0].tolist() == [26, 66]
    (empty,) = postprocess(output, score_threshold=0.95)
    assert empty["boxes"].shape == (0, 4) and empty["scores"].shape == (0,) and empty["labels"].dtype == torch.int64


def test_postprocess_equals_torchvision_nms_of_the_kept_anchors():
    output = random_output(torch.Generator().manual_seed(0))
    for image, found in zip(output, postprocess(output, class_agnostic=True, iou_threshold=0.5)):
        scores, labels = image[4:].max(0)
        kept = scores > 0.25
        boxes = torchvision.ops.box_convert(image[:4].T[kept], "cxcywh", "xyxy")
        order = torchvision.ops.nms(boxes, scores[kept], 0.5)
        assert 5 < len(order) < kept.sum()  # the case suppresses some and keeps some
        torch.testing.assert_close(found["boxes"], boxes[order])
        torch.testing.assert_close(found["scores"], scores[kept][order])
        assert torch.equal(found["labels"], labels[kept][order])


@pytest.mark.parametrize("multi_label", [False, True])
def test_postprocess_equals_ultralytics_non_max_suppression(multi_label):
    output = random_output(torch.Generator().manual_seed(1))
    theirs = non_max_suppression(output.clone(), 0.25, 0.7, multi_label=multi_label, max_det=40, max_time_img=60)
    ours = postprocess(output, 0.25, 0.7, max_detections=40, multi_label=multi_label)
    for found, reference in zip(ours, theirs):
        assert len(found["boxes"]) == len(reference) == 40
        torch.testing.assert_close(found["boxes"], reference[:, :4])
        torch.testing.assert_close(found["scores"], reference[:, 4])
        assert found["labels"].tolist() == reference[:, 5].long().tolist()


def test_postprocess_names_the_mistakes():
    maps = [torch.zeros(1, 67, 8, 8)]
    with pytest.raises(InputError, match=r"training mode(.|\n)*net.eval\(\)"):
        postprocess(maps)
    with pytest.raises(InputError, match=r"output \(4, 300\) is not \(N, 4 \+ classes, anchors\)"):
        postprocess(torch.zeros(4, 300))
    with pytest.raises(NerveArgumentError, match="score_threshold=1.5 is not a probability"):
        postprocess(torch.zeros(1, 6, 10), score_threshold=1.5)
    with pytest.raises(NerveArgumentError, match="max_detections=0"):
        postprocess(torch.zeros(1, 6, 10), max_detections=0)


# --- decoding: the training maps are what the eval output holds -------------------------------------


def ultralytics_model(classes):
    model = DetectionModel("yolov8n.yaml", nc=classes, verbose=False)
    model.args = types.SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)  # Ultralytics' default gains
    return model


def as_maps(raw, batch):
    """Ultralytics' training dict (boxes (N, 64, A), scores (N, C, A), feats) as the per-level maps."""
    maps, start = [], 0
    for feature in raw["feats"]:
        height, width = feature.shape[-2:]
        level = slice(start, start + height * width)
        start += height * width
        maps.append(torch.cat([raw["boxes"][..., level], raw["scores"][..., level]], 1).unflatten(2, (height, width)))
    assert start == raw["boxes"].shape[-1] and maps[0].shape[0] == batch
    return maps


def test_the_maps_decode_to_ultralytics_eval_output():
    torch.manual_seed(0)
    model = ultralytics_model(3).eval()
    with torch.no_grad():
        for name, parameter in model.model[-1].named_parameters():  # a head far from its init: boxes of every size
            if not name.startswith("dfl."):  # (the fixed 0..15 of the expected value)
                parameter.normal_(0, 0.3)
        output, raw = model(torch.randn(2, 3, 64, 96))  # 8x12, 4x6, 2x3 anchors
    _, logits, boxes, points, strides = decode(as_maps(raw, 2), STRIDES, 16)
    xywh = torchvision.ops.box_convert(boxes * strides, "xyxy", "cxcywh")
    # (pixels up to ~100: torch's kernels round differently with 1 and 2 threads)
    torch.testing.assert_close(torch.cat([xywh, logits.sigmoid()], -1).transpose(1, 2), output, rtol=1e-5, atol=1e-4)
    assert points[:2].tolist() == [[0.5, 0.5], [1.5, 0.5]] and points[12].tolist() == [0.5, 1.5]  # row-major
    assert strides[:, 0].tolist() == [8] * 96 + [16] * 24 + [32] * 6


# --- the loss -----------------------------------------------------------------------------------------


def ultralytics_batch(targets, height, width):
    """Ultralytics' batch dict: image index, class and normalised (cx, cy, w, h) of every box."""
    index = torch.cat([torch.full((len(labels),), float(i)) for i, (_, labels) in enumerate(targets)])
    labels = torch.cat([labels for _, labels in targets]).float()
    boxes = torchvision.ops.box_convert(torch.cat([boxes for boxes, _ in targets]), "xyxy", "cxcywh")
    return {"batch_idx": index, "cls": labels, "bboxes": boxes / torch.tensor([width, height, width, height])}


TARGETS = [  # overlapping boxes, a box smaller than every stride, an empty image, a box of the whole image
    (
        torch.tensor([[10.0, 12.0, 60.0, 70.0], [30.0, 20.0, 90.0, 80.0], [100.0, 40.0, 106.0, 45.0]]),
        torch.tensor([0, 2, 1]),
    ),
    (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)),
    (
        torch.tensor([[0.0, 0.0, 128.0, 96.0], [40.0, 30.0, 70.0, 50.0], [41.0, 29.0, 69.0, 52.0]]),
        torch.tensor([1, 1, 0]),
    ),
]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_loss_and_its_gradients_equal_ultralytics_v8_detection_loss(seed):
    torch.manual_seed(seed)
    model = ultralytics_model(3).train()
    with torch.no_grad():
        raw = model(torch.randn(3, 3, 96, 128))
    # predictions spread well beyond an untrained head's: confident classes, sharp box distributions
    raw = {
        "boxes": raw["boxes"] * 4,
        "scores": raw["scores"] * 4 + 2 * torch.randn_like(raw["scores"]),
        "feats": raw["feats"],
    }
    raw["boxes"].requires_grad_(True)
    raw["scores"].requires_grad_(True)
    theirs, _ = v8DetectionLoss(model).loss(raw, ultralytics_batch(TARGETS, 96, 128))
    theirs.sum().backward()
    maps = [level.detach().requires_grad_(True) for level in as_maps(raw, 3)]
    ours = DetectionLoss(3)(maps, TARGETS)
    ours.total.backward()
    # Ultralytics' trainer takes the batch size times the loss
    torch.testing.assert_close(torch.stack([ours.box, ours.cls, ours.dfl]) * 3, theirs.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.total, ours.box + ours.cls + ours.dfl)
    grads = torch.cat([raw["boxes"].grad, raw["scores"].grad], 1)
    torch.testing.assert_close(torch.cat([m.grad.flatten(2) for m in maps], 2) * 3, grads, rtol=1e-4, atol=1e-7)


def exact_maps(box, label, classes=2, size=64, confidence=8.0):
    """Maps whose every anchor predicts ``box`` (pixels) with sharp two-bin distributions, class ``label``
    at logit ``confidence`` for the anchors inside the box and ``-confidence`` elsewhere."""
    maps = []
    for stride in STRIDES:
        cells = size // stride
        centre = (torch.arange(cells) + 0.5) * stride
        y, x = torch.meshgrid(centre, centre, indexing="ij")
        distances = torch.stack([x - box[0], y - box[1], box[2] - x, box[3] - y]) / stride  # (4, H, W)
        distances = distances.clamp(0, 14.99)
        left = distances.floor()
        bins = torch.arange(16).view(1, 16, 1, 1)
        mass = (left[:, None] + 1 - distances[:, None]) * (bins == left[:, None]) + (
            distances[:, None] - left[:, None]
        ) * (bins == left[:, None] + 1)
        logits_box = (mass + 1e-9).log().reshape(64, cells, cells)
        inside = (x > box[0]) & (x < box[2]) & (y > box[1]) & (y < box[3])
        logits_cls = torch.full((classes, cells, cells), -confidence)
        logits_cls[label] = torch.where(inside, confidence, -confidence)
        maps.append(torch.cat([logits_box, logits_cls])[None].requires_grad_(True))
    return maps


def test_a_perfect_prediction_costs_less_than_a_shifted_or_misclassified_one():
    box = [12.0, 8.0, 44.0, 40.0]
    truth = [(torch.tensor([box]), torch.tensor([1]))]
    criterion = DetectionLoss(2)
    perfect = criterion(exact_maps(box, 1), truth)
    shifted = criterion(exact_maps([b + 6 for b in box], 1), truth)
    wrong_class = criterion(exact_maps(box, 0), truth)
    assert perfect.box.item() < 1e-4  # every positive's box is the ground truth's
    assert perfect.total < shifted.total and perfect.box < shifted.box and perfect.dfl < shifted.dfl
    assert perfect.cls < wrong_class.cls and perfect.box.item() == pytest.approx(wrong_class.box.item(), abs=1e-4)


def test_gradients_reach_every_map_and_an_image_without_objects_trains_only_the_classes():
    maps = [torch.randn(2, 64 + 3, 64 // s, 64 // s, requires_grad=True) for s in STRIDES]
    truth = [(torch.tensor([[4.0, 6.0, 50.0, 40.0]]), torch.tensor([2])), ([], [])]
    losses = DetectionLoss(3)(maps, truth)
    losses.total.backward()
    for level in maps:
        assert level.grad[0].abs().sum() > 0 and torch.isfinite(level.grad).all()
        assert level.grad[1, :64].abs().sum() == 0 and level.grad[1, 64:].abs().sum() > 0
    for level in maps:
        level.grad = None
    empty = DetectionLoss(3)(maps, [([], []), (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))])
    empty.total.backward()
    assert empty.box == 0 and empty.dfl == 0 and empty.cls > 0
    # no positives: the class targets are all zero, and the sum is divided by 1
    logits = torch.cat([level.detach()[:, 64:].flatten(2) for level in maps], 2)
    assert empty.cls.item() == pytest.approx(0.5 * torch.nn.functional.softplus(logits).sum().item(), rel=1e-5)


def grid_points(size, stride):
    centre = (torch.arange(size // stride) + 0.5) * stride
    y, x = torch.meshgrid(centre, centre, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], -1)


def test_the_assigner_takes_the_topk_best_aligned_anchors_inside_the_box():
    points = grid_points(64, 8)  # 8x8 anchors at 4, 12, ..., 60
    gt = torch.tensor([[8.0, 8.0, 40.0, 48.0]])  # centres 12..36 across, 12..44 down: 4 x 5 = 20 inside
    inside = (points[:, 0] > 8) & (points[:, 0] < 40) & (points[:, 1] > 8) & (points[:, 1] < 48)
    scores = torch.rand(64, 2, generator=torch.Generator().manual_seed(0))
    predicted = gt.expand(64, 4)  # every prediction is the box: the alignment ranks by score
    result = assign_targets(scores, predicted, points, gt, torch.tensor([1]))
    best_inside = torch.where(inside, scores[:, 1], -1).topk(10).indices
    assert sorted(result.foreground.nonzero().squeeze(1).tolist()) == sorted(best_inside.tolist())
    # the targets: the box, its class; the best-aligned positive gets the best overlap (1 here)
    assert (result.boxes[result.foreground] == gt).all() and (result.gt_index == 0).all()
    assert result.scores[:, 0].abs().sum() == 0 and (result.scores[~result.foreground] == 0).all()
    alignment = scores[result.foreground, 1].sqrt()
    torch.testing.assert_close(result.scores[result.foreground, 1], alignment / alignment.max())
    fewer = assign_targets(scores, predicted, points, gt, torch.tensor([1]), topk=30)
    assert torch.equal(fewer.foreground, inside)  # 20 inside: all of them, none outside


def test_the_assigner_gives_a_contested_anchor_to_the_box_it_overlaps_most_and_widens_small_boxes():
    points = grid_points(64, 8)
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0], [16.0, 16.0, 48.0, 48.0]])
    predicted = torch.tensor([[14.0, 14.0, 46.0, 46.0]]).expand(64, 4)  # nearer the second box
    result = assign_targets(torch.full((64, 1), 0.5), predicted, points, boxes, torch.tensor([0, 0]), topk=16)
    shared = (points > 16).all(1) & (points < 32).all(1)  # the 2x2 anchors inside both
    assert shared.sum() == 4 and result.foreground[shared].all() and (result.gt_index[shared] == 1).all()
    assert result.foreground.sum() == 28  # 16 + 16 candidates, the 4 shared counted once
    tiny = torch.tensor([[21.0, 21.0, 25.0, 25.0]])  # no anchor centre inside; widened to 16x16 about (23, 23)
    result = assign_targets(torch.full((64, 1), 0.5), tiny.expand(64, 4), points, tiny, torch.tensor([0]))
    assert sorted(map(tuple, points[result.foreground].tolist())) == [(20, 20), (20, 28), (28, 20), (28, 28)]
    none = assign_targets(torch.full((64, 1), 0.5), predicted, points, torch.zeros(0, 4), torch.zeros(0).long())
    assert not none.foreground.any() and none.scores.abs().sum() == 0


def test_complete_iou_equals_torchvision_complete_box_iou_loss_with_its_gradients():
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(2, 200, 2, generator=generator) * 50
    sides = 1 + torch.rand(2, 200, 2, generator=generator) * 30
    first, second = (torch.cat([c, c + s], -1).requires_grad_(True) for c, s in zip(corners, sides))
    ours = 1 - complete_iou(first, second)
    ours.sum().backward()
    ours_grads = first.grad.clone(), second.grad.clone()
    first.grad = second.grad = None
    theirs = torchvision.ops.complete_box_iou_loss(first, second)
    theirs.sum().backward()
    assert (ours > 1).any() and (ours < 0.5).any()  # apart and overlapping pairs
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_grads, (first.grad, second.grad), rtol=1e-4, atol=1e-6)
    same = torch.tensor([3.0, 4.0, 10.0, 20.0])
    assert complete_iou(same, same).item() == pytest.approx(1.0)


def test_distribution_focal_loss_by_hand():
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.5]])
    p = [math.exp(v) / sum(math.exp(u) for u in (0.0, 1.0, 2.0, 0.5)) for v in (0.0, 1.0, 2.0, 0.5)]
    assert distribution_focal_loss(logits, torch.tensor([1.25])).item() == pytest.approx(
        -(0.75 * math.log(p[1]) + 0.25 * math.log(p[2]))
    )
    assert distribution_focal_loss(logits, torch.tensor([2.0])).item() == pytest.approx(-math.log(p[2]))
    # beyond the last bin: clamped to 2.99, nearly all on the last bin
    assert distribution_focal_loss(logits, torch.tensor([7.0])).item() == pytest.approx(
        -(0.01 * math.log(p[2]) + 0.99 * math.log(p[3]))
    )
    assert distribution_focal_loss(torch.zeros(3, 16), torch.tensor([0.0, 4.5, 14.0])).tolist() == pytest.approx(
        [math.log(16)] * 3
    )


def test_the_loss_names_the_mistakes():
    criterion = DetectionLoss(3)
    maps = [torch.zeros(1, 67, 8, 8), torch.zeros(1, 67, 4, 4), torch.zeros(1, 67, 2, 2)]
    box = torch.tensor([[10.0, 10.0, 20.0, 20.0]])
    with pytest.raises(InputError, match=r"one tensor \(1, 7, 84\) \(an eval output: call net.train\(\)"):
        criterion(torch.zeros(1, 7, 84), [(box, torch.tensor([0]))])
    with pytest.raises(
        InputError, match=r"the map of stride 16 \(level 1\) is \(1, 80, 4, 4\)(.|\n)*\(N, 67, H_s, W_s\)"
    ):
        criterion([maps[0], torch.zeros(1, 80, 4, 4), maps[2]], [(box, torch.tensor([0]))])
    with pytest.raises(InputError, match="2 targets for a batch of 1 images"):
        criterion(maps, [(box, torch.tensor([0]))] * 2)
    with pytest.raises(InputError, match=r"x2 < x1(.|\n)*box_convert"):
        criterion(maps, [(torch.tensor([[30.0, 30.0, 10.0, 10.0]]), torch.tensor([0]))])  # (cx, cy, w, h)
    with pytest.raises(InputError, match=r"labels \[3\] outside the 3 classes"):
        criterion(maps, [(box, torch.tensor([3]))])
    with pytest.raises(InputError, match="target 0 is a tensor"):
        criterion(maps, [box])
    with pytest.raises(NerveArgumentError, match="num_classes=0 is not a positive int"):
        DetectionLoss(0)


# --- mAP@0.5 ------------------------------------------------------------------------------------------


def detections(*rows):
    """{"boxes", "scores", "labels"} from (x1, y1, x2, y2, score, label) rows."""
    table = torch.tensor(rows, dtype=torch.float).reshape(-1, 6)
    return {"boxes": table[:, :4], "scores": table[:, 4], "labels": table[:, 5].long()}


def truth(*rows):
    table = torch.tensor(rows, dtype=torch.float).reshape(-1, 5)
    return {"boxes": table[:, :4], "labels": table[:, 4].long()}


A, B = (0, 0, 10, 10), (20, 20, 40, 30)


def test_map_of_known_cases():
    two = truth((*A, 0), (*B, 0))
    assert mean_average_precision([detections((*A, 0.9, 0), (*B, 0.8, 0))], [two]) == 1.0
    # a false positive ranked first: precision 1/2 at every recall
    one = truth((*A, 0))
    assert mean_average_precision([detections((*B, 0.9, 0), (*A, 0.8, 0))], [one]) == pytest.approx(0.5)
    assert mean_average_precision([detections((*A, 0.9, 0), (*B, 0.8, 0))], [one]) == 1.0  # after full recall
    # a missed box: precision 1 up to recall 0.5, the 51 of the 101 points
    assert mean_average_precision([detections((*A, 0.9, 0))], [two]) == pytest.approx(51 / 101)
    # a second detection of the same box is a false positive: recall 1/2, 1/2, 1; envelope 1, 2/3, 2/3
    found = detections((*A, 0.9, 0), (1, 0, 10, 10, 0.8, 0), (*B, 0.7, 0))
    assert mean_average_precision([found], [two]) == pytest.approx((51 + 50 * 2 / 3) / 101)
    # no detection at all, and the wrong class: AP 0 for class 0; class 1 has no ground truth
    assert mean_average_precision([detections()], [one]) == 0.0
    assert mean_average_precision([detections((*A, 0.9, 1))], [one]) == 0.0
    # two classes: the mean of 1 and 0
    assert mean_average_precision([detections((*A, 0.9, 0))], [truth((*A, 0), (*B, 1))]) == pytest.approx(0.5)
    assert math.isnan(mean_average_precision([detections((*A, 0.9, 0))], [truth()]))


def test_map_matches_at_the_iou_threshold_within_each_image():
    one = truth((0, 0, 10, 10, 0))
    half = detections((0, 0, 10, 20, 0.9, 0))  # IoU 100 / 200 = 0.5 exactly
    assert mean_average_precision([half], [one]) == 1.0
    assert mean_average_precision([half], [one], iou_threshold=0.51) == 0.0
    # the detection of image 0's box does not match image 1's
    assert mean_average_precision([detections((*A, 0.9, 0)), detections()], [truth(), one]) == 0.0
    # ties between images keep their order; pairs are accepted as targets
    pairs = [(one["boxes"], one["labels"]), (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))]
    found = [detections((*A, 0.8, 0)), detections((*A, 0.8, 0))]
    assert mean_average_precision(found, pairs) == 1.0
    assert mean_average_precision(found[::-1], pairs[::-1]) == pytest.approx(0.5)


def test_map_names_the_mistakes():
    one = truth((*A, 0))
    with pytest.raises(InputError, match="2 predictions for 1 targets"):
        mean_average_precision([detections(), detections()], [one])
    with pytest.raises(InputError, match=r"prediction 0 is a dict with keys \['boxes'\]"):
        mean_average_precision([{"boxes": torch.zeros(0, 4)}], [one])


# --- the example --------------------------------------------------------------------------------------


def load_example(name):
    path = Path(__file__).parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_zoo_detector_trains_with_the_loss_at_any_size_and_its_output_postprocesses():
    from neurlink.models import yolov8n

    torch.manual_seed(0)
    net = yolov8n(num_classes=3).train()
    images = torch.randn(2, 3, 97, 131)  # not a multiple of 32: 13x17, 7x9 and 4x5 cells
    truth = [(torch.tensor([[5.0, 7.0, 60.0, 90.0], [70.0, 10.0, 126.0, 40.0]]), torch.tensor([0, 2])), ([], [])]
    losses = DetectionLoss(3)(net(images), truth)
    losses.total.backward()
    assert losses.box > 0 and losses.cls > 0 and losses.dfl > 0
    # every parameter learns, but the box branches of levels where no anchor is a positive (here the two
    # boxes' top 10 are all on stride 8, whose predicted boxes, 15 cells wide at init, are the closest)
    quiet = {id(p) for p in net.parameters() if p.requires_grad and not (p.grad is not None and p.grad.abs().sum())}
    head = net[-1]
    branches = [{id(p) for j in range(3) for p in head[f"cv2.{k}.{j}"].parameters()} for k in range(3)]
    assert quiet <= branches[1] | branches[2]
    with torch.no_grad():
        found = postprocess(net.eval()(images), score_threshold=0.0, max_detections=50)
    assert [len(image["boxes"]) for image in found] == [50, 50]
    assert all(0 <= image["labels"].min() and image["labels"].max() < 3 for image in found)


def test_the_training_example_runs_two_steps(capsys):
    example = load_example("train_detector")
    score = example.main(["--steps", "2", "--batch-size", "2", "--size", "64", "--val-images", "4"])
    printed = capsys.readouterr().out
    assert "2 steps in" in printed and "mAP@0.5" in printed and "held-out images (112x144)" in printed
    assert 0.0 <= score <= 1.0
    images, targets = example.shapes(3, 40, 50, torch.Generator().manual_seed(0))
    assert images.shape == (3, 3, 40, 50)
    for target in targets:  # inside the image, of the three classes, one to four
        boxes = target["boxes"]
        assert (
            1 <= len(boxes) <= 4
            and (boxes[:, :2] >= 0).all()
            and (boxes[:, 2] <= 50).all()
            and (boxes[:, 3] <= 40).all()
        )
        assert set(target["labels"].tolist()) <= {0, 1, 2}


def test_the_loss_takes_the_heads_strides_and_refuses_strides_the_maps_do_not_have():
    from neurlink.models import yolov8n

    net = yolov8n(num_classes=3)
    maps = net.train()(torch.rand(1, 3, 64, 96))
    truth = [{"boxes": torch.tensor([[4.0, 6.0, 40.0, 30.0]]), "labels": torch.tensor([1])}]
    same = DetectionLoss(3, strides=net[-1].strides)(maps, truth)  # the head's strides are floats
    torch.testing.assert_close(same.total, DetectionLoss(3)(maps, truth).total)
    with pytest.raises(InputError, match=r"maps of 8 at stride 32, 4 at stride 16, 2 at stride 8 cannot come from"):
        DetectionLoss(3, strides=(32, 16, 8))(maps, truth)


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ([[float("nan"), 1.0, 20.0, 20.0]], "are not all finite"),
        ([[0.1, 0.2, 0.5, 0.6]], "normalised to the image's size"),
    ],
)
def test_the_loss_refuses_boxes_it_would_learn_nothing_from(boxes, message):
    maps = [torch.zeros(1, 64 + 2, 64 // s, 64 // s) for s in (8, 16, 32)]
    with pytest.raises(InputError, match=message):
        DetectionLoss(2)(maps, [{"boxes": torch.tensor(boxes), "labels": torch.tensor([0])}])


def test_postprocess_of_half_precision_outputs():
    output = torch.tensor([[[20.0], [20.0], [10.0], [10.0], [0.9]]])
    for dtype in (torch.bfloat16, torch.float16):
        (found,) = postprocess(output.to(dtype))
        torch.testing.assert_close(found["boxes"], torch.tensor([[15.0, 15.0, 25.0, 25.0]]))
