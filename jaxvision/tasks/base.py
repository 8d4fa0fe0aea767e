"""The task interface the training loop drives: every family (classification, segmentation,
detection) provides these five methods and nothing in the loop knows which family it runs."""

from __future__ import annotations

from typing import Any, Protocol

import flax.linen as nn
import jax

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


def init_variables(model: nn.Module, rng, images) -> Variables:
    """`model.init` on `images` with separate 'params' and 'dropout' keys, in eval mode."""
    params_rng, dropout_rng = jax.random.split(rng)
    return model.init({"params": params_rng, "dropout": dropout_rng}, images, train=False)


def apply_train(model: nn.Module, variables: Variables, images, rng) -> tuple[Any, Variables]:
    """Train-mode `model.apply`: (outputs, updated non-param collections such as batch_stats)."""
    mutable = [k for k in variables if k != "params"]
    if not mutable:
        return model.apply(variables, images, train=True, rngs={"dropout": rng}), {}
    return model.apply(variables, images, train=True, rngs={"dropout": rng}, mutable=mutable)
