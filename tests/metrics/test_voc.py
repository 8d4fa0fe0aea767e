"""voc_eval against a float64 loop written from the VOC devkit's rules, and hand-computed cases."""

import math

import numpy as np
import pytest

from jaxvision.metrics import voc_eval
from jaxvision.metrics.voc import VOC07_RECALL_THRESHOLDS


def _matlab_colon(a, d, b):
    """MATLAB's a:d:b when (b - a) / d is a whole n (MathWorks' colonop.m): a + k*d for the
    first half, b - (n-k)*d for the second, (a + b) / 2 in the middle when n is even."""
    n = round((b - a) / d)
    out = [0.0] * (n + 1)
    for k in range(n // 2 + 1):
        out[k] = a + k * d
        out[n - k] = b - k * d
    if n % 2 == 0:
        out[n // 2] = (a + b) / 2
    return out


def _reference_voc(predictions, ground_truth, thr, use_07):
    """The devkit's VOCevaldet loop (continuous coordinates), one class at a time."""
    labels = sorted({int(lab) for g in ground_truth
                     for lab, dif in zip(g["labels"], g["difficult"], strict=True) if not dif})
    out = {}
    for c in labels:
        gt = []
        npos = 0
        for g in ground_truth:
            difficult = list(g["difficult"])
            rec = [(list(map(float, b)), bool(d)) for b, lab, d
                   in zip(g["boxes"], g["labels"], difficult, strict=True) if lab == c]
            gt.append({"boxes": [r[0] for r in rec], "diff": [r[1] for r in rec],
                       "det": [False] * len(rec)})
            npos += sum(1 for r in rec if not r[1])
        dets = [(float(s), i, list(map(float, b)))
                for i, p in enumerate(predictions)
                for b, s, lab in zip(p["boxes"], p["scores"], p["labels"], strict=True) if lab == c]
        order = sorted(range(len(dets)), key=lambda k: -dets[k][0])  # Python's sort is stable
        tp, fp = [], []
        for k in order:
            _, i, bb = dets[k]
            ovmax, jmax = -math.inf, -1
            for j, bg in enumerate(gt[i]["boxes"]):
                iw = min(bb[2], bg[2]) - max(bb[0], bg[0])
                ih = min(bb[3], bg[3]) - max(bb[1], bg[1])
                if iw > 0 and ih > 0:
                    ua = ((bb[2] - bb[0]) * (bb[3] - bb[1]) + (bg[2] - bg[0]) * (bg[3] - bg[1])
                          - iw * ih)
                    ov = iw * ih / ua
                    if ov > ovmax:
                        ovmax, jmax = ov, j
            t = f = 0
            if ovmax >= thr:
                if not gt[i]["diff"][jmax]:
                    if not gt[i]["det"][jmax]:
                        t = 1
                        gt[i]["det"][jmax] = True
                    else:
                        f = 1
            else:
                f = 1
            tp.append(t)
            fp.append(f)
        tp, fp = np.cumsum(tp, dtype=np.float64), np.cumsum(fp, dtype=np.float64)
        rec = tp / npos
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        if use_07:
            ap = 0.0
            for t in _matlab_colon(0.0, 0.1, 1.0):  # VOCevaldet.m: for t=0:0.1:1
                p = prec[rec >= t]
                ap += (p.max() if p.size else 0.0) / 11
        else:
            mrec = [0.0, *rec.tolist(), 1.0]
            mpre = [0.0, *prec.tolist(), 0.0]
            for j in range(len(mpre) - 2, -1, -1):
                mpre[j] = max(mpre[j], mpre[j + 1])
            ap = sum((mrec[j] - mrec[j - 1]) * mpre[j]
                     for j in range(1, len(mrec)) if mrec[j] != mrec[j - 1])
        out[c] = ap
    return out


def _random_dataset(seed):
    rng = np.random.default_rng(seed)
    predictions, ground_truth = [], []
    for i in range(12):
        m = 0 if i == 3 else int(rng.integers(1, 6))  # image 3 has no ground truth
        xy = rng.uniform(0, 60, (m, 2))
        wh = rng.uniform(4, 30, (m, 2))
        gt_boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        gt_labels = rng.integers(1, 4, m)
        difficult = rng.random(m) < 0.25
        if m:
            gt_boxes[0] = [5, 5, 20, 20]
            gt_labels[0] = 4  # label 4 has only difficult boxes: no AP, not in the mean
            difficult[0] = True
        # detections: jittered copies of the ground truth (some twice: duplicates) and clutter
        src = rng.integers(0, max(m, 1), int(rng.integers(0, 8))) if m else np.zeros(0, int)
        jitter = rng.normal(0, 3, (len(src), 4))
        det_boxes = gt_boxes[src] + jitter if m else np.zeros((0, 4))
        det_labels = gt_labels[src].copy() if m else np.zeros(0, int)
        swap = rng.random(len(src)) < 0.15
        det_labels[swap] = rng.integers(1, 6, swap.sum())  # wrong class (5 has no ground truth)
        k = int(rng.integers(0, 4))
        xy = rng.uniform(0, 60, (k, 2))
        clutter = np.concatenate([xy, xy + rng.uniform(4, 30, (k, 2))], 1)
        det_boxes = np.concatenate([det_boxes, clutter]).astype(np.float32)
        det_labels = np.concatenate([det_labels, rng.integers(1, 5, k)])
        scores = np.round(rng.random(len(det_boxes)), 1).astype(np.float32)  # many ties
        if i == 7:
            det_boxes, scores, det_labels = det_boxes[:0], scores[:0], det_labels[:0]
        predictions.append({"boxes": det_boxes, "scores": scores, "labels": det_labels})
        ground_truth.append({"boxes": gt_boxes, "labels": gt_labels, "difficult": difficult})
    return predictions, ground_truth


@pytest.mark.parametrize("use_07", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_devkit_loop_on_random_data(seed, use_07):
    predictions, ground_truth = _random_dataset(seed)
    got = voc_eval(predictions, ground_truth, iou_threshold=0.5, use_07_metric=use_07)
    want = _reference_voc(predictions, ground_truth, 0.5, use_07)
    assert 4 not in got["ap"] and 5 not in got["ap"]
    assert sorted(got["ap"]) == sorted(want) == [1, 2, 3]
    for c in want:
        assert got["ap"][c] == pytest.approx(want[c], abs=1e-12), c
    assert got["map"] == pytest.approx(np.mean(list(want.values())), abs=1e-12)
    assert all(type(c) is int and type(v) is float for c, v in got["ap"].items())
    assert type(got["map"]) is float


@pytest.mark.parametrize("thr", [0.3, 0.7])
def test_other_thresholds_match_devkit_loop(thr):
    predictions, ground_truth = _random_dataset(5)
    got = voc_eval(predictions, ground_truth, iou_threshold=thr)
    want = _reference_voc(predictions, ground_truth, thr, False)
    assert got["ap"] == pytest.approx(want, abs=1e-12)


def _one(boxes, scores=None, labels=None, difficult=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    d = {"boxes": boxes, "labels": np.ones(len(boxes), int) if labels is None else labels}
    if scores is not None:
        d["scores"] = np.asarray(scores, np.float32)
    if difficult is not None:
        d["difficult"] = np.asarray(difficult)
    return d


def test_hand_computed_two_gt_three_detections():
    # image 0: GT A, dets TP (0.9) and a miss (0.8); image 1: GT B, det TP (0.7).
    # precision 1, 1/2, 2/3; recall 1/2, 1/2, 1.
    gt = [_one([[0, 0, 10, 10]]), _one([[0, 0, 10, 10]])]
    preds = [_one([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8]), _one([[0, 0, 10, 10]], [0.7])]
    # all-point: envelope 1 on [0, 1/2], 2/3 on (1/2, 1] -> 1/2 + 1/3
    assert voc_eval(preds, gt)["ap"] == {1: pytest.approx(5 / 6, abs=1e-15)}
    # 11-point: t = 0..0.5 -> 1 (6 points), t = 0.6..1 -> 2/3 (5 points)
    assert voc_eval(preds, gt, use_07_metric=True)["map"] == pytest.approx(28 / 33, abs=1e-15)


def test_iou_exactly_at_threshold_matches():
    # [0,0,2,1] vs [0,0,1,1]: intersection 1, union 2 -> IoU 0.5 exactly in float32 and float64
    gt = [_one([[0, 0, 1, 1]])]
    preds = [_one([[0, 0, 2, 1]], [0.9])]
    assert voc_eval(preds, gt) == {"ap": {1: 1.0}, "map": 1.0}  # defaults: 0.5, all-point
    above = float(np.nextafter(0.5, 1.0))
    assert voc_eval(preds, gt, iou_threshold=above) == {"ap": {1: 0.0}, "map": 0.0}


def test_touching_boxes_are_not_candidates_even_at_threshold_zero():
    gt = [_one([[0, 0, 1, 1]])]
    preds = [_one([[1, 0, 2, 1], [0.5, 0, 1.5, 1]], [0.9, 0.8])]  # touches; overlaps 1/3
    # first det: no candidate -> FP; second: IoU 1/3 >= 0 -> TP. prec 0, 1/2; rec 0, 1
    assert voc_eval(preds, gt, iou_threshold=0.0)["map"] == pytest.approx(0.5, abs=1e-15)


def test_07_thresholds_are_matlabs_colon_doubles():
    # MATLAB's 0:0.1:1 as printed with %.17g (not np.arange, not k / 10)
    matlab = [0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]
    assert list(VOC07_RECALL_THRESHOLDS) == _matlab_colon(0.0, 0.1, 1.0) == matlab
    assert all(type(t) is float for t in VOC07_RECALL_THRESHOLDS)


@pytest.mark.parametrize(
    ("num_hits", "recall", "reached"),
    [
        (3, 0.3, 3),  # 0.3 < 0.30000000000000004: t = 0, 0.1, 0.2 only
        (6, 0.6, 7),  # reaches t = 0.6 (np.arange's 0.6000000000000001 it would not)
        (7, 0.7, 8),  # reaches t = 0.7 (np.arange's 0.7000000000000001 it would not)
    ],
)
def test_07_metric_recall_exactly_at_a_threshold(num_hits, recall, reached):
    # 10 GT, num_hits perfect detections then a miss: precision 1 up to recall num_hits / 10,
    # then num_hits / (num_hits + 1) at the same recall. 11-point: 1 at the `reached` thresholds
    # t <= recall, 0 at the others.
    assert num_hits / 10 == recall  # the float64 recall voc_eval computes is the double itself
    boxes = [[10 * k, 0, 10 * k + 5, 5] for k in range(10)]
    gt = [_one(boxes)]
    preds = [_one([*boxes[:num_hits], [200, 200, 205, 205]], np.linspace(0.9, 0.1, num_hits + 1))]
    got = voc_eval(preds, gt, use_07_metric=True)["map"]
    assert got == pytest.approx(reached / 11, abs=1e-15)
    assert voc_eval(preds, gt)["map"] == pytest.approx(recall, abs=1e-15)


def test_difficult_match_is_neither_tp_nor_fp():
    gt = [_one([[0, 0, 10, 10], [20, 0, 30, 10]], difficult=[False, True])]
    preds = [_one([[20, 0, 30, 10], [20, 0, 30, 10], [0, 0, 10, 10]], [0.9, 0.85, 0.8])]
    assert voc_eval(preds, gt) == {"ap": {1: 1.0}, "map": 1.0}


def test_duplicate_goes_to_max_iou_box_even_when_matched():
    # devkit: a detection takes its max-IoU box, matched or not; a second detection on GT1 is a
    # duplicate (FP) although GT2 overlaps it with IoU 90/110 > 0.5.
    gt = [_one([[0, 0, 10, 10], [1, 0, 11, 10]])]
    preds = [_one([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8])]
    assert voc_eval(preds, gt)["map"] == pytest.approx(0.5, abs=1e-15)


def test_equal_scores_break_ties_by_image_then_detection_order():
    gt = [_one([[0, 0, 10, 10]]), _one([[0, 0, 10, 10]])]
    miss, hit = [[50, 50, 60, 60]], [[0, 0, 10, 10]]
    # image 0's miss before image 1's hit: precision 0, 1/2 at recall 0, 1/2
    preds = [_one(miss, [0.5]), _one(hit, [0.5])]
    assert voc_eval(preds, gt)["map"] == pytest.approx(0.25, abs=1e-15)
    preds = [_one(hit, [0.5]), _one(miss, [0.5])]
    assert voc_eval(preds, gt)["map"] == pytest.approx(0.5, abs=1e-15)
    # within an image: input order
    preds = [_one(miss + hit, [0.5, 0.5]), _one(np.zeros((0, 4)), [])]
    assert voc_eval(preds, gt)["map"] == pytest.approx(0.25, abs=1e-15)


def test_no_detections_and_no_ground_truth():
    gt = [_one([[0, 0, 10, 10]]), _one(np.zeros((0, 4)))]
    preds = [_one(np.zeros((0, 4)), []), _one([[0, 0, 5, 5]], [0.3])]
    assert voc_eval(preds, gt) == {"ap": {1: 0.0}, "map": 0.0}
    out = voc_eval([_one(np.zeros((0, 4)), [])], [_one(np.zeros((0, 4)))])
    assert out["ap"] == {} and math.isnan(out["map"])
    out = voc_eval([], [])
    assert out["ap"] == {} and math.isnan(out["map"])


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p, g: p.pop(), "same length"),
        (lambda p, g: p[1].update(boxes=np.zeros((2, 5))), "predictions[1]['boxes']"),
        (lambda p, g: p[0].update(scores=np.zeros(3)), "predictions[0]['scores']"),
        (lambda p, g: p[0].pop("labels"), "'labels'"),
        (lambda p, g: g[1].update(labels=np.zeros(3, int)), "ground_truth[1]['labels']"),
        (lambda p, g: g[0].update(difficult=np.zeros(2, bool)), "ground_truth[0]['difficult']"),
        (lambda p, g: g[0].update(difficult=np.array([2])), "ground_truth[0]['difficult']"),
        (lambda p, g: g[0].update(boxes=np.array([[5.0, 0, 1, 1]])), "ground_truth[0]['boxes']"),
        (lambda p, g: p[0].update(scores=np.array([np.nan, 1.0])), "predictions[0]['scores']"),
        (lambda p, g: g[1].update(labels=np.array([1.5])), "ground_truth[1]['labels']"),
    ],
)
def test_bad_input_names_the_field(mutate, field):
    gt = [_one([[0, 0, 10, 10]], difficult=[False]), _one([[0, 0, 10, 10]])]
    preds = [_one([[0, 0, 10, 10], [1, 1, 4, 4]], [0.9, 0.8]), _one([[0, 0, 5, 5]], [0.3])]
    voc_eval(preds, gt)
    mutate(preds, gt)
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        voc_eval(preds, gt)


def test_bad_threshold():
    with pytest.raises(ValueError, match="iou_threshold"):
        voc_eval([], [], iou_threshold=1.5)
