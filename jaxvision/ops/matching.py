"""Anchor labelling against padded ground truth, and fixed-size balanced sampling under jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision.ops._checks import check_last_dim
from jaxvision.ops.boxes import box_iou

POSITIVE, NEGATIVE, IGNORE = 1, 0, -1


def match_anchors(anchors, gt_boxes, gt_valid, high_threshold=0.7, low_threshold=0.3,
                  allow_low_quality=True):
    """Labels anchors by IoU with ground truth (Faster R-CNN RPN rule, torchvision's Matcher).

    anchors: [A, 4] xyxy; gt_boxes: [G, 4] xyxy padded; gt_valid: [G] bool.
    An anchor is positive if its best IoU >= high_threshold, or if it is (one of) the
    highest-IoU anchors of some valid ground-truth box with IoU > 0 (`allow_low_quality`);
    negative if its best IoU < low_threshold; otherwise ignored.
    Returns (labels int32 [A] in {1, 0, -1}, matched int32 [A] index of the best valid gt box,
    max_iou [A]). With no valid ground truth every anchor is negative.
    """
    check_last_dim(anchors, "anchors")
    check_last_dim(gt_boxes, "gt_boxes")
    gt_valid = jnp.asarray(gt_valid, bool)
    if gt_valid.shape != jnp.shape(gt_boxes)[:-1]:
        raise ValueError(
            f"gt_valid: expected shape {jnp.shape(gt_boxes)[:-1]}, got {gt_valid.shape}"
        )
    if not 0 <= low_threshold <= high_threshold:
        raise ValueError(
            f"low_threshold/high_threshold: expected 0 <= low <= high, got {low_threshold} and "
            f"{high_threshold}"
        )
    iou = jnp.where(gt_valid[:, None], box_iou(gt_boxes, anchors), -1.0)  # [G, A]
    best = jnp.max(iou, axis=0)
    matched = jnp.argmax(iou, axis=0).astype(jnp.int32)
    labels = jnp.where(best >= high_threshold, POSITIVE,
                       jnp.where(best < low_threshold, NEGATIVE, IGNORE))
    if allow_low_quality:
        per_gt = jnp.max(iou, axis=1, keepdims=True)
        top = jnp.any((iou == per_gt) & (per_gt > 0) & gt_valid[:, None], axis=0)
        labels = jnp.where(top, POSITIVE, labels)
    return labels.astype(jnp.int32), matched, jnp.maximum(best, 0)


def sample_balanced(key, labels, num_samples=256, positive_fraction=0.5):
    """Fixed-size random sample of positives and negatives (torchvision's balanced sampler).

    labels: [A] int (1 positive, 0 negative, -1 ignore). Draws min(#pos, num_samples *
    positive_fraction) positives and fills up to num_samples with negatives, uniformly at random.
    Returns (positive bool [A], negative bool [A]) masks of the chosen anchors.
    """
    if num_samples <= 0:
        raise ValueError(f"num_samples: expected a positive int, got {num_samples}")
    if not 0 <= positive_fraction <= 1:
        raise ValueError(f"positive_fraction: expected in [0, 1], got {positive_fraction}")
    labels = jnp.asarray(labels)
    pos = labels == POSITIVE
    neg = labels == NEGATIVE
    num_pos = jnp.minimum(jnp.sum(pos), int(num_samples * positive_fraction))
    num_neg = jnp.minimum(jnp.sum(neg), num_samples - num_pos)
    kp, kn = jax.random.split(key)
    return _first_k_random(kp, pos, num_pos), _first_k_random(kn, neg, num_neg)


def _first_k_random(key, mask, k):
    """A uniformly random subset of size k of the True entries of `mask` (static shapes)."""
    u = jnp.where(mask, jax.random.uniform(key, mask.shape, jnp.float32), 2.0)  # x64 too
    rank = jnp.argsort(jnp.argsort(u))
    return mask & (rank < k)
