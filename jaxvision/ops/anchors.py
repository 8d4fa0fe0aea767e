"""Anchor boxes: Faster R-CNN (scales x ratios per position), SSD default boxes, YOLO priors.

All return absolute pixel xyxy boxes, position-major (row, column), then anchor.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from jaxvision.ops._checks import check_pair


def base_anchors(sizes=(128, 256, 512), aspect_ratios=(0.5, 1.0, 2.0), dtype=jnp.float32):
    """Zero-centred anchors, ratio-major then size (torchvision's AnchorGenerator).

    For ratio r = h / w and size s: w = s / sqrt(r), h = s * sqrt(r), rounded (half to even).
    Returns [len(aspect_ratios) * len(sizes), 4] xyxy in `dtype` (float32).
    """
    if not sizes or not aspect_ratios or min(sizes) <= 0 or min(aspect_ratios) <= 0:
        raise ValueError(
            f"sizes/aspect_ratios: expected non-empty positive values, got {sizes} and "
            f"{aspect_ratios}"
        )
    s = jnp.asarray(sizes, dtype)
    hr = jnp.sqrt(jnp.asarray(aspect_ratios, dtype))
    wr = 1 / hr
    ws = (wr[:, None] * s[None, :]).reshape(-1)
    hs = (hr[:, None] * s[None, :]).reshape(-1)
    return jnp.round(jnp.stack([-ws, -hs, ws, hs], axis=1) / 2)


def grid_anchors(feature_size, stride, sizes=(128, 256, 512), aspect_ratios=(0.5, 1.0, 2.0),
                 dtype=jnp.float32):
    """Faster R-CNN anchors for every position of a feature map.

    feature_size: (fh, fw); stride: int or (sy, sx) in pixels. The anchors of position (i, j)
    are `base_anchors` shifted by (j * sx, i * sy) (torchvision's convention).
    Returns [fh * fw * A, 4] xyxy in `dtype`; a 38x50 map with 3 sizes x 3 ratios gives
    17,100 anchors.
    """
    fh, fw = check_pair(feature_size, "feature_size")
    sy, sx = check_pair(stride, "stride")
    base = base_anchors(sizes, aspect_ratios, dtype)
    xs = jnp.arange(fw, dtype=dtype) * sx
    ys = jnp.arange(fh, dtype=dtype) * sy
    yy, xx = jnp.meshgrid(ys, xs, indexing="ij")
    shifts = jnp.stack([xx, yy, xx, yy], axis=-1).reshape(-1, 1, 4)
    return (shifts + base[None]).reshape(-1, 4)


def ssd_scales(num_layers: int, min_ratio=0.15, max_ratio=0.9):
    """SSD per-layer scales s_k = s_min + (s_max - s_min) k / (m - 1), plus a final 1.0."""
    if num_layers < 1:
        raise ValueError(f"num_layers: expected >= 1, got {num_layers}")
    if num_layers == 1:
        return [min_ratio, max_ratio]
    r = max_ratio - min_ratio
    return [min_ratio + r * k / (num_layers - 1.0) for k in range(num_layers)] + [1.0]


def ssd_default_boxes(feature_sizes, image_size, aspect_ratios, scales=None, steps=None,
                      min_ratio=0.15, max_ratio=0.9, clip=True, dtype=jnp.float32):
    """SSD default boxes over several feature maps (torchvision's DefaultBoxGenerator).

    feature_sizes: [(fh, fw), ...] per layer; image_size: (H, W); aspect_ratios: per layer a
    list of extra ratios (each adds w/h and h/w boxes besides the two square ones, s_k and
    sqrt(s_k s_k+1)); scales: len(layers)+1 values (default `ssd_scales`); steps: per-layer pixel
    step for the centres ((j + 0.5) * step), else the map size. Widths clipped to [0, 1] of the
    image when `clip`; the relative (w, h) and centres are float32 (as torchvision's), the
    pixel boxes in `dtype`. Returns [N, 4] xyxy pixels; SSD300 gives 8,732 boxes.
    """
    n = len(feature_sizes)
    if len(aspect_ratios) != n:
        raise ValueError(
            f"aspect_ratios: expected one list per feature map ({n}), got {len(aspect_ratios)}"
        )
    scales = list(scales) if scales is not None else ssd_scales(n, min_ratio, max_ratio)
    if len(scales) != n + 1:
        raise ValueError(f"scales: expected {n + 1} values, got {len(scales)}")
    if steps is not None and len(steps) != n:
        raise ValueError(f"steps: expected {n} values, got {len(steps)}")
    ih, iw = check_pair(image_size, "image_size")
    out = []
    for k, fs in enumerate(feature_sizes):
        fh, fw = check_pair(fs, f"feature_sizes[{k}]")
        sk = scales[k]
        sp = math.sqrt(scales[k] * scales[k + 1])
        wh = [[sk, sk], [sp, sp]]
        for ar in aspect_ratios[k]:
            q = math.sqrt(ar)
            wh += [[sk * q, sk / q], [sk / q, sk * q]]
        # torchvision keeps the (w, h) pairs and the centres in float32 whatever the maps' dtype
        wh = jnp.asarray(wh, jnp.float32)
        if clip:
            wh = jnp.clip(wh, 0, 1)
        wh = wh.astype(dtype)
        yf, xf = (ih / steps[k], iw / steps[k]) if steps is not None else (fh, fw)
        cx = ((jnp.arange(fw, dtype=jnp.float32) + 0.5) / xf).astype(dtype)
        cy = ((jnp.arange(fh, dtype=jnp.float32) + 0.5) / yf).astype(dtype)
        yy, xx = jnp.meshgrid(cy, cx, indexing="ij")
        c = jnp.stack([xx, yy], -1).reshape(-1, 1, 2)
        c = jnp.broadcast_to(c, (fh * fw, len(wh), 2))
        w = jnp.broadcast_to(wh[None], c.shape)
        out.append(jnp.concatenate([c, w], -1).reshape(-1, 4))
    b = jnp.concatenate(out) * jnp.array([iw, ih, iw, ih], dtype)
    return jnp.concatenate([b[:, :2] - 0.5 * b[:, 2:], b[:, :2] + 0.5 * b[:, 2:]], axis=1)


def yolo_anchor_grid(grid_size, stride, anchors):
    """YOLOv3 priors: at each cell centre ((j + 0.5) sx, (i + 0.5) sy) one box per anchor (w, h).

    grid_size: (gh, gw); stride: int or (sy, sx) pixels; anchors: [(w, h), ...] pixels.
    Returns [gh, gw, A, 4] xyxy (13x13 at 416 with stride 32 for the coarsest head).
    """
    gh, gw = check_pair(grid_size, "grid_size")
    sy, sx = check_pair(stride, "stride")
    a = jnp.asarray(anchors, jnp.float32)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"anchors: expected [(w, h), ...] shape [A, 2], got shape {a.shape}")
    cx = (jnp.arange(gw, dtype=jnp.float32) + 0.5) * sx
    cy = (jnp.arange(gh, dtype=jnp.float32) + 0.5) * sy
    yy, xx = jnp.meshgrid(cy, cx, indexing="ij")
    c = jnp.stack([xx, yy], -1)[:, :, None, :]
    half = a[None, None] / 2
    return jnp.concatenate([c - half, c + half], axis=-1)
