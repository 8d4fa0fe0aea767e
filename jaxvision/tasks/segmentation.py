"""Semantic segmentation: pixel cross-entropy, argmax prediction, confusion-matrix metrics
scored at each image's original resolution."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxvision.data.transforms import resize_nearest
from jaxvision.losses import pixel_cross_entropy
from jaxvision.metrics.boundary import boundary_counts, boundary_f_score
from jaxvision.metrics.segmentation import host_confusion_matrix, segmentation_scores
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
    """Per-pixel classification into `class_names` (index 0 is background). `pixel_weights`:
    the cross-entropy is weighted by the batch's `weights` [B, H, W] (U-Net's border weight
    map, `jaxvision.data.weight_map`), which the task then asks the pipeline for."""

    class_names: tuple[str, ...]
    ignore_label: int | None = 255
    boundary_tolerance: int = 2
    pixel_weights: bool = False
    fields: tuple[str, ...] = ("image", "segmentation", "image_size")

    def __post_init__(self):
        if self.pixel_weights and "weights" not in self.fields:
            object.__setattr__(self, "fields", (*self.fields, "weights"))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def init(self, model, rng, batch):
        return init_variables(model, rng, batch["image"])

    def loss(self, model, variables, batch, rng):
        (logits, _), new_state = apply_train(model, variables, batch["image"], rng)
        labels = match_labels(logits, batch["segmentation"])
        weights = match_labels(logits, batch["weights"]) if self.pixel_weights else None
        loss = pixel_cross_entropy(logits, labels, ignore_label=self.ignore_label,
                                   weights=weights)
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
        return SegmentationEvaluator(self.class_names, self.boundary_tolerance,
                                     None if splits is None else splits.test)


def to_original(classes, input_size, content, original, origin=(0, 0)):
    """A predicted class map back at the image's original size, by nearest resizing.

    classes: [h', w'] for an input [h, w] = `input_size` (centred on it when smaller: a
    valid-padding model); content: (ch, cw), the resized image's size at `origin` in the input
    (default its top-left; the rest is padding or a U-Net tile's mirrored context); original:
    (H, W). Returns (classes [H', W'], (rows, cols) slices of the original image they cover):
    the whole image, or for a valid-padding model the window its output reaches (the border it
    never predicts is left out, as `match_labels` does).
    """
    (h, w), (ph, pw) = input_size, classes.shape
    top, left = (h - ph) // 2, (w - pw) // 2
    frame = np.full((h, w), -1, np.int32)
    frame[top:top + ph, left:left + pw] = classes
    (oy, ox), (ch, cw) = origin, content
    full = resize_nearest(frame[oy:oy + ch, ox:ox + cw], tuple(original), 0)
    rows, cols = np.flatnonzero((full >= 0).any(1)), np.flatnonzero((full >= 0).any(0))
    if not len(rows) or not len(cols):
        raise ValueError(f"segmentation prediction {classes.shape} for the input {input_size}: "
                         f"expected it to reach the image content {tuple(content)}, got none")
    window = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    return full[window], window


class SegmentationEvaluator:
    """Confusion matrix and boundary counts summed over the test split: mIoU, per-class IoU,
    pixel accuracy and the boundary F-score (within `tolerance` pixels; ignore-label pixels
    count as a label there).

    With `source` (the test split, read at `batch['example_index']`), each prediction is mapped
    back to the image's original size (`to_original`, using `batch['image_size']` and, for a
    U-Net tile, `batch['image_origin']`) and scored
    against the source's own `segmentation` mask there, as the FCN and torchvision references
    score. Without it, predictions are scored against the batch's (transformed) labels.
    """

    def __init__(self, class_names, tolerance: int, source=None):
        self.class_names, self.tolerance, self.source = tuple(class_names), tolerance, source
        n = len(self.class_names)
        self.confusion = np.zeros((n, n), np.int64)
        self.boundary = np.zeros(4, np.int64)

    def update(self, predictions, batch):
        classes = np.asarray(predictions["classes"])
        if self.source is None:
            self._add(np.asarray(match_labels(classes[..., None], batch["segmentation"])),
                      classes)
            return
        missing = {"example_index", "image_size"} - set(batch)
        if missing:
            raise ValueError(f"segmentation evaluation batch: expected fields {sorted(missing)} "
                             f"(from the pipeline's eval_batches), got {sorted(batch)}")
        input_size = np.asarray(batch["segmentation"]).shape[1:3]
        origins = batch.get("image_origin", np.zeros((len(classes), 2), np.int32))
        for i, index in enumerate(np.asarray(batch["example_index"])):
            truth = np.asarray(self.source[int(index)]["segmentation"])
            predicted, window = to_original(classes[i], input_size, batch["image_size"][i],
                                            truth.shape, tuple(np.asarray(origins[i])))
            self._add(truth[window], predicted)

    def _add(self, labels, classes):
        self.confusion += host_confusion_matrix(labels, classes, len(self.class_names))
        self.boundary += boundary_counts(labels, classes, self.tolerance)

    def result(self):
        return {**segmentation_scores(self.confusion, self.class_names),
                **boundary_f_score(self.boundary)}
