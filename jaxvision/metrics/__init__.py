"""Evaluation metrics."""

from jaxvision.metrics.classification import topk_correct, topk_counts
from jaxvision.metrics.segmentation import confusion_matrix, segmentation_scores
from jaxvision.metrics.voc import voc_ap, voc_eval

__all__ = [
    "confusion_matrix",
    "segmentation_scores",
    "topk_correct",
    "topk_counts",
    "voc_ap",
    "voc_eval",
]
