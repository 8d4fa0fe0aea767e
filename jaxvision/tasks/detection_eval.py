"""Host-side detection evaluation in the dataset's own frame (DESIGN.md, Evaluation): detections
mapped back to each image's original pixels, scored with pycocotools (COCO AP, bbox and segm)
and the VOC devkit rules against the source's own ground truth.

Ground truth: for `coco:<root>` the split's annotation file itself (every instance, crowd
regions, the file's `area`, image and category ids); for every other source, built from the
test split's untransformed examples (`splits.test[example_index]`: every box, `iscrowd`,
`difficult` (written as crowd, i.e. ignored, in the COCO file), masks), category ids
`label_map[label]` or else label + 1. Without `splits` (unit use) the batch's padded ground
truth in the input frame is used.

Files (with an output directory): `coco_gt.json` (that ground truth, COCO instances format) and
`coco_instances_results.json` (COCO results format, RLE masks for segm), so
`COCOeval(COCO('coco_gt.json'), ...loadRes('coco_instances_results.json'), 'bbox')` gives the
logged numbers. Metric names: `bbox/AP`, `bbox/AP50`, ..., `segm/AP`, ..., `voc07/mAP`
(11-point) and `voc/mAP` (all-point) at IoU 0.5 with difficult and crowd boxes ignored;
`eval/images` (images scored), `eval/skipped_images` (test images the dataset left out: their
ground truth still counts) and `eval/gt_instances`.
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
from jaxvision.tasks.original_frame import boxes_to_original, paste_masks


class DetectionEvaluator:
    """`update(predictions, batch)` per batch of numpy arrays, `result()` at the end."""

    def __init__(self, class_names, *, masks: bool = False, mask_threshold: float = 0.5,
                 output_dir: str | None = None, splits=None):
        self.class_names = tuple(class_names)
        self.masks, self.mask_threshold = masks, mask_threshold
        self.output_dir = output_dir
        self.splits = splits
        label_map = getattr(splits, "label_map", None)
        # model label (1..K-1) -> the dataset's category id
        self.category_of = (np.array([0, *label_map], np.int64) if label_map
                            else np.arange(len(self.class_names), dtype=np.int64))
        annotation_file = (getattr(splits, "info", None) or {}).get("test_annotations")
        self.gt = None
        if annotation_file:
            with open(annotation_file) as f:
                self.gt = json.load(f)
        self.built = {"images": [], "annotations": [], "categories": self._categories()}
        self.results: list[dict] = []
        self.image_ids: set[int] = set()

    def _categories(self) -> list[dict]:
        return [{"id": int(self.category_of[k]), "name": name}
                for k, name in enumerate(self.class_names) if k > 0]

    def update(self, predictions, batch):
        """predictions: boxes [B, D, 4] xyxy input pixels, scores, labels, valid [B, D] (masks
        [B, D, M, M] box-relative probabilities); batch: image_id, example_index [B],
        image_size, orig_size [B, 2] (and the padded ground truth, used without `splits`)."""
        for i in range(len(predictions["boxes"])):
            image_id = int(batch["image_id"][i])
            if image_id in self.image_ids:
                raise ValueError(f"detection evaluation: image id {image_id} seen twice (expected "
                                 "one id per test image)")
            self.image_ids.add(image_id)
            if self.splits is None:
                size = orig = tuple(int(v) for v in batch["image_size"][i])
                gt = _padded_ground_truth(batch, i, size, self.masks)
            else:
                size = tuple(int(v) for v in batch["image_size"][i])
                orig = tuple(int(v) for v in batch["orig_size"][i])
                gt = (None if self.gt is not None else
                      _source_ground_truth(self.splits.test[int(batch["example_index"][i])],
                                           self.masks))
            if gt is not None:
                self._add_ground_truth(gt, image_id, orig)
            keep = np.asarray(predictions["valid"][i], bool)
            origin = (batch["image_origin"][i] if "image_origin" in batch and self.splits
                      is not None else (0, 0))  # without splits: ground truth in input pixels
            boxes = boxes_to_original(np.asarray(predictions["boxes"][i])[keep], size, orig,
                                      origin)
            pred = {"boxes": boxes, "scores": np.asarray(predictions["scores"][i])[keep],
                    "labels": self.category_of[np.asarray(predictions["labels"][i])[keep]]}
            if self.masks:
                probs = paste_masks(np.asarray(predictions["masks"][i])[keep], boxes, *orig)
                pred["masks"] = probs > self.mask_threshold
            self.results += coco_results_json([pred], "segm" if self.masks else "bbox",
                                              [image_id])

    def _add_ground_truth(self, gt: dict, image_id: int, orig: tuple[int, int]):
        gt = {**gt, "labels": self.category_of[np.asarray(gt["labels"], np.int64) + 1],
              "height": orig[0], "width": orig[1]}
        one = coco_ground_truth_json([gt], None, [image_id])
        start = len(self.built["annotations"])
        for k, ann in enumerate(one["annotations"]):
            ann["id"] = start + k + 1
            if gt["difficult"][k]:
                ann["iscrowd"], ann["difficult"] = 1, 1
        if "file_name" in gt:
            one["images"][0]["file_name"] = str(gt["file_name"])
        self.built["images"] += one["images"]
        self.built["annotations"] += one["annotations"]

    def ground_truth(self) -> dict:
        """The COCO instances dict scored against (the annotation file, or the one built)."""
        return self.gt if self.gt is not None else self.built

    def result(self) -> dict[str, float]:
        gt_json = self.ground_truth()
        iou_types = ("bbox", "segm") if self.masks else ("bbox",)
        if self.output_dir is not None:
            os.makedirs(self.output_dir, exist_ok=True)
            for name, content in (("coco_gt.json", gt_json),
                                  ("coco_instances_results.json", self.results)):
                _write_json(os.path.join(self.output_dir, name), content)
        metrics = {}
        for iou_type in iou_types:
            scores = evaluate_coco_json(gt_json, self.results, iou_type)
            metrics.update({f"{iou_type}/{k}": float(v) for k, v in scores.items()})
        voc_pred, voc_gt = _voc_lists(gt_json, self.results)
        metrics["voc07/mAP"] = float(voc_eval(voc_pred, voc_gt, use_07_metric=True)["map"])
        metrics["voc/mAP"] = float(voc_eval(voc_pred, voc_gt, use_07_metric=False)["map"])
        skipped = (getattr(self.splits, "skipped_images", None) or {}).get("test", ())
        metrics.update({"eval/images": len(self.image_ids),
                        "eval/skipped_images": len(skipped),
                        "eval/gt_instances": len(gt_json["annotations"])})
        return metrics


def _padded_ground_truth(batch, i: int, size: tuple[int, int], masks: bool) -> dict:
    """Ground truth of row `i` of a padded batch (input frame), labels back to 0-based."""
    real = np.asarray(batch["boxes_valid"][i], bool)
    gt = {"boxes": np.asarray(batch["boxes"][i])[real],
          "labels": np.asarray(batch["labels"][i])[real] - 1,
          "iscrowd": np.asarray(batch["iscrowd"][i], bool)[real],
          "difficult": np.asarray(batch.get("difficult", batch["iscrowd"])[i], bool)[real]}
    if masks:
        gt["masks"] = np.asarray(batch["masks"][i])[real][:, :size[0], :size[1]]
    return gt


def _source_ground_truth(example: dict, masks: bool) -> dict:
    """Every instance of one untransformed source example (boxes xyxy original pixels, 0-based
    labels, iscrowd, difficult, masks [N, H, W] when scored)."""
    boxes = np.asarray(example.get("boxes", np.zeros((0, 4))), np.float64).reshape(-1, 4)
    n = len(boxes)
    gt = {"boxes": boxes, "labels": np.asarray(example.get("labels", np.zeros(n)), np.int64),
          "iscrowd": np.asarray(example.get("iscrowd", np.zeros(n)), bool).reshape(n),
          "difficult": np.asarray(example.get("difficult", np.zeros(n)), bool).reshape(n)}
    if "file_name" in example:
        gt["file_name"] = example["file_name"]
    if masks:
        if "masks" not in example:
            raise ValueError("detection evaluation: expected instance masks in the test split's "
                             f"examples (the task scores masks), got fields {sorted(example)}")
        gt["masks"] = np.asarray(example["masks"])
    return gt


def _voc_lists(gt_json: dict, results: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per-image VOC inputs (xyxy, category ids) from COCO ground truth and results, in the
    ground truth's image order; crowd and difficult boxes are VOC's difficult."""
    order = {img["id"]: k for k, img in enumerate(gt_json["images"])}
    gts = [{"boxes": [], "labels": [], "difficult": []} for _ in order]
    for ann in gt_json["annotations"]:
        g = gts[order[ann["image_id"]]]
        x, y, w, h = ann["bbox"]
        g["boxes"].append([x, y, x + w, y + h])
        g["labels"].append(ann["category_id"])
        g["difficult"].append(bool(ann.get("iscrowd", 0) or ann.get("difficult", 0)))
    preds = [{"boxes": [], "scores": [], "labels": []} for _ in order]
    for res in results:
        p = preds[order[res["image_id"]]]
        x, y, w, h = res["bbox"]
        p["boxes"].append([x, y, x + w, y + h])
        p["scores"].append(res["score"])
        p["labels"].append(res["category_id"])
    return [_arrays(p) for p in preds], [_arrays(g) for g in gts]


def _arrays(lists: dict) -> dict:
    """Lists of boxes / scores / labels / flags -> numpy arrays ([N, 4] boxes, [N] others)."""
    return {k: np.asarray(v, bool if k == "difficult" else np.float64 if k != "labels"
                          else np.int64).reshape((-1, 4) if k == "boxes" else (-1,))
            for k, v in lists.items()}


def _write_json(path: str, content) -> None:
    """Writes to a temporary name and renames, so a crash never leaves half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(content, f)
    os.replace(tmp, path)
