"""Second stage (torchvision's roi_heads.py): RoI pooling, box head and predictor, postprocess,
RoI sampling for training, and the Mask R-CNN mask head. Static shapes with validity masks."""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.losses.rcnn import fast_rcnn_losses, mask_rcnn_loss
from jaxvision.models.detection.rpn import clip_to_size, is_large
from jaxvision.ops import (
    batched_nms,
    block_upsample,
    decode_boxes,
    encode_boxes,
    match_anchors,
    multiscale_roi_align,
    roi_align,
    roi_pool,
    sample_balanced,
)

# torch.nn.Linear's default init (kaiming_uniform a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
_linear_init = nn.initializers.variance_scaling(1.0 / 3, "fan_in", "uniform")
_mask_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def feature_scale(feature_shape, image_shape):
    """torchvision's MultiScaleRoIAlign scale: 2 ** round(log2(feature height / image height))."""
    return 2.0 ** round(math.log2(feature_shape[0] / image_shape[0]))


def pool_rois(maps, image_shape, boxes, output_size, *, mode="align", sampling_ratio=2):
    """Pools RoIs from one map or an FPN pyramid (torchvision's MultiScaleRoIAlign, LevelMapper
    with k_min/k_max from the maps' scales; or RoI Pool on a single map for mode='pool').

    maps: list of [B, H_l, W_l, C] finest first; image_shape: (H, W) of the padded batch;
    boxes: [B, R, 4] xyxy. Returns [B, R, oh, ow, C].
    """
    b, r = boxes.shape[:2]
    flat = boxes.reshape(-1, 4)
    idx = jnp.repeat(jnp.arange(b, dtype=jnp.int32), r)
    scales = [feature_scale(m.shape[1:3], image_shape) for m in maps]
    if mode == "pool":
        if len(maps) != 1:
            raise ValueError(f"box_roi_pool 'pool': expected one feature map, got {len(maps)}")
        out = roi_pool(maps[0], flat, idx, output_size, scales[0])
    elif mode == "align":
        k_min = int(round(-math.log2(scales[0])))
        out = multiscale_roi_align(maps, flat, idx, output_size, scales, sampling_ratio,
                                   min_level=k_min)
    else:
        raise ValueError(f"box_roi_pool: expected 'align' or 'pool', got {mode!r}")
    return out.reshape((b, r) + out.shape[1:])


class TwoMLPHead(nn.Module):
    """Flatten (h, w, c) + fc6 + ReLU + fc7 + ReLU: [..., oh, ow, C] -> [..., representation]."""

    representation_size: int = 1024
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[:-3] + (-1,))
        for name in ("fc6", "fc7"):
            x = nn.relu(nn.Dense(self.representation_size, kernel_init=_linear_init,
                                 dtype=self.dtype, name=name)(x))
        return x


class FastRCNNPredictor(nn.Module):
    """`cls_score` [..., K] logits and `bbox_pred` [..., 4 K] class-specific deltas."""

    num_classes: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        cls = nn.Dense(self.num_classes, kernel_init=_linear_init, dtype=self.dtype,
                       name="cls_score")(x)
        reg = nn.Dense(4 * self.num_classes, kernel_init=_linear_init, dtype=self.dtype,
                       name="bbox_pred")(x)
        out = jnp.promote_types(self.dtype, jnp.float32)  # bfloat16 -> float32; float64 stays
        return cls.astype(out), reg.astype(out)


