"""Evaluation metrics."""

from jaxvision.metrics.classification import topk_correct, topk_counts
from jaxvision.metrics.coco import (
    coco_evaluate,
    coco_ground_truth_json,
    coco_results_json,
    evaluate_coco_json,
)
from jaxvision.metrics.segmentation import confusion_matrix, segmentation_scores
from jaxvision.metrics.voc import voc_ap, voc_eval

__all__ = [
    "coco_evaluate",
    "coco_ground_truth_json",
    "coco_results_json",
    "confusion_matrix",
    "evaluate_coco_json",
    "segmentation_scores",
    "topk_correct",
    "topk_counts",
    "voc_ap",
    "voc_eval",
]
