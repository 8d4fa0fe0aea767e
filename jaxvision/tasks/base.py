"""The task interface the training loop drives: every family (classification, segmentation,
detection) provides these five methods and nothing in the loop knows which family it runs."""

from __future__ import annotations

from typing import Any, Protocol

import flax.linen as nn

Batch = dict[str, Any]
Variables = dict[str, Any]


class Task(Protocol):
    """How one family trains and evaluates a model on batches of the data pipeline."""

    fields: tuple[str, ...]
    """Fields of a batch this task reads (passed to the pipeline's ExampleTransform)."""

    def init(self, model: nn.Module, rng, batch: Batch) -> Variables:
        """Initial `{'params': ..., 'batch_stats': ...}` for a batch's shapes."""

    def loss(self, model: nn.Module, variables: Variables, batch: Batch, rng
             ) -> tuple[Any, tuple[dict[str, Any], Variables]]:
        """Training loss (float32 scalar), with (metrics, updated non-param collections)."""

    def predict(self, model: nn.Module, variables: Variables, batch: Batch) -> Any:
        """Eval-mode predictions for a batch (jittable)."""

    def eval_stats(self, predictions: Any, batch: Batch) -> dict[str, Any]:
        """Additive statistics of one batch (jittable); summed over batches by the loop."""

    def summarize(self, stats: dict[str, Any]) -> dict[str, float]:
        """Final metrics from the summed statistics (host)."""