class MaskHead(nn.Module):
    """Mask R-CNN FPN mask branch: 4 x (3x3 conv + ReLU) `mask_fcn1..4`, 2x2 stride-2 transposed
    conv + ReLU `conv5_mask`, 1x1 conv `mask_fcn_logits` to K classes.

    [N, 14, 14, C] -> [N, 28, 28, K] logits.
    """

    num_classes: int
    layers: tuple[int, ...] = (256, 256, 256, 256)
    dim_reduced: int = 256
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        for i, c in enumerate(self.layers):
            x = nn.relu(nn.Conv(c, (3, 3), padding=((1, 1), (1, 1)), kernel_init=_mask_init,
                                dtype=self.dtype, name=f"mask_fcn{i + 1}")(x))
        # transposed conv, kernel 2 stride 2: out[2i + a, 2j + b] = x[i, j] @ W[a, b]
        w = self.param("conv5_mask", _mask_init, (2, 2, x.shape[-1], self.dim_reduced))
        bias = self.param("conv5_mask_bias", nn.initializers.zeros, (self.dim_reduced,))
        x = nn.relu(block_upsample(x, w.astype(x.dtype)) + bias.astype(x.dtype))
        x = nn.Conv(self.num_classes, (1, 1), kernel_init=_mask_init, dtype=self.dtype,
                    name="mask_fcn_logits")(x)
        return x.astype(jnp.promote_types(self.dtype, jnp.float32))


def postprocess_detections(class_logits, box_regression, proposals, proposals_valid,
                           image_sizes, *, score_thresh, nms_thresh, detections_per_img,
                           min_size=1e-2, weights=BOX_WEIGHTS):
    """torchvision's RoIHeads.postprocess_detections at static shapes.

    class_logits: [B, P, K]; box_regression: [B, P, 4 K]; proposals: [B, P, 4];
    proposals_valid: [B, P]; image_sizes: [B, 2] (height, width). Softmax, per-class decode
    (weights 10, 10, 5, 5), clip, drop background, keep score > score_thresh and sides >=
    min_size, NMS per class, the best detections_per_img.
    Returns (boxes [B, D, 4], scores [B, D], labels [B, D] int32, valid [B, D]).
    """
    k = class_logits.shape[-1]

    def one(logits, reg, props, pvalid, size):
        p = logits.shape[0]
        boxes = decode_boxes(reg.reshape(p, k, 4), props[:, None, :], weights)
        boxes = clip_to_size(boxes, size)[:, 1:].reshape(-1, 4)
        scores = jax.nn.softmax(logits, axis=-1)[:, 1:].reshape(-1)
        labels = jnp.tile(jnp.arange(1, k, dtype=jnp.int32), p)
        ok = (jnp.repeat(pvalid, k - 1) & (scores > score_thresh) & is_large(boxes, min_size))
        keep, valid = batched_nms(boxes, jnp.where(ok, scores, -jnp.inf), labels, nms_thresh,
                                  detections_per_img)
        return (jnp.where(valid[:, None], boxes[keep], 0.0), jnp.where(valid, scores[keep], 0.0),
                jnp.where(valid, labels[keep], 0), valid)

    return jax.vmap(one)(class_logits, box_regression, proposals, proposals_valid, image_sizes)


