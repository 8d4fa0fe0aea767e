"""Object detection and instance segmentation: the detector's own multitask loss terms,
weighted and summed; per-image detections scored with COCO AP (pycocotools) and VOC AP.

Batches (see jaxvision.data): image [B, H, W, 3]; boxes [B, N, 4] xyxy absolute; labels [B, N]
int32 (1..K-1, 0 padding); boxes_valid [B, N]; iscrowd [B, N]; masks [B, N, H, W] uint8 (instance
segmentation); image_id [B]; image_size [B, 2] (height, width of the image inside the padding).
A detector called with `train=True, targets=...` returns `{'losses': {term: scalar}, ...}`; in
eval mode `{'boxes', 'scores', 'labels', 'valid'[, 'masks' [B, D, M, M]]}` (DESIGN.md).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping

import jax.numpy as jnp

from jaxvision.tasks.base import apply_train, init_variables
from jaxvision.tasks.detection_eval import DetectionEvaluator

TARGET_FIELDS = ("boxes", "labels", "boxes_valid", "iscrowd", "masks")


def _call_kwargs(model, batch) -> dict:
    """What the detector's call takes from the batch: `image_sizes=` (clipping to the image
    inside the padding) and, for detectors on external regions (R-CNN, Fast R-CNN),
    `proposals=` [B, P, 4] and `proposals_valid=` [B, P] when the batch carries them."""
    accepts = inspect.signature(type(model).__call__).parameters
    given = {"image_sizes": "image_size", "proposals": "proposals",
             "proposals_valid": "proposals_valid"}
    return {arg: batch[field] for arg, field in given.items()
            if arg in accepts and field in batch}


@dataclasses.dataclass(frozen=True)
class DetectionTask:
    """Boxes (and with `masks=True` instance masks) of `class_names` ([0] is background).

    loss_weights: weight of each of the detector's loss terms (default 1.0), by term name,
    e.g. {'rpn_box': 1.0, 'mask': 1.0}; a name the detector does not return is an error.
    mask_threshold: pasted mask probabilities above it are the predicted mask (COCO's 0.5).
    """

    class_names: tuple[str, ...]
    loss_weights: Mapping[str, float] = dataclasses.field(default_factory=dict)
    masks: bool = False
    mask_threshold: float = 0.5

    def __post_init__(self):
        if len(self.class_names) < 2 or self.class_names[0] != "background":
            raise ValueError(f"detection class_names: expected 'background' then at least one "
                             f"class, got {self.class_names!r}")
        bad = {k: v for k, v in dict(self.loss_weights).items() if not v >= 0}
        if bad:
            raise ValueError(f"task_kwargs.loss_weights: expected weights >= 0, got {bad}")
        if not 0.0 <= self.mask_threshold < 1.0:
            raise ValueError(f"task_kwargs.mask_threshold: expected 0 <= value < 1, got "
                             f"{self.mask_threshold}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def fields(self) -> tuple[str, ...]:
        base = ("image", "boxes", "labels", "iscrowd", "image_id")  # + image_size, added
        return base + ("masks",) if self.masks else base

    def init(self, model, rng, batch):
        return init_variables(model, rng, batch["image"], **_call_kwargs(model, batch))

    def loss(self, model, variables, batch, rng):
        """Weighted sum of the detector's loss terms; metrics: `loss`, each `loss_<term>`, and
        `dropped_boxes` (ground-truth boxes per image the pipeline dropped)."""
        targets = {k: batch[k] for k in TARGET_FIELDS if k in batch}
        out, new_state = apply_train(model, variables, batch["image"], rng, targets=targets,
                                     **_call_kwargs(model, batch))
        terms = {k: jnp.asarray(v, jnp.float32) for k, v in out["losses"].items()}
        unknown = sorted(set(self.loss_weights) - set(terms))
        if unknown:
            raise ValueError(f"task_kwargs.loss_weights: expected names among the detector's "
                             f"loss terms {sorted(terms)}, got {unknown}")
        loss = sum(self.loss_weights.get(k, 1.0) * v for k, v in sorted(terms.items()))
        metrics = {"loss": loss, **{f"loss_{k}": v for k, v in terms.items()}}
        if "num_dropped_boxes" in batch:
            metrics["dropped_boxes"] = jnp.mean(batch["num_dropped_boxes"].astype(jnp.float32))
        return loss, (metrics, new_state)

    def predict(self, model, variables, batch):
        """Eval-mode detections in input pixels: boxes [B, D, 4], scores [B, D], labels [B, D],
        valid [B, D]; with masks, masks [B, D, M, M]: each detection's box-relative mask
        probabilities (pasted at each image's original size on the host, by the evaluator and
        the predict CLI; `jaxvision.tasks.original_frame`)."""
        out = model.apply(variables, batch["image"], train=False, **_call_kwargs(model, batch))
        keep = ("boxes", "scores", "labels", "valid", "masks") if self.masks else (
            "boxes", "scores", "labels", "valid")
        return {k: out[k] for k in keep}

    def evaluator(self, output_dir=None, splits=None):
        return DetectionEvaluator(self.class_names, masks=self.masks,
                                  mask_threshold=self.mask_threshold, output_dir=output_dir,
                                  splits=splits)
