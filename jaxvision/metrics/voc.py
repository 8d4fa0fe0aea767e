"""PASCAL VOC detection AP (devkit rules, continuous coordinates), host numpy float64.

The rules are those of the official MATLAB devkit (VOCevaldet.m), with areas and intersections in
continuous coordinates (no +1):

- For each class, its detections from all images are sorted by descending score with a stable
  sort over the images in list order and, within an image, the detections in input order: equal
  scores are broken by (image position, detection position), earlier first.
- A detection's candidates are the ground-truth boxes of its class in its image that it overlaps
  with positive area (intersection width > 0 and height > 0); it takes the candidate of maximum
  IoU (the first such box on a tie), matched or not.
- IoU >= iou_threshold (the devkit's `ovmax >= VOCopts.minoverlap`; an IoU exactly at the
  threshold matches; the py-faster-rcnn port's `ovmax > ovthresh` does not): a difficult box ->
  the detection is ignored (neither TP nor FP); a box not yet matched -> TP and the box becomes
  matched; an already matched box -> FP (duplicate). Otherwise (no candidate, or IoU below the
  threshold) -> FP.
- recall = TP / (number of non-difficult boxes), precision = TP / (TP + FP), both cumulative over
  the sorted detections; ignored detections are left out of the curve (in the devkit they only
  repeat the previous point, which changes no AP).
- use_07_metric: AP = mean over the devkit's `for t=0:0.1:1` (VOC07_RECALL_THRESHOLDS, the
  doubles MATLAB's colon operator gives: the fourth is 0.30000000000000004, so a recall of
  exactly 0.3 does not reach it; the seventh and eighth are the doubles 0.6 and 0.7, which a
  recall of exactly 0.6 or 0.7 reaches, unlike np.arange's 0.6000000000000001 and
  0.7000000000000001) of max(precision where recall >= t), 0 when no recall reaches t.
  Otherwise (VOC2010+) the area under the precision envelope: recall padded with 0 and 1,
  precision with 0 and 0, precision made non-increasing from the right, summed over the points
  where recall changes.
"""

from __future__ import annotations

import numpy as np

from jaxvision.metrics._detections import check_lists, get_boxes, get_vector

# The devkit's `for t=0:0.1:1` (VOCevaldet.m) as MATLAB evaluates a:d:b with n = 10 steps: the
# first half is a + k*d, the second half b - (n-k)*d, the middle (n even) (a+b)/2, so that both
# ends are exact (MathWorks, "How does the colon operator work?", colonop.m).
VOC07_RECALL_THRESHOLDS = (
    0.0,                  # 0 + 0*0.1
    0.1,                  # 0 + 1*0.1
    0.2,                  # 0 + 2*0.1
    0.30000000000000004,  # 0 + 3*0.1 (the double above 0.3)
    0.4,                  # 0 + 4*0.1
    0.5,                  # (0 + 1) / 2
    0.6,                  # 1 - 4*0.1 (np.arange's 0 + 6*0.1 is 0.6000000000000001)
    0.7,                  # 1 - 3*0.1 (np.arange's 0 + 7*0.1 is 0.7000000000000001)
    0.8,                  # 1 - 2*0.1
    0.9,                  # 1 - 1*0.1
    1.0,                  # 1 - 0*0.1
)


def _best_overlaps(det_boxes, det_labels, gt_boxes, gt_labels):
    """Per detection [N]: max IoU over same-class GT with positive overlap (-inf if none), argmax.

    det_boxes: [N, 4] xyxy, gt_boxes: [M, 4] xyxy, float64.
    """
    n, m = len(det_boxes), len(gt_boxes)
    if m == 0:
        return np.full((n,), -np.inf), np.full((n,), -1, np.int64)
    iw = (np.minimum(det_boxes[:, None, 2], gt_boxes[None, :, 2])
          - np.maximum(det_boxes[:, None, 0], gt_boxes[None, :, 0]))
    ih = (np.minimum(det_boxes[:, None, 3], gt_boxes[None, :, 3])
          - np.maximum(det_boxes[:, None, 1], gt_boxes[None, :, 1]))
    candidate = (iw > 0) & (ih > 0) & (det_labels[:, None] == gt_labels[None, :])
    inter = np.where(candidate, iw * ih, 0.0)
    det_area = (det_boxes[:, 2] - det_boxes[:, 0]) * (det_boxes[:, 3] - det_boxes[:, 1])
    gt_area = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])
    union = det_area[:, None] + gt_area[None, :] - inter
    iou = np.where(candidate, inter / np.where(candidate, union, 1.0), -np.inf)
    best = np.argmax(iou, axis=1)
    return iou[np.arange(n), best], np.where(np.isfinite(iou[np.arange(n), best]), best, -1)


