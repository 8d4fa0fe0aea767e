"""Segmentation loss: per-pixel softmax cross-entropy with an ignore label, in float32."""

from __future__ import annotations

import jax.numpy as jnp
import optax


def pixel_cross_entropy(logits, labels, *, ignore_label: int | None = None, weights=None):
    """Mean softmax cross-entropy over counted pixels.

    logits: [B, H, W, K]; labels: int [B, H, W]. Pixels equal to `ignore_label` (and, with
    `weights` broadcastable to [B, H, W], weight-0 pixels) are not counted. Returns a scalar.
    """
    logits = logits.astype(jnp.float32)
    keep = jnp.ones(labels.shape, jnp.float32)
    if ignore_label is not None:
        keep *= (labels != ignore_label).astype(jnp.float32)
    if weights is not None:
        keep *= jnp.broadcast_to(weights, labels.shape).astype(jnp.float32)
    safe = jnp.where(labels == ignore_label, 0, labels) if ignore_label is not None else labels
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, safe)
    return jnp.sum(loss * keep) / jnp.maximum(jnp.sum(keep), 1.0)
