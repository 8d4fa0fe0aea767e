"""Top-k accuracy with deterministic tie-breaking (jittable)."""

from __future__ import annotations

import jax.numpy as jnp


def topk_correct(logits, labels, k: int):
    """Whether each example's label is among its `k` highest logits: bool [B].

    logits: [B, K]; labels: int [B]. `k` is capped at K. Ties rank the lower class index first
    (the order of `np.argsort(-logits, kind='stable')`), so the result never depends on chance.
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"topk_correct logits/labels: expected [B, K] and [B], got "
                         f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    if k < 1:
        raise ValueError(f"topk_correct k: expected an integer >= 1, got {k}")
    k = min(k, logits.shape[-1])
    label_logit = jnp.take_along_axis(logits, labels[:, None], axis=-1)
    index = jnp.arange(logits.shape[-1])
    ahead = (logits > label_logit) | ((logits == label_logit) & (index < labels[:, None]))
    return jnp.sum(ahead, axis=-1) < k


def topk_counts(logits, labels, ks=(1, 5), valid=None) -> dict:
    """Additive counts `{'top{k}_correct': float32 [], ..., 'count': float32 []}`.

    logits: [B, K]; labels: int [B]; valid: optional bool [B] (False rows are not counted).
    """
    weight = jnp.ones(labels.shape, jnp.float32) if valid is None else valid.astype(jnp.float32)
    out = {f"top{k}_correct": jnp.sum(topk_correct(logits, labels, k) * weight) for k in ks}
    out["count"] = jnp.sum(weight)
    return out