def voc_ap(recall, precision, use_07_metric: bool = False) -> float:
    """AP from a cumulative recall [D] and precision [D] curve (D >= 0), float64.

    use_07_metric: the VOC2007 11-point interpolation at VOC07_RECALL_THRESHOLDS; else the
      VOC2010+ all-point area.
    """
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if use_07_metric:
        total = 0.0
        for t in VOC07_RECALL_THRESHOLDS:
            reached = recall >= t
            total += precision[reached].max() if reached.any() else 0.0
        return float(total / 11.0)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    change = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[change] - mrec[change - 1]) * mpre[change]))


def voc_eval(predictions, ground_truth, iou_threshold: float = 0.5,
             use_07_metric: bool = False) -> dict:
    """VOC AP per label and their mean (the devkit's rules, module docstring).

    predictions: list, one dict per image: boxes [N, 4] xyxy absolute, scores [N], labels [N]
      (other fields are ignored).
    ground_truth: list of the same length, one dict per image: boxes [M, 4] xyxy absolute
      (x2 >= x1, y2 >= y1), labels [M], optional difficult [M] bool (default all False).
    iou_threshold: in [0, 1]; a detection matches at IoU >= iou_threshold.
    use_07_metric: VOC2007 11-point AP; else VOC2010+ all-point AP.

    Returns {'ap': {label: AP}, 'map': mean AP}. Only labels with at least one non-difficult
    ground-truth box get an AP and enter the mean; detections of other labels are not scored.
    'map' is NaN when no label has a non-difficult ground-truth box.
    """
    check_lists(predictions, ground_truth)
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")

    scores, labels, overlaps, hit_gt = [], [], [], []
    gt_labels_all, gt_difficult_all = [], []
    offset = 0
    for i, (pred, gt) in enumerate(zip(predictions, ground_truth, strict=True)):
        gt_boxes = get_boxes(gt, "ground_truth", i, check_order=True)
        gt_labels = get_vector(gt, "ground_truth", i, "labels", len(gt_boxes), "int")
        difficult = get_vector(gt, "ground_truth", i, "difficult", len(gt_boxes), "bool",
                               default=False)
        boxes = get_boxes(pred, "predictions", i, check_order=False)
        det_scores = get_vector(pred, "predictions", i, "scores", len(boxes), "float")
        det_labels = get_vector(pred, "predictions", i, "labels", len(boxes), "int")
        ovmax, jmax = _best_overlaps(boxes, det_labels, gt_boxes, gt_labels)
        scores.append(det_scores)
        labels.append(det_labels)
        overlaps.append(ovmax)
        hit_gt.append(np.where(jmax >= 0, jmax + offset, -1))
        gt_labels_all.append(gt_labels)
        gt_difficult_all.append(difficult)
        offset += len(gt_boxes)

    scores = np.concatenate(scores) if scores else np.zeros((0,))
    labels = np.concatenate(labels) if labels else np.zeros((0,), np.int64)
    overlaps = np.concatenate(overlaps) if overlaps else np.zeros((0,))
    hit_gt = np.concatenate(hit_gt) if hit_gt else np.zeros((0,), np.int64)
    gt_labels = np.concatenate(gt_labels_all) if gt_labels_all else np.zeros((0,), np.int64)
    gt_difficult = np.concatenate(gt_difficult_all) if gt_difficult_all else np.zeros((0,), bool)

    matched = overlaps >= float(iou_threshold)  # -inf (no candidate) never matches
    matched_difficult = matched & np.append(gt_difficult, False)[hit_gt]  # hit_gt -1: no box

    ap = {}
    for label in np.unique(gt_labels[~gt_difficult]):
        num_pos = int(np.sum((gt_labels == label) & ~gt_difficult))
        sel = np.nonzero((labels == label) & ~matched_difficult)[0]
        order = sel[np.argsort(-scores[sel], kind="stable")]
        is_match = matched[order]
        # A matched detection is a TP when it is the first (in score order) to claim its box.
        first = np.zeros(len(order), bool)
        claims = np.nonzero(is_match)[0]
        _, first_claim = np.unique(hit_gt[order][claims], return_index=True)
        first[claims[first_claim]] = True
        tp = np.cumsum(first)
        fp = np.cumsum(~first)
        recall = tp / num_pos
        precision = tp / np.maximum(tp + fp, 1)
        ap[int(label)] = voc_ap(recall, precision, use_07_metric)
    mean = float(np.mean(list(ap.values()))) if ap else float("nan")
    return {"ap": ap, "map": mean}
