"""R-CNN's region warp (Girshick et al. 2014, appendix A): every region, whatever its aspect
ratio, is dilated to carry `p` pixels of context at the warped size and then warped
anisotropically to a fixed crop.

Definition used here (continuous pixel coordinates, pixel (0, 0) covers [0, 1) x [0, 1), its
centre at +0.5). For a box `x1, y1, x2, y2` and output size `(oh, ow)` the box must fill the
inner `(oh - 2p) x (ow - 2p)` of the crop, so the sampled source window is the box grown by
`p * bw / (ow - 2p)` on the left and right and `p * bh / (oh - 2p)` on top and bottom. Output
pixel `(i, j)` samples the source point at the same relative position of its centre:
`x = X1 + (j + 0.5) * (X2 - X1) / ow`, `y = Y1 + (i + 0.5) * (Y2 - Y1) / oh`, by bilinear
interpolation between the pixel centres around it (indices clamped at the image border). A point
outside the image `[0, W] x [0, H]` takes `fill` (the image mean: 0 after normalisation), as
R-CNN's crops fill the dilated box's part outside the image with the mean.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxvision.ops._checks import check_last_dim, check_pair


def warp_regions(images, boxes, box_indices, size, context_padding: int = 16, fill=0.0):
    """Warps each box of `images` to a fixed crop with `context_padding` pixels of context.

    images: [B, H, W, C]; boxes: [K, 4] xyxy absolute pixels; box_indices: [K] int (image of
    each box); size: (oh, ow) static output size; context_padding: p >= 0 output pixels of
    context on each side (16 at 227 in the paper), 2p < min(oh, ow); fill: value of samples
    outside the image. Returns [K, oh, ow, C] in the images' dtype. Pure jnp, jittable.
    """
    oh, ow = check_pair(size, "size")
    p = int(context_padding)
    if p < 0 or 2 * p >= min(oh, ow):
        raise ValueError(f"context_padding: expected 0 <= p < min(size) / 2 = {min(oh, ow) / 2}, "
                         f"got {context_padding}")
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images: expected [B, H, W, C], got shape {images.shape}")
    check_last_dim(boxes, "boxes")
    boxes = jnp.asarray(boxes, jnp.float32)
    box_indices = jnp.asarray(box_indices, jnp.int32)
    if boxes.ndim != 2 or box_indices.shape != boxes.shape[:1]:
        raise ValueError(f"boxes/box_indices: expected shapes [K, 4] and [K], got {boxes.shape} "
                         f"and {box_indices.shape}")
    _, h, w, _ = images.shape
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    padx = p * (x2 - x1) / (ow - 2 * p)
    pady = p * (y2 - y1) / (oh - 2 * p)
    x1, x2, y1, y2 = x1 - padx, x2 + padx, y1 - pady, y2 + pady
    xs = x1[:, None] + (jnp.arange(ow, dtype=jnp.float32) + 0.5) * ((x2 - x1) / ow)[:, None]
    ys = y1[:, None] + (jnp.arange(oh, dtype=jnp.float32) + 0.5) * ((y2 - y1) / oh)[:, None]
    x0i, x1i, fx = _neighbours(xs, w)  # [K, ow]
    y0i, y1i, fy = _neighbours(ys, h)  # [K, oh]
    b = box_indices[:, None, None]

    def at(yi, xi):
        return images[b, yi[:, :, None], xi[:, None, :]].astype(jnp.float32)  # [K, oh, ow, C]

    fx = fx[:, None, :, None]
    fy = fy[:, :, None, None]
    top = at(y0i, x0i) * (1 - fx) + at(y0i, x1i) * fx
    bottom = at(y1i, x0i) * (1 - fx) + at(y1i, x1i) * fx
    out = top * (1 - fy) + bottom * fy
    inside = ((xs >= 0) & (xs <= w))[:, None, :] & ((ys >= 0) & (ys <= h))[:, :, None]
    return jnp.where(inside[..., None], out, fill).astype(images.dtype)


def _neighbours(coords, n):
    """Bilinear neighbours of continuous coordinates along an axis of `n` pixels: the two pixel
    indices (clamped to [0, n-1]) around `coords - 0.5` and the weight of the second."""
    u = coords - 0.5
    lo = jnp.floor(u)
    frac = u - lo
    lo = lo.astype(jnp.int32)
    return jnp.clip(lo, 0, n - 1), jnp.clip(lo + 1, 0, n - 1), frac
