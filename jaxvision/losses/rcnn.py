"""Two-stage detector losses (torchvision's rpn.py / roi_heads.py definitions), float32 scalars.

All take padded per-image arrays with masks, so shapes stay static; an empty sample (no anchors
or RoIs sampled, no positives) gives 0, never NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision.losses.detection import sigmoid_bce, smooth_l1

BOX_BETA = 1.0 / 9


def _safe_div(num, den):
    return num / jnp.maximum(den.astype(jnp.float32), 1.0)


def rpn_losses(objectness, deltas, targets, positive, negative, beta=BOX_BETA):
    """RPN objectness BCE (mean over sampled anchors) and box smooth L1 (summed over sampled
    positives, divided by the number of sampled anchors), over the whole batch.

    objectness: [B, A] logits; deltas, targets: [B, A, 4]; positive, negative: [B, A] bool
    sampled masks. Returns (objectness_loss, box_loss).
    """
    sampled = positive | negative
    n = jnp.sum(sampled)
    bce = sigmoid_bce(objectness, positive.astype(jnp.float32))
    obj = _safe_div(jnp.sum(jnp.where(sampled, bce, 0.0)), n)
    targets = jnp.where(positive[..., None], targets, 0.0)  # no inf/NaN in unused rows
    box = jnp.where(positive[..., None], smooth_l1(deltas, targets, beta), 0.0)
    return obj, _safe_div(jnp.sum(box), n)


def fast_rcnn_losses(class_logits, box_regression, labels, targets, sampled, beta=BOX_BETA):
    """Classifier cross-entropy (mean over sampled RoIs) and box smooth L1 on each positive
    RoI's ground-truth class (summed, divided by the number of sampled RoIs).

    class_logits: [B, S, K]; box_regression: [B, S, K * 4]; labels: [B, S] int (0 background);
    targets: [B, S, 4] encoded; sampled: [B, S] bool. Returns (classifier_loss, box_loss).
    """
    n = jnp.sum(sampled)
    logp = jax.nn.log_softmax(class_logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    cls = _safe_div(jnp.sum(jnp.where(sampled, nll, 0.0)), n)
    k = class_logits.shape[-1]
    reg = box_regression.reshape(box_regression.shape[:-1] + (k, 4))
    reg = jnp.take_along_axis(reg, labels[..., None, None], axis=-2)[..., 0, :]
    pos = sampled & (labels > 0)
    targets = jnp.where(pos[..., None], targets, 0.0)
    box = jnp.where(pos[..., None], smooth_l1(reg, targets, beta), 0.0)
    return cls, _safe_div(jnp.sum(box), n)


def mask_rcnn_loss(mask_logits, labels, mask_targets, positive):
    """Mask BCE on each positive RoI's ground-truth class, mean over positives x M x M pixels.

    mask_logits: [B, S, M, M, K]; labels: [B, S] int; mask_targets: [B, S, M, M] in [0, 1];
    positive: [B, S] bool. Returns a float32 scalar (0 with no positives).
    """
    logit = jnp.take_along_axis(mask_logits, labels[..., None, None, None], axis=-1)[..., 0]
    bce = sigmoid_bce(logit, mask_targets)
    m = mask_logits.shape[-2] * mask_logits.shape[-3]
    return _safe_div(jnp.sum(jnp.where(positive[..., None, None], bce, 0.0)),
                     jnp.sum(positive) * m)
