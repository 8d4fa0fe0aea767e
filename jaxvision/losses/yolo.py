"""YOLOv3 box decoding and training loss, static shapes (padded ground truth).

Assignment (the paper, section 2.1): each valid ground-truth box goes to the one anchor, among all
len(strides) x A anchors, whose (w, h) has the highest IoU with its (w, h) (both centred); that
fixes its stride s and anchor a, and its cell is the one holding its centre
(i = floor(cy / s), j = floor(cx / s), clipped to the grid). When two boxes fall on the same
(stride, cell, anchor) the later one (higher index) owns it.

Terms, summed over the batch and divided by the batch size (darknet sums; this keeps the scale
independent of B), each unweighted:
- 'xy': binary cross-entropy of (tx, ty) logits against the centre's offset in its cell
  (sigmoid(tx) is the offset; the BCE form of the paper's logistic coordinates, as most
  implementations), on positives;
- 'wh': squared error of (tw, th) against log(w / a_w), log(h / a_h), on positives;
  both box terms weighted by darknet's (2 - w h / (W H)) so small boxes count more;
- 'objectness': BCE, target 1 on positives, 0 on the other predictions except those whose
  decoded box overlaps some ground truth with IoU > ignore_thresh (ignored, the paper's 0.5);
- 'classification': BCE of every class logit against the one-hot label (independent logistic
  classifiers, no softmax), on positives.
An image without boxes gives only the objectness term (all negatives).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision.losses.detection import sigmoid_bce
from jaxvision.ops.boxes import BBOX_XFORM_CLIP, box_iou


def decode_yolo(raw, stride: int, anchors):
    """raw: [..., H, W, A, 5 + C] (tx, ty, tw, th, ...); anchors: [A, 2] (w, h) pixels.

    Returns [..., H, W, A, 4] xyxy pixels (float32, float64 for float64 raw): centre
    ((sigmoid(tx) + j) stride, (sigmoid(ty) + i) stride), size anchor * exp(min(t,
    log(1000 / 16))).
    """
    h, w, a = raw.shape[-4:-1]
    dt = jnp.promote_types(jnp.asarray(raw).dtype, jnp.float32)  # float64 raw stays float64
    anchors = jnp.asarray(anchors, dt)
    if anchors.shape != (a, 2):
        raise ValueError(f"decode_yolo anchors: expected shape {(a, 2)}, got {anchors.shape}")
    raw = raw.astype(dt)
    j = jnp.arange(w, dtype=dt)[None, :, None]
    i = jnp.arange(h, dtype=dt)[:, None, None]
    cx = (jax.nn.sigmoid(raw[..., 0]) + j) * stride
    cy = (jax.nn.sigmoid(raw[..., 1]) + i) * stride
    bw = anchors[:, 0] * jnp.exp(jnp.minimum(raw[..., 2], BBOX_XFORM_CLIP))
    bh = anchors[:, 1] * jnp.exp(jnp.minimum(raw[..., 3], BBOX_XFORM_CLIP))
    return jnp.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)


def wh_iou(wh1, wh2):
    """IoU of centred boxes from their sizes: [N, 2] x [M, 2] -> [N, M]."""
    inter = (jnp.minimum(wh1[:, None, 0], wh2[None, :, 0])
             * jnp.minimum(wh1[:, None, 1], wh2[None, :, 1]))
    union = (wh1[:, 0] * wh1[:, 1])[:, None] + (wh2[:, 0] * wh2[:, 1])[None, :] - inter
    return inter / jnp.maximum(union, 1e-12)


def _per_image(raw, strides, anchors, gt_boxes, gt_labels, gt_valid, image_size,
               ignore_thresh):
    ih, iw = image_size
    num_a = anchors[0].shape[0]
    g = gt_boxes.shape[0]
    gw = gt_boxes[:, 2] - gt_boxes[:, 0]
    gh = gt_boxes[:, 3] - gt_boxes[:, 1]
    gcx = (gt_boxes[:, 0] + gt_boxes[:, 2]) / 2
    gcy = (gt_boxes[:, 1] + gt_boxes[:, 3]) / 2
    all_anchors = jnp.concatenate(anchors)  # [S * A, 2]
    best = jnp.argmax(wh_iou(jnp.stack([gw, gh], 1), all_anchors), axis=1)  # [G]
    box_scale = 2.0 - gw * gh / (ih * iw)
    terms = {"xy": 0.0, "wh": 0.0, "objectness": 0.0, "classification": 0.0}
    gidx = jnp.arange(g, dtype=jnp.int32)
    for k, (r, s) in enumerate(zip(raw, strides, strict=True)):
        h, w = r.shape[:2]
        num_c = r.shape[-1] - 5
        a = best - k * num_a
        mine = gt_valid & (a >= 0) & (a < num_a)
        i = jnp.clip(jnp.floor(gcy / s), 0, h - 1).astype(jnp.int32)
        j = jnp.clip(jnp.floor(gcx / s), 0, w - 1).astype(jnp.int32)
        flat = jnp.where(mine, (i * w + j) * num_a + a, h * w * num_a)
        owner = jnp.full((h * w * num_a,), -1, jnp.int32).at[flat].max(gidx, mode="drop")
        owner = owner.reshape(h, w, num_a)
        pos = owner >= 0
        o = jnp.maximum(owner, 0)
        anc = anchors[k]
        # targets gathered from each cell's owner (finite everywhere, masked by pos)
        tx = gcx[o] / s - jnp.arange(w, dtype=jnp.float32)[None, :, None]
        ty = gcy[o] / s - jnp.arange(h, dtype=jnp.float32)[:, None, None]
        safe_w = jnp.where(pos, gw[o], anc[None, None, :, 0])
        safe_h = jnp.where(pos, gh[o], anc[None, None, :, 1])
        tw = jnp.log(safe_w / anc[None, None, :, 0])
        th = jnp.log(safe_h / anc[None, None, :, 1])
        weight = jnp.where(pos, box_scale[o], 0.0)
        xy = sigmoid_bce(r[..., 0], tx) + sigmoid_bce(r[..., 1], ty)
        wh = (r[..., 2] - tw) ** 2 + (r[..., 3] - th) ** 2
        terms["xy"] += jnp.sum(weight * xy)
        terms["wh"] += jnp.sum(weight * wh)
        onehot = jax.nn.one_hot(gt_labels[o] - 1, num_c)
        terms["classification"] += jnp.sum(pos[..., None] * sigmoid_bce(r[..., 5:], onehot))
        pred = jax.lax.stop_gradient(decode_yolo(r, s, anc)).reshape(-1, 4)
        iou = jnp.where(gt_valid[None, :], box_iou(pred, gt_boxes), 0.0)
        ignore = (jnp.max(iou, axis=1) > ignore_thresh).reshape(h, w, num_a)
        obj = r[..., 4]
        terms["objectness"] += jnp.sum(pos * sigmoid_bce(obj, jnp.ones_like(obj))
                                       + (~pos & ~ignore) * sigmoid_bce(obj, jnp.zeros_like(obj)))
    return terms


def yolo_loss(raw, strides, anchors, gt_boxes, gt_labels, gt_valid, image_size,
              ignore_thresh: float = 0.5):
    """YOLOv3 loss terms (see the module docstring) for a padded batch.

    raw: one [B, H_s, W_s, A, 5 + C] per stride; strides: ints; anchors: one [A, 2] (w, h)
    pixels per stride; gt_boxes: [B, G, 4] xyxy pixels; gt_labels: [B, G] int (1..C);
    gt_valid: [B, G] bool (boxes of zero width or height count as padding); image_size: (H, W).
    Returns {'xy', 'wh', 'objectness', 'classification'} float32 scalars.
    """
    if len(raw) != len(strides) or len(anchors) != len(strides):
        raise ValueError(f"yolo_loss raw/anchors: expected one per stride ({len(strides)}), got "
                         f"{len(raw)} and {len(anchors)}")
    if (gt_boxes.ndim != 3 or gt_boxes.shape[:2] != gt_labels.shape
            or gt_labels.shape != gt_valid.shape):
        raise ValueError(f"yolo_loss gt_boxes/gt_labels/gt_valid: expected shapes [B, G, 4], "
                         f"[B, G], [B, G], got {gt_boxes.shape}, {gt_labels.shape}, "
                         f"{gt_valid.shape}")
    gt_boxes = jnp.asarray(gt_boxes, jnp.float32)
    if gt_boxes.shape[1] == 0:  # one padding box keeps the gathers well-formed
        gt_boxes = jnp.zeros((gt_boxes.shape[0], 1, 4), jnp.float32)
        gt_labels = jnp.zeros((gt_boxes.shape[0], 1), jnp.int32)
        gt_valid = jnp.zeros((gt_boxes.shape[0], 1), bool)
    gt_valid = (jnp.asarray(gt_valid, bool) & (gt_boxes[..., 2] > gt_boxes[..., 0])
                & (gt_boxes[..., 3] > gt_boxes[..., 1]))
    anchors = [jnp.asarray(a, jnp.float32) for a in anchors]
    terms = jax.vmap(lambda r, b, lab, v: _per_image(
        r, tuple(strides), anchors, b, lab, v, image_size, ignore_thresh))(
        [x.astype(jnp.float32) for x in raw], gt_boxes, jnp.asarray(gt_labels, jnp.int32),
        gt_valid)
    batch = gt_boxes.shape[0]
    return {k: jnp.sum(v) / batch for k, v in terms.items()}
