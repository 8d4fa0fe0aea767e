"""The task interface the training loop drives: every family (classification, segmentation,
detection) provides these methods and nothing in the loop knows which family it runs.

Evaluation: `predict` runs jitted and sharded like the train step; its outputs (one row per
example) are gathered to the host with padding dropped and fed to the task's `Evaluator`, which
keeps what it needs (sums, per-image detections) and returns the metrics at the end.
"""

from __future__ import annotations

from typing import Any, Protocol

import flax.linen as nn
import jax

Batch = dict[str, Any]
Variables = dict[str, Any]


class Evaluator(Protocol):
    """Host-side metric accumulation over one pass of the test split."""

    def update(self, predictions: dict[str, Any], batch: Batch) -> None:
        """Adds one batch: numpy `predictions` (from `Task.predict`) and its numpy `batch`, both
        with the padding examples already dropped."""

    def result(self) -> dict[str, float]:
        """The metrics of everything added (may write files into the evaluator's directory)."""


class Task(Protocol):
    """How one family trains and evaluates a model on batches of the data pipeline."""

    fields: tuple[str, ...]
    """Fields of a batch this task reads (passed to the pipeline's ExampleTransform)."""

    def init(self, model: nn.Module, rng, batch: Batch) -> Variables:
        """Initial `{'params': ..., 'batch_stats': ...}` for a batch's shapes."""

    def loss(self, model: nn.Module, variables: Variables, batch: Batch, rng
             ) -> tuple[Any, tuple[dict[str, Any], Variables]]:
        """Training loss (float32 scalar), with (metrics, updated non-param collections)."""

    def predict(self, model: nn.Module, variables: Variables, batch: Batch) -> dict[str, Any]:
        """Eval-mode predictions for a batch (jittable): a dict of arrays with a batch axis."""

    def evaluator(self, output_dir: str | None = None, splits=None) -> Evaluator:
        """A fresh evaluator; `output_dir` (None: write nothing) receives its files. `splits`
        (a `jaxvision.data.DatasetSplits`, or None) gives the test split's own examples
        (`splits.test[batch['example_index'][i]]`, untransformed, at the original size) and
        its metadata (`label_map`, `info`), so metrics are computed in the dataset's frame."""


def init_variables(model: nn.Module, rng, images, **kwargs) -> Variables:
    """`model.init` on `images` with separate 'params', 'dropout' and 'sample' keys, in eval
    mode (`kwargs` go to the model's call)."""
    params_rng, dropout_rng = jax.random.split(rng)
    return model.init({"params": params_rng, "dropout": dropout_rng,
                       "sample": jax.random.fold_in(dropout_rng, 1)}, images, train=False,
                      **kwargs)


def apply_train(model: nn.Module, variables: Variables, images, rng, **kwargs
                ) -> tuple[Any, Variables]:
    """Train-mode `model.apply`: (outputs, updated non-param collections such as batch_stats).

    RNG streams: 'dropout' is `rng` itself, 'sample' (a detector's anchor and RoI sampling) is
    `fold_in(rng, 1)`. `kwargs` (e.g. `targets=`, `image_sizes=`) go to the model's call.
    """
    rngs = {"dropout": rng, "sample": jax.random.fold_in(rng, 1)}
    mutable = [k for k in variables if k != "params"]
    if not mutable:
        return model.apply(variables, images, train=True, rngs=rngs, **kwargs), {}
    return model.apply(variables, images, train=True, rngs=rngs, mutable=mutable, **kwargs)
