"""Region Proposal Network (Ren et al. 2015; torchvision's rpn.py): head, proposals, targets.

Everything is at static shapes: per-level top-k, then a per-level batched NMS over the padded
candidates, giving `post_nms_top_n` proposal slots per image with a validity mask.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.losses.rcnn import rpn_losses
from jaxvision.models.detection.anchors import generate_anchors
from jaxvision.ops import batched_nms, decode_boxes, encode_boxes, match_anchors, sample_balanced

_head_init = nn.initializers.normal(0.01)


class RPNHead(nn.Module):
    """Shared 3x3 conv + ReLU, then 1x1 objectness (A) and 1x1 box deltas (4 A) per level.

    `__call__(maps)`: list of [B, h_l, w_l, C]. Returns (objectness [B, N] logits, deltas
    [B, N, 4]) with N = sum_l h_l w_l A, ordered level, row, column, anchor (torchvision's).
    Children `conv`, `cls_logits`, `bbox_pred` are torchvision's rpn.head.conv.0.0,
    rpn.head.cls_logits, rpn.head.bbox_pred.
    """

    num_anchors: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, maps):
        c = maps[0].shape[-1]
        conv = nn.Conv(c, (3, 3), padding=((1, 1), (1, 1)), kernel_init=_head_init,
                       dtype=self.dtype, name="conv")
        cls = nn.Conv(self.num_anchors, (1, 1), kernel_init=_head_init, dtype=self.dtype,
                      name="cls_logits")
        reg = nn.Conv(4 * self.num_anchors, (1, 1), kernel_init=_head_init, dtype=self.dtype,
                      name="bbox_pred")
        logits, deltas = [], []
        for x in maps:
            t = nn.relu(conv(x))
            b = x.shape[0]
            logits.append(cls(t).reshape(b, -1))
            deltas.append(reg(t).reshape(b, -1, 4))
        out = jnp.promote_types(self.dtype, jnp.float32)  # bfloat16 -> float32; float64 stays
        return jnp.concatenate(logits, 1).astype(out), jnp.concatenate(deltas, 1).astype(out)


def clip_to_size(boxes, size):
    """Clips xyxy boxes [..., 4] to a traced image size [2] (height, width)."""
    h, w = size[0].astype(boxes.dtype), size[1].astype(boxes.dtype)
    x = jnp.clip(boxes[..., 0::2], 0, w)
    y = jnp.clip(boxes[..., 1::2], 0, h)
    return jnp.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], axis=-1)


def is_large(boxes, min_size):
    """torchvision's remove_small_boxes rule as a mask: width >= min_size and height >= min_size."""
    return ((boxes[..., 2] - boxes[..., 0]) >= min_size) & ((boxes[..., 3] - boxes[..., 1])
                                                            >= min_size)


def select_proposals(objectness, deltas, anchors, level_counts, image_sizes, *, pre_nms_top_n,
                     post_nms_top_n, nms_thresh, score_thresh=0.0, min_size=1e-3):
    """torchvision's RegionProposalNetwork.filter_proposals at static shapes.

    objectness: [B, N] logits; deltas: [B, N, 4]; anchors: [N, 4] xyxy; level_counts: anchors
    per level (static); image_sizes: [B, 2] int (height, width). Per level the top
    min(pre_nms_top_n, n_l) logits are kept, decoded (BBOX_XFORM_CLIP), clipped; boxes with a
    side < min_size or probability < score_thresh are dropped; NMS at nms_thresh within each
    level; the best post_nms_top_n kept by probability.
    Returns (proposals [B, P, 4], scores [B, P] probabilities, valid [B, P]), P = post_nms_top_n.
    """
    objectness = jax.lax.stop_gradient(objectness)
    deltas = jax.lax.stop_gradient(deltas)

    def one(logit, delta, size):
        boxes, scores, levels = [], [], []
        start = 0
        for i, n in enumerate(level_counts):
            k = min(pre_nms_top_n, n)
            top, idx = jax.lax.top_k(logit[start:start + n], k)
            idx = idx + start
            boxes.append(decode_boxes(delta[idx], anchors[idx]))
            scores.append(top)
            levels.append(jnp.full((k,), i, jnp.int32))
            start += n
        boxes = clip_to_size(jnp.concatenate(boxes), size)
        prob = jax.nn.sigmoid(jnp.concatenate(scores))
        levels = jnp.concatenate(levels)
        ok = is_large(boxes, min_size) & (prob >= score_thresh)
        keep, valid = batched_nms(boxes, jnp.where(ok, prob, -jnp.inf), levels, nms_thresh,
                                  post_nms_top_n)
        return (jnp.where(valid[:, None], boxes[keep], 0.0), jnp.where(valid, prob[keep], 0.0),
                valid)

    return jax.vmap(one)(objectness, deltas, image_sizes)


def anchor_targets(key, anchors, gt_boxes, gt_valid, *, fg_iou_thresh=0.7, bg_iou_thresh=0.3,
                   batch_size_per_image=256, positive_fraction=0.5):
    """RPN training targets for a batch: labels, sampled masks and encoded boxes.

    anchors: [N, 4]; gt_boxes: [B, G, 4] xyxy padded; gt_valid: [B, G] bool. Anchors are
    positive at IoU >= fg_iou_thresh or as the best anchor of a ground-truth box, negative below
    bg_iou_thresh (torchvision's Matcher, allow_low_quality_matches); batch_size_per_image are
    sampled per image at up to positive_fraction positives from `key`.
    Returns (positive [B, N] bool, negative [B, N] bool, targets [B, N, 4]).
    """
    keys = jax.random.split(key, gt_boxes.shape[0])

    def one(k, gt, valid):
        labels, matched, _ = match_anchors(anchors, gt, valid, fg_iou_thresh, bg_iou_thresh,
                                           allow_low_quality=True)
        pos, neg = sample_balanced(k, labels, batch_size_per_image, positive_fraction)
        # encode against the anchor itself where not positive (a zero-width gt gives log 0)
        matched_box = jnp.where(pos[:, None], gt[matched], anchors)
        return pos, neg, encode_boxes(matched_box, anchors)

    return jax.vmap(one)(keys, gt_boxes, gt_valid)


class RegionProposalNetwork(nn.Module):
    """Anchors + `RPNHead` (child `head`) + proposals (+ losses in training).

    `__call__(maps, image_shape, image_sizes, train, targets=None)`: maps list of
    [B, h_l, w_l, C]; image_shape (H, W) of the padded batch; image_sizes [B, 2] int.
    Returns (proposals [B, P, 4], proposals_valid [B, P], losses): losses is {} in eval and
    {'rpn_objectness', 'rpn_box'} in training (anchors sampled from the 'sample' rng stream;
    the sampled counts per image [B] are sown as intermediates 'sampled_positive'/'_negative').
    P = post_nms_top_n_test or _train. Defaults: torchvision's. anchor_strides: per level
    (sy, sx) pixels, None for torchvision's (H // h_l, W // w_l).
    """

    anchor_sizes: tuple = ((32,), (64,), (128,), (256,), (512,))
    aspect_ratios: tuple = ((0.5, 1.0, 2.0),) * 5
    anchor_strides: tuple | None = None
    pre_nms_top_n_train: int = 2000
    pre_nms_top_n_test: int = 1000
    post_nms_top_n_train: int = 2000
    post_nms_top_n_test: int = 1000
    nms_thresh: float = 0.7
    fg_iou_thresh: float = 0.7
    bg_iou_thresh: float = 0.3
    batch_size_per_image: int = 256
    positive_fraction: float = 0.5
    score_thresh: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, maps, image_shape, image_sizes, train, targets=None):
        num = {len(r) * len(s) for r, s in zip(self.aspect_ratios, self.anchor_sizes,
                                                 strict=True)}
        if len(num) != 1:
            raise ValueError(f"anchor_sizes/aspect_ratios: expected the same number of anchors "
                             f"per level, got {sorted(num)}")
        anchors, _, counts = generate_anchors([m.shape[1:3] for m in maps], image_shape,
                                              self.anchor_sizes, self.aspect_ratios,
                                              self.anchor_strides,
                                              jnp.promote_types(self.dtype, jnp.float32))
        objectness, deltas = RPNHead(num.pop(), dtype=self.dtype, name="head")(maps)
        pre = self.pre_nms_top_n_train if train else self.pre_nms_top_n_test
        post = self.post_nms_top_n_train if train else self.post_nms_top_n_test
        proposals, _, valid = select_proposals(
            objectness, deltas, anchors, counts, image_sizes, pre_nms_top_n=pre,
            post_nms_top_n=post, nms_thresh=self.nms_thresh, score_thresh=self.score_thresh)
        if not train:
            return proposals, valid, {}
        gt_valid = targets["boxes_valid"]
        if "iscrowd" in targets:
            gt_valid = gt_valid & ~targets["iscrowd"].astype(bool)
        pos, neg, tgt = anchor_targets(
            self.make_rng("sample"), anchors, targets["boxes"], gt_valid,
            fg_iou_thresh=self.fg_iou_thresh, bg_iou_thresh=self.bg_iou_thresh,
            batch_size_per_image=self.batch_size_per_image,
            positive_fraction=self.positive_fraction)
        self.sow("intermediates", "sampled_positive", jnp.sum(pos, axis=1, dtype=jnp.int32))
        self.sow("intermediates", "sampled_negative", jnp.sum(neg, axis=1, dtype=jnp.int32))
        obj, box = rpn_losses(objectness, deltas, tgt, pos, neg)
        return proposals, valid, dict(rpn_objectness=obj, rpn_box=box)
