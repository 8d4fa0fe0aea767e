"""Semantic segmentation: pixel cross-entropy, argmax prediction, confusion-matrix metrics."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxvision.losses import pixel_cross_entropy
from jaxvision.metrics.boundary import boundary_counts, boundary_f_score
from jaxvision.metrics.segmentation import confusion_matrix, segmentation_scores
from jaxvision.ops.crop import center_crop
from jaxvision.tasks.base import apply_train, init_variables


def match_labels(logits, labels):
    """Centre-crops labels [B,H,W] to the logits' [B,h,w,...] size (valid-padding models)."""
    if logits.shape[1:3] == labels.shape[1:3]:
        return labels
    if logits.shape[1] > labels.shape[1] or logits.shape[2] > labels.shape[2]:
        raise ValueError(f"segmentation logits {logits.shape[1:3]} are larger than the labels "
                         f"{labels.shape[1:3]}: expected at most the label size")
    return center_crop(labels[..., None], logits.shape[1], logits.shape[2])[..., 0]


@dataclasses.dataclass(frozen=True)
class SegmentationTask:
    """Per-pixel classification into `class_names` (index 0 is background)."""

    class_names: tuple[str, ...]
    ignore_label: int | None = 255
    boundary_tolerance: int = 2
    fields: tuple[str, ...] = ("image", "segmentation")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def init(self, model, rng, batch):
        return init_variables(model, rng, batch["image"])

    def loss(self, model, variables, batch, rng):
        (logits, _), new_state = apply_train(model, variables, batch["image"], rng)
        labels = match_labels(logits, batch["segmentation"])
        loss = pixel_cross_entropy(logits, labels, ignore_label=self.ignore_label)
        counted = (jnp.ones(labels.shape, bool) if self.ignore_label is None
                   else labels != self.ignore_label)
        correct = (jnp.argmax(logits, -1) == labels) & counted
        accuracy = jnp.sum(correct) / jnp.maximum(jnp.sum(counted), 1)  # over non-void pixels
        return loss, ({"loss": loss, "pixel_accuracy": accuracy}, new_state)

    def predict(self, model, variables, batch):
        """`{'classes': int32 [B, h, w]}`, the argmax class map (h, w: the model's output)."""
        logits, _ = model.apply(variables, batch["image"], train=False)
        return {"classes": jnp.argmax(logits, axis=-1).astype(jnp.int32)}

    def evaluator(self, output_dir=None, splits=None):
        return SegmentationEvaluator(self.class_names, self.boundary_tolerance)


class SegmentationEvaluator:
    """Confusion matrix and boundary counts summed over the test split: mIoU, per-class IoU,
    pixel accuracy and the boundary F-score (within `tolerance` pixels; ignore-label pixels
    count as a label there)."""

    def __init__(self, class_names, tolerance: int):
        self.class_names, self.tolerance = tuple(class_names), tolerance
        n = len(self.class_names)
        self.confusion = np.zeros((n, n), np.int64)
        self.boundary = np.zeros(4, np.int64)

    def update(self, predictions, batch):
        classes = np.asarray(predictions["classes"])
        labels = np.asarray(match_labels(classes[..., None], batch["segmentation"]))
        self.confusion += np.asarray(confusion_matrix(labels, classes, len(self.class_names)))
        self.boundary += boundary_counts(labels, classes, self.tolerance)

    def result(self):
        return {**segmentation_scores(self.confusion, self.class_names),
                **boundary_f_score(self.boundary)}