def sample_rois(key, proposals, proposals_valid, gt_boxes, gt_labels, gt_valid, *,
                fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=512,
                positive_fraction=0.25, weights=BOX_WEIGHTS):
    """torchvision's select_training_samples: ground-truth boxes appended to the proposals,
    matched (IoU >= fg_iou_thresh foreground with the box's label, < bg_iou_thresh background),
    batch_size_per_image sampled at up to positive_fraction foreground from `key`.

    proposals: [B, P, 4]; proposals_valid: [B, P]; gt_boxes: [B, G, 4]; gt_labels: [B, G] int;
    gt_valid: [B, G]. Returns a dict of [B, S, ...] arrays, S = min(batch_size_per_image,
    P + G): 'boxes' [B, S, 4], 'labels' [B, S] int32 (0 background), 'targets' [B, S, 4]
    (encoded, weights 10, 10, 5, 5), 'matched' [B, S] int32 gt index, 'sampled' [B, S] bool.
    """
    s = min(batch_size_per_image, proposals.shape[1] + gt_boxes.shape[1])
    keys = jax.random.split(key, proposals.shape[0])

    def one(kk, props, pvalid, gt, glab, gvalid):
        rois = jnp.concatenate([props, gt])
        rvalid = jnp.concatenate([pvalid, gvalid])
        labels, matched, _ = match_anchors(rois, gt, gvalid, fg_iou_thresh, bg_iou_thresh,
                                           allow_low_quality=False)
        labels = jnp.where(rvalid, labels, -1)
        pos, neg = sample_balanced(kk, labels, batch_size_per_image, positive_fraction)
        (idx,) = jnp.nonzero(pos | neg, size=s, fill_value=0)
        sampled = jnp.arange(s) < jnp.sum(pos | neg)
        boxes = rois[idx]
        fg = sampled & pos[idx]
        m = matched[idx]
        cls = jnp.where(fg, glab[m], 0).astype(jnp.int32)
        unit = jnp.array([0.0, 0.0, 1.0, 1.0], gt.dtype)  # encodes to finite numbers, then masked
        target_box = jnp.where(fg[:, None], gt[m], unit)
        safe = jnp.where(fg[:, None], boxes, unit)
        targets = jnp.where(fg[:, None], encode_boxes(target_box, safe, weights), 0.0)
        return dict(boxes=jnp.where(sampled[:, None], boxes, 0.0), labels=cls, targets=targets,
                    matched=m, sampled=sampled)

    return jax.vmap(one)(keys, proposals, proposals_valid, gt_boxes, gt_labels, gt_valid)


def mask_targets(gt_masks, boxes, matched, size):
    """torchvision's project_masks_on_boxes: RoI Align (sampling_ratio -1, aligned=False) of
    each RoI's matched ground-truth mask over the RoI, at size x size.

    gt_masks: [B, G, H, W]; boxes: [B, S, 4]; matched: [B, S] int. Returns [B, S, size, size].
    """
    def one_box(mask, box):
        return roi_align(mask[None, :, :, None], box[None], jnp.zeros((1,), jnp.int32),
                         (size, size), 1.0, -1, False)[0, ..., 0]

    def one_image(masks, bx, m):
        return jax.vmap(one_box)(masks[m].astype(jnp.float32), bx)

    return jax.vmap(one_image)(gt_masks, boxes, matched)


