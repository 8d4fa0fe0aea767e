"""R-CNN's per-class linear SVMs (Girshick et al. 2014, section 2.3): labels, hard negative
mining and the hinge loss, as static-shape jnp functions.

For class c a region is a positive if it is a ground-truth box of class c, a negative if its IoU
with every ground-truth box of class c is below 0.3 (strictly), and ignored otherwise (proposals
overlapping a class-c object by IoU >= 0.3 that are not the ground truth itself). Hard negative
mining keeps, per class, the `k` highest-scoring negatives that violate the margin
(score > -1): the paper's mining over a cache of negatives, here over the regions of a batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

POSITIVE, NEGATIVE, IGNORE = 1, -1, 0


def svm_labels(ious, region_gt_labels, gt_labels, gt_valid, region_valid, num_classes: int,
               negative_threshold: float = 0.3):
    """Per-class SVM labels of regions.

    ious: [N, G] IoU of each region with each (padded) ground-truth box; region_gt_labels: [N]
    int, the class of a region that is itself a ground-truth box (0 for a proposal);
    gt_labels: [G] int (1..C-1); gt_valid: [G] bool; region_valid: [N] bool; num_classes: C
    (background 0 included). Returns int32 [N, C] in {1 positive, -1 negative, 0 ignored};
    column 0 (background) and invalid regions are 0.
    """
    ious = jnp.asarray(ious, jnp.float32)
    n, g = ious.shape
    for name, x, shape in (("region_gt_labels", region_gt_labels, (n,)),
                           ("gt_labels", gt_labels, (g,)), ("gt_valid", gt_valid, (g,)),
                           ("region_valid", region_valid, (n,))):
        if jnp.shape(x) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {jnp.shape(x)}")
    classes = jnp.arange(num_classes)
    of_class = (jnp.asarray(gt_labels)[:, None] == classes) & jnp.asarray(gt_valid, bool)[:, None]
    best = jnp.max(jnp.where(of_class[None], ious[:, :, None], 0.0), axis=1,
                   initial=0.0)  # [N, C]
    pos = jnp.asarray(region_gt_labels)[:, None] == classes
    neg = best < negative_threshold
    labels = jnp.where(pos, POSITIVE, jnp.where(neg, NEGATIVE, IGNORE))
    labels = jnp.where(jnp.asarray(region_valid, bool)[:, None] & (classes > 0), labels, IGNORE)
    return labels.astype(jnp.int32)


def hard_negatives(scores, labels, num_hard: int):
    """Per class (column), the `num_hard` highest-scoring negatives with score > -1 (margin
    violated); ties keep the lower index. scores, labels: [N, C]. Returns bool [N, C]."""
    scores = jnp.asarray(scores, jnp.float32)
    n = scores.shape[0]
    k = min(int(num_hard), n)
    if k <= 0:
        return jnp.zeros(scores.shape, bool)
    cand = (labels == NEGATIVE) & (scores > -1.0)
    s = jnp.where(cand, scores, -jnp.inf).T  # [C, N]
    _, idx = jax.lax.top_k(s, k)  # [C, k]
    chosen = jnp.zeros(s.shape, bool).at[jnp.arange(s.shape[0])[:, None], idx].set(True)
    return chosen.T & cand


def svm_hinge_loss(scores, labels, num_hard: int, positive_weight: float = 1.0):
    """Hinge loss of per-class linear SVMs on positives and mined hard negatives.

    scores: [N, C] SVM outputs w_c . x + b_c; labels: [N, C] from `svm_labels`; num_hard: hard
    negatives kept per class. loss = (positive_weight * sum_pos max(0, 1 - s) +
    sum_hard max(0, 1 + s)) / max(1, #pos + #hard). Returns (loss scalar, hard bool [N, C]).
    The weights' L2 term (the SVM's regulariser) is the caller's.
    """
    scores = jnp.asarray(scores, jnp.float32)
    pos = labels == POSITIVE
    hard = hard_negatives(jax.lax.stop_gradient(scores), labels, num_hard)
    total = (positive_weight * jnp.sum(jnp.where(pos, jax.nn.relu(1 - scores), 0.0))
             + jnp.sum(jnp.where(hard, jax.nn.relu(1 + scores), 0.0)))
    count = jnp.sum(pos) + jnp.sum(hard)
    return total / jnp.maximum(count, 1).astype(jnp.float32), hard
