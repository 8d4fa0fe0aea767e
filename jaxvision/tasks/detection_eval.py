"""Host-side detection evaluation: per-image detections and ground truth collected over the
test split, scored with pycocotools (COCO AP, bbox and segm) and the VOC devkit rules.

Files (when given an output directory): `coco_gt.json` (the split's ground truth in COCO
instances format, boxes in the evaluated image's pixels, category ids = model labels, with
names) and `coco_instances_results.json` (COCO results format; RLE masks for segm), so anyone
can re-score a run with pycocotools. Metric names: `bbox/AP`, `bbox/AP50`, ..., `segm/AP`, ...,
`voc07/mAP` (11-point) and `voc/mAP` (all-point), both at IoU 0.5; VOC ignores crowd boxes as it
ignores `difficult` ones.
"""

from __future__ import annotations

import json
import os

import numpy as np

from jaxvision.metrics import (
    coco_ground_truth_json,
    coco_results_json,
    evaluate_coco_json,
    voc_eval,
)


class DetectionEvaluator:
    """`update(predictions, batch)` per batch of numpy arrays, `result()` at the end."""

    def __init__(self, class_names, *, masks: bool = False, output_dir: str | None = None):
        self.class_names = tuple(class_names)
        self.masks = masks
        self.output_dir = output_dir
        self.predictions: list[dict] = []
        self.ground_truth: list[dict] = []
        self.image_ids: list[int] = []

    def update(self, predictions, batch):
        """predictions: boxes [B, D, 4], scores, labels, valid [B, D] (masks [B, D, H, W]);
        batch: boxes [B, N, 4], labels, boxes_valid, iscrowd [B, N], image_id [B],
        image_size [B, 2] (masks [B, N, H, W]). Masks are cropped to each image's size."""
        for i in range(len(predictions["boxes"])):
            height, width = (int(v) for v in batch["image_size"][i])
            keep = np.asarray(predictions["valid"][i], bool)
            pred = {k: np.asarray(predictions[k][i])[keep] for k in ("boxes", "scores", "labels")}
            real = np.asarray(batch["boxes_valid"][i], bool)
            gt = {"boxes": np.asarray(batch["boxes"][i])[real],
                  "labels": np.asarray(batch["labels"][i])[real],
                  "iscrowd": np.asarray(batch["iscrowd"][i], bool)[real],
                  "height": height, "width": width}
            if self.masks:
                pred["masks"] = np.asarray(predictions["masks"][i])[keep][:, :height, :width]
                gt["masks"] = np.asarray(batch["masks"][i])[real][:, :height, :width]
            self.predictions.append(pred)
            self.ground_truth.append(gt)
            self.image_ids.append(int(batch["image_id"][i]))

    def result(self) -> dict[str, float]:
        names = dict(enumerate(self.class_names))
        del names[0]
        gt_json = coco_ground_truth_json(self.ground_truth, names, self.image_ids)
        iou_types = ("bbox", "segm") if self.masks else ("bbox",)
        results = coco_results_json(self.predictions, iou_types[-1], self.image_ids)
        if self.output_dir is not None:
            os.makedirs(self.output_dir, exist_ok=True)
            for name, content in (("coco_gt.json", gt_json),
                                  ("coco_instances_results.json", results)):
                _write_json(os.path.join(self.output_dir, name), content)
        metrics = {}
        for iou_type in iou_types:
            scores = evaluate_coco_json(gt_json, results, iou_type)
            metrics.update({f"{iou_type}/{k}": float(v) for k, v in scores.items()})
        voc_gt = [{"boxes": g["boxes"], "labels": g["labels"], "difficult": g["iscrowd"]}
                  for g in self.ground_truth]
        voc_pred = [{k: p[k] for k in ("boxes", "scores", "labels")} for p in self.predictions]
        metrics["voc07/mAP"] = float(voc_eval(voc_pred, voc_gt, use_07_metric=True)["map"])
        metrics["voc/mAP"] = float(voc_eval(voc_pred, voc_gt, use_07_metric=False)["map"])
        return metrics


def _write_json(path: str, content) -> None:
    """Writes to a temporary name and renames, so a crash never leaves half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(content, f)
    os.replace(tmp, path)
