"""Shared detection loss pieces, elementwise and in float32 (the detectors' multitask losses
build on these; see the two-stage and single-stage loss modules)."""

from __future__ import annotations

import jax.numpy as jnp
import optax


def smooth_l1(pred, target, beta: float = 1.0):
    """Elementwise smooth L1 (torch.nn.functional.smooth_l1_loss, reduction='none').

    |d| < beta: 0.5 d^2 / beta, else |d| - 0.5 beta; beta == 0 is plain L1. Same shape as
    `pred`, float32.
    """
    if beta < 0:
        raise ValueError(f"smooth_l1 beta: expected >= 0, got {beta}")
    d = jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32))
    if beta == 0:
        return d
    return jnp.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def sigmoid_bce(logits, targets):
    """Elementwise binary cross-entropy on logits (F.binary_cross_entropy_with_logits,
    reduction='none'), float32."""
    return optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32),
                                              targets.astype(jnp.float32))
