"""Confusion-matrix segmentation metrics: per-class IoU, mean IoU, pixel accuracy."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def confusion_matrix(labels, predictions, num_classes: int, valid=None):
    """Counts [num_classes, num_classes] (rows: true class, columns: predicted), int32.

    labels, predictions: int [...] of the same shape; pixels whose label is outside
    [0, num_classes) (e.g. an ignore label 255) or whose `valid` is False are not counted.
    Jittable: a scatter-add of one per pixel, no boolean indexing.
    """
    labels = jnp.asarray(labels)
    keep = (labels >= 0) & (labels < num_classes)
    if valid is not None:
        keep &= jnp.broadcast_to(valid, labels.shape)
    labels, keep = labels.reshape(-1), keep.reshape(-1)
    predictions = jnp.asarray(predictions).reshape(-1)
    flat = jnp.where(keep, labels * num_classes + predictions, 0)
    counts = jnp.zeros(num_classes * num_classes, jnp.int32).at[flat].add(keep.astype(jnp.int32))
    return counts.reshape(num_classes, num_classes)


def host_confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """`confusion_matrix` in host numpy, int64 [num_classes, num_classes], for label maps of any
    shape (one compilation per shape would be the jitted one's cost)."""
    labels, predictions = np.asarray(labels).ravel(), np.asarray(predictions).ravel()
    keep = (labels >= 0) & (labels < num_classes)
    flat = labels[keep].astype(np.int64) * num_classes + predictions[keep]
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def segmentation_scores(confusion, class_names=None) -> dict[str, float]:
    """mIoU, per-class IoU and pixel accuracy from a confusion matrix [C, C] (host numpy).

    IoU_c = TP / (TP + FP + FN); classes that never occur in labels or predictions are left out
    of the mean (their IoU is reported as NaN).
    """
    cm = np.asarray(confusion, np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    names = class_names or [str(c) for c in range(len(tp))]
    scores = {"miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
              "pixel_accuracy": float(tp.sum() / max(cm.sum(), 1.0))}
    scores.update({f"iou/{name}": float(v) for name, v in zip(names, iou, strict=True)})
    return scores