class RoIHeads(nn.Module):
    """Box (and optionally mask) second stage on pooled RoI features.

    `__call__(maps, image_shape, image_sizes, proposals, proposals_valid, train, targets)`:
    maps: list of [B, H_l, W_l, C] finest first. Eval returns the detections dict ('boxes',
    'scores', 'labels', 'valid', + 'masks' [B, D, M, M] probabilities of the detected class);
    train returns {'classifier', 'box_reg' (+ 'mask')} unweighted losses, sampling RoIs from the
    'sample' rng stream (sampled foreground/background counts per image [B] sown as
    intermediates 'sampled_positive'/'_negative'). Children: box_head (fc6, fc7),
    box_predictor (cls_score, bbox_pred), mask_head (mask_fcn1..4, conv5_mask,
    mask_fcn_logits).
    """

    num_classes: int
    box_roi_pool: str = "align"
    box_output_size: int = 7
    sampling_ratio: int = 2
    representation_size: int = 1024
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 100
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25
    bbox_reg_weights: tuple[float, ...] = BOX_WEIGHTS
    mask: bool = False
    mask_output_size: int = 14
    mask_layers: tuple[int, ...] = (256, 256, 256, 256)
    mask_dim_reduced: int = 256
    dtype: Any = jnp.float32

    def setup(self):
        self.box_head = TwoMLPHead(self.representation_size, dtype=self.dtype)
        self.box_predictor = FastRCNNPredictor(self.num_classes, dtype=self.dtype)
        if self.mask:
            self.mask_head = MaskHead(self.num_classes, self.mask_layers, self.mask_dim_reduced,
                                      dtype=self.dtype)

    def _boxes(self, maps, image_shape, boxes):
        x = pool_rois(maps, image_shape, boxes, self.box_output_size, mode=self.box_roi_pool,
                      sampling_ratio=self.sampling_ratio)
        return self.box_predictor(self.box_head(x))

    def _mask_logits(self, maps, image_shape, boxes):
        x = pool_rois(maps, image_shape, boxes, self.mask_output_size, mode="align",
                      sampling_ratio=self.sampling_ratio)
        b, r = x.shape[:2]
        y = self.mask_head(x.reshape((b * r,) + x.shape[2:]))
        return y.reshape((b, r) + y.shape[1:])  # [B, R, 2M, 2M, K]

    def __call__(self, maps, image_shape, image_sizes, proposals, proposals_valid, train,
                 targets=None):
        if not train:
            cls, reg = self._boxes(maps, image_shape, proposals)
            boxes, scores, labels, valid = postprocess_detections(
                cls, reg, proposals, proposals_valid, image_sizes,
                score_thresh=self.box_score_thresh, nms_thresh=self.box_nms_thresh,
                detections_per_img=self.box_detections_per_img,
                weights=self.bbox_reg_weights)
            out = dict(boxes=boxes, scores=scores, labels=labels, valid=valid)
            if self.mask:
                logits = self._mask_logits(maps, image_shape, boxes)
                sel = jnp.take_along_axis(logits, labels[:, :, None, None, None], axis=-1)
                out["masks"] = jnp.where(valid[..., None, None], jax.nn.sigmoid(sel[..., 0]), 0.0)
            return out
        gt_valid = targets["boxes_valid"]
        if "iscrowd" in targets:
            gt_valid = gt_valid & ~targets["iscrowd"].astype(bool)
        s = sample_rois(self.make_rng("sample"), jax.lax.stop_gradient(proposals),
                        proposals_valid, targets["boxes"], targets["labels"], gt_valid,
                        fg_iou_thresh=self.box_fg_iou_thresh,
                        bg_iou_thresh=self.box_bg_iou_thresh,
                        batch_size_per_image=self.box_batch_size_per_image,
                        positive_fraction=self.box_positive_fraction,
                        weights=self.bbox_reg_weights)
        fg = s["sampled"] & (s["labels"] > 0)
        self.sow("intermediates", "sampled_positive", jnp.sum(fg, axis=1, dtype=jnp.int32))
        self.sow("intermediates", "sampled_negative",
                 jnp.sum(s["sampled"] & ~fg, axis=1, dtype=jnp.int32))
        cls, reg = self._boxes(maps, image_shape, s["boxes"])
        classifier, box_reg = fast_rcnn_losses(cls, reg, s["labels"], s["targets"], s["sampled"])
        losses = dict(classifier=classifier, box_reg=box_reg)
        if self.mask:
            if "masks" not in targets:
                raise ValueError("targets: expected a 'masks' field [B, N, H, W] for Mask R-CNN, "
                                 f"got fields {sorted(targets)}")
            n_pos = max(1, min(fg.shape[1], int(self.box_batch_size_per_image
                                                * self.box_positive_fraction)))
            pidx = jax.vmap(lambda f: jnp.nonzero(f, size=n_pos, fill_value=0)[0])(fg)
            take = lambda a: jnp.take_along_axis(a, pidx, axis=1)  # noqa: E731
            pos = jnp.arange(n_pos)[None] < jnp.sum(fg, axis=1, keepdims=True)
            boxes = jnp.take_along_axis(s["boxes"], pidx[..., None], axis=1)
            logits = self._mask_logits(maps, image_shape, boxes)
            tgt = mask_targets(targets["masks"], boxes, take(s["matched"]), logits.shape[2])
            losses["mask"] = mask_rcnn_loss(logits, take(s["labels"]), tgt, pos)
        return losses
