"""Classification loss: label-smoothed softmax cross-entropy, in float32."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def softmax_cross_entropy(logits, labels, *, label_smoothing: float = 0.0, reduce: bool = True):
    """Softmax cross-entropy against label-smoothed one-hot targets, in float32.

    logits: [B, K] (any float dtype; cast to float32); labels: int [B] in [0, K). The target is
    `(1 - label_smoothing) * one_hot(label) + label_smoothing / K`. Returns the mean over the
    batch (a float32 scalar), or the per-example losses [B] with `reduce=False`.
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"softmax_cross_entropy logits/labels: expected [B, K] and [B], got "
                         f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing: expected 0 <= value < 1, got {label_smoothing}")
    logits = logits.astype(jnp.float32)
    num_classes = logits.shape[-1]
    targets = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
    loss = -jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1)
    return jnp.mean(loss) if reduce else loss
