"""Image classification: label-smoothed softmax cross-entropy, top-1 / top-5 accuracy."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxvision.losses import softmax_cross_entropy
from jaxvision.metrics.classification import topk_correct, topk_counts
from jaxvision.tasks.base import apply_train, init_variables

TOP_K = (1, 5)


@dataclasses.dataclass(frozen=True)
class ClassificationTask:
    """One label per image among `class_names` (no background class).

    Batches: image float [B, H, W, 3], label int [B] (eval batches add example_valid bool [B]).
    The model returns `(logits [B, K], features)`; logits may be bfloat16, the loss is float32.
    """

    class_names: tuple[str, ...]
    label_smoothing: float = 0.0
    fields: tuple[str, ...] = ("image", "label")

    def __post_init__(self):
        if len(self.class_names) < 2:
            raise ValueError(f"classification class_names: expected at least 2 classes, got "
                             f"{self.class_names!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"task_kwargs.label_smoothing: expected 0 <= value < 1, got "
                             f"{self.label_smoothing}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def init(self, model, rng, batch):
        return init_variables(model, rng, batch["image"])

    def loss(self, model, variables, batch, rng):
        """Mean label-smoothed cross-entropy; metrics: loss and batch top-1 accuracy."""
        (logits, _), new_state = apply_train(model, variables, batch["image"], rng)
        labels = batch["label"]
        loss = softmax_cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        accuracy = jnp.mean(topk_correct(logits, labels, 1).astype(jnp.float32))
        return loss, ({"loss": loss, "top1": accuracy}, new_state)

    def predict(self, model, variables, batch):
        """`{'logits': float32 [B, K]}` in eval mode."""
        logits, _ = model.apply(variables, batch["image"], train=False)
        return {"logits": logits.astype(jnp.float32)}

    def evaluator(self, output_dir=None, splits=None):
        return ClassificationEvaluator()


class ClassificationEvaluator:
    """Sums of top-k correct counts and (unsmoothed) cross-entropy over the test split."""

    def __init__(self):
        self.sums = {f"top{k}_correct": 0.0 for k in TOP_K} | {"count": 0.0, "loss_sum": 0.0}

    def update(self, predictions, batch):
        logits, labels = jnp.asarray(predictions["logits"]), jnp.asarray(batch["label"])
        counts = topk_counts(logits, labels, TOP_K)
        counts["loss_sum"] = jnp.sum(softmax_cross_entropy(logits, labels, reduce=False))
        for key, value in counts.items():
            self.sums[key] += float(np.asarray(value, np.float64))

    def result(self):
        """`{'top1', 'top5', 'loss'}` (top-5 means top-min(5, K))."""
        count = max(self.sums["count"], 1.0)
        out = {f"top{k}": self.sums[f"top{k}_correct"] / count for k in TOP_K}
        out["loss"] = self.sums["loss_sum"] / count
        return out
