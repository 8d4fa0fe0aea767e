"""Box formats, areas, pairwise IoU, clipping and the R-CNN box coder.

Canonical format: absolute pixel `xyxy` (x1, y1, x2, y2) in the last axis of size 4.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from jaxvision.ops._checks import check_choice, check_last_dim, check_pair

_FORMATS = ("xyxy", "xywh", "cxcywh")

# torchvision's BoxCoder clamps dw/dh at log(1000 / 16) before the exp.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def box_convert(boxes, in_fmt: str, out_fmt: str):
    """Converts boxes between 'xyxy', 'xywh' (x1, y1, w, h) and 'cxcywh'.

    boxes: [..., 4] in `in_fmt`. Returns [..., 4] in `out_fmt`.
    """
    check_choice(in_fmt, "in_fmt", _FORMATS)
    check_choice(out_fmt, "out_fmt", _FORMATS)
    check_last_dim(boxes, "boxes")
    boxes = jnp.asarray(boxes)
    if in_fmt == out_fmt:
        return boxes
    a, b, c, d = (boxes[..., i] for i in range(4))
    if in_fmt == "xywh":
        x1, y1, x2, y2 = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        x1, y1, x2, y2 = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    else:
        x1, y1, x2, y2 = a, b, c, d
    if out_fmt == "xyxy":
        out = (x1, y1, x2, y2)
    elif out_fmt == "xywh":
        out = (x1, y1, x2 - x1, y2 - y1)
    else:
        out = ((x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1)
    return jnp.stack(out, axis=-1)


def box_area(boxes):
    """Area of xyxy boxes: [..., 4] -> [...]. Degenerate (x2<x1) boxes give 0, never negative."""
    check_last_dim(boxes, "boxes")
    boxes = jnp.asarray(boxes)
    w = jnp.maximum(boxes[..., 2] - boxes[..., 0], 0)
    h = jnp.maximum(boxes[..., 3] - boxes[..., 1], 0)
    return w * h


def box_intersection(boxes1, boxes2):
    """Pairwise intersection areas: [..., N, 4] x [..., M, 4] xyxy -> [..., N, M]."""
    b1 = jnp.asarray(boxes1)[..., :, None, :]
    b2 = jnp.asarray(boxes2)[..., None, :, :]
    w = jnp.clip(jnp.minimum(b1[..., 2], b2[..., 2]) - jnp.maximum(b1[..., 0], b2[..., 0]), 0)
    h = jnp.clip(jnp.minimum(b1[..., 3], b2[..., 3]) - jnp.maximum(b1[..., 1], b2[..., 1]), 0)
    return w * h


def box_iou(boxes1, boxes2):
    """Pairwise IoU of xyxy boxes: [..., N, 4] x [..., M, 4] -> [..., N, M].

    Leading (batch) axes broadcast. A pair whose union is zero (both boxes empty) gives 0, not NaN.
    """
    check_last_dim(boxes1, "boxes1")
    check_last_dim(boxes2, "boxes2")
    inter = box_intersection(boxes1, boxes2)
    union = box_area(boxes1)[..., :, None] + box_area(boxes2)[..., None, :] - inter
    positive = union > 0
    return jnp.where(positive, inter / jnp.where(positive, union, 1), 0)


def clip_boxes(boxes, image_size):
    """Clips xyxy boxes [..., 4] to an image of `image_size` (height, width); returns [..., 4]."""
    check_last_dim(boxes, "boxes")
    h, w = check_pair(image_size, "image_size")
    boxes = jnp.asarray(boxes)
    x = jnp.clip(boxes[..., 0::2], 0, w)
    y = jnp.clip(boxes[..., 1::2], 0, h)
    return jnp.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], axis=-1)


def encode_boxes(gt_boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    """R-CNN box regression targets (tx, ty, tw, th) of `gt_boxes` relative to `anchors`.

    gt_boxes, anchors: [..., 4] xyxy (broadcast). Returns [..., 4]:
    tx = wx (gx - ax) / aw, ty = wy (gy - ay) / ah, tw = ww log(gw / aw), th = wh log(gh / ah),
    with centres and widths as in torchvision's BoxCoder (no +1).
    """
    check_last_dim(gt_boxes, "gt_boxes")
    check_last_dim(anchors, "anchors")
    wx, wy, ww, wh = _check_weights(weights)
    a = box_convert(anchors, "xyxy", "cxcywh")
    g = box_convert(gt_boxes, "xyxy", "cxcywh")
    tx = wx * (g[..., 0] - a[..., 0]) / a[..., 2]
    ty = wy * (g[..., 1] - a[..., 1]) / a[..., 3]
    tw = ww * jnp.log(g[..., 2] / a[..., 2])
    th = wh * jnp.log(g[..., 3] / a[..., 3])
    return jnp.stack([tx, ty, tw, th], axis=-1)


def decode_boxes(deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0), clip=BBOX_XFORM_CLIP):
    """Inverse of `encode_boxes`: applies deltas [..., 4] (tx, ty, tw, th) to anchors [..., 4] xyxy.

    dw and dh are clamped at `clip` (log(1000/16), as torchvision) before the exp.
    Returns [..., 4] xyxy.
    """
    check_last_dim(deltas, "deltas")
    check_last_dim(anchors, "anchors")
    wx, wy, ww, wh = _check_weights(weights)
    deltas = jnp.asarray(deltas)
    a = box_convert(anchors, "xyxy", "cxcywh")
    dx = deltas[..., 0] / wx
    dy = deltas[..., 1] / wy
    dw = jnp.minimum(deltas[..., 2] / ww, clip)
    dh = jnp.minimum(deltas[..., 3] / wh, clip)
    cx = dx * a[..., 2] + a[..., 0]
    cy = dy * a[..., 3] + a[..., 1]
    w = jnp.exp(dw) * a[..., 2]
    h = jnp.exp(dh) * a[..., 3]
    return jnp.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


def _check_weights(weights):
    weights = tuple(float(w) for w in weights)
    if len(weights) != 4 or any(w <= 0 for w in weights):
        raise ValueError(f"weights: expected 4 positive numbers (wx, wy, ww, wh), got {weights}")
    return weights
