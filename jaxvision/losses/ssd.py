"""SSD training loss (Liu et al., 2016) exactly as torchvision's `SSD.compute_loss`, static shapes.

Matching (torchvision's SSDMatcher): each default box takes its best ground truth when that IoU
is >= `iou_thresh`; then every valid ground truth claims its best default box (the highest
ground-truth index wins when several claim the same box). Box targets are the R-CNN coding with
weights (10, 10, 5, 5) (the paper's variances 0.1, 0.2). Loss: smooth L1 (beta 1) summed over
matched default boxes, plus softmax cross-entropy summed over positives and over the
`neg_to_pos_ratio` x #positives (per image) negatives of highest loss (hard negative mining), both
divided by max(1, #matched default boxes in the batch).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxvision.losses.detection import smooth_l1
from jaxvision.ops.boxes import box_iou, encode_boxes

SSD_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def ssd_match(default_boxes, gt_boxes, gt_valid, iou_thresh: float = 0.5):
    """Index of the matched ground truth per default box, -1 for background.

    default_boxes: [A, 4] xyxy; gt_boxes: [G, 4] xyxy (padded); gt_valid: [G] bool.
    Returns matched int32 [A]. Padding (invalid) boxes never match; with no valid box all are -1.
    """
    num_a = default_boxes.shape[0]
    if gt_boxes.shape[0] == 0:
        return jnp.full((num_a,), -1, jnp.int32)
    iou = jnp.where(gt_valid[:, None], box_iou(gt_boxes, default_boxes), -1.0)  # [G, A]
    best = jnp.max(iou, axis=0)
    matched = jnp.where(best >= iou_thresh, jnp.argmax(iou, axis=0), -1).astype(jnp.int32)
    best_anchor = jnp.argmax(iou, axis=1)  # [G]
    g = jnp.arange(gt_boxes.shape[0], dtype=jnp.int32)
    claims = (best_anchor[:, None] == jnp.arange(num_a)[None, :]) & gt_valid[:, None]  # [G, A]
    forced = jnp.max(jnp.where(claims, g[:, None], -1), axis=0)
    return jnp.where(forced >= 0, forced, matched)


def _per_image(cls_logits, bbox_regression, default_boxes, gt_boxes, gt_labels, gt_valid,
               iou_thresh, neg_to_pos_ratio, weights):
    matched = ssd_match(default_boxes, gt_boxes, gt_valid, iou_thresh)
    pos = matched >= 0
    idx = jnp.maximum(matched, 0)
    if gt_boxes.shape[0] == 0:
        target_boxes = default_boxes
        cls_target = jnp.zeros(pos.shape, jnp.int32)
    else:
        # background anchors encode themselves (finite targets, masked out below)
        target_boxes = jnp.where(pos[:, None], gt_boxes[idx], default_boxes)
        cls_target = jnp.where(pos, gt_labels[idx], 0).astype(jnp.int32)
    target_reg = encode_boxes(target_boxes, default_boxes, weights)
    box_loss = jnp.sum(smooth_l1(bbox_regression, target_reg, 1.0) * pos[:, None])

    ce = optax.softmax_cross_entropy_with_integer_labels(cls_logits.astype(jnp.float32),
                                                         cls_target)
    fg = cls_target > 0
    num_neg = neg_to_pos_ratio * jnp.sum(fg)
    neg_loss = jax.lax.stop_gradient(jnp.where(fg, -jnp.inf, ce))
    order = jnp.argsort(-neg_loss, stable=True)
    rank = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0], dtype=order.dtype))
    bg = rank < num_neg
    cls_loss = jnp.sum(ce * fg) + jnp.sum(ce * bg)
    return box_loss, cls_loss, jnp.sum(pos)


def ssd_loss(cls_logits, bbox_regression, default_boxes, gt_boxes, gt_labels, gt_valid,
             iou_thresh: float = 0.5, neg_to_pos_ratio: float = 3.0,
             weights=SSD_BOX_WEIGHTS):
    """torchvision's SSD loss for a padded batch.

    cls_logits: [B, A, K]; bbox_regression: [B, A, 4] deltas; default_boxes: [A, 4] xyxy;
    gt_boxes: [B, G, 4] xyxy absolute; gt_labels: [B, G] int (1..K-1); gt_valid: [B, G] bool.
    Ground-truth boxes with zero width or height are treated as padding (their coding is
    undefined). Returns {'bbox_regression', 'classification'} float32 scalars (unweighted);
    an image with no valid box contributes no positives and no mined negatives.
    """
    for name, x, rank in (("cls_logits", cls_logits, 3), ("bbox_regression", bbox_regression, 3),
                          ("gt_boxes", gt_boxes, 3), ("gt_labels", gt_labels, 2),
                          ("gt_valid", gt_valid, 2)):
        if jnp.ndim(x) != rank:
            raise ValueError(f"ssd_loss {name}: expected rank {rank}, got shape {jnp.shape(x)}")
    if gt_boxes.shape[:2] != gt_labels.shape or gt_labels.shape != gt_valid.shape:
        raise ValueError(f"ssd_loss gt_boxes/gt_labels/gt_valid: expected shapes [B, G, 4], "
                         f"[B, G], [B, G], got {gt_boxes.shape}, {gt_labels.shape}, "
                         f"{gt_valid.shape}")
    gt_boxes = jnp.asarray(gt_boxes, jnp.float32)
    gt_valid = (jnp.asarray(gt_valid, bool) & (gt_boxes[..., 2] > gt_boxes[..., 0])
                & (gt_boxes[..., 3] > gt_boxes[..., 1]))
    default_boxes = jnp.asarray(default_boxes, jnp.float32)
    box, cls, npos = jax.vmap(
        lambda c, r, b, lab, v: _per_image(c, r.astype(jnp.float32), default_boxes, b, lab, v,
                                           iou_thresh, neg_to_pos_ratio, weights)
    )(cls_logits, bbox_regression, gt_boxes, gt_labels, gt_valid)
    n = jnp.maximum(jnp.sum(npos), 1).astype(jnp.float32)
    return {"bbox_regression": jnp.sum(box) / n, "classification": jnp.sum(cls) / n}
