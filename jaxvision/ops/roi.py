"""RoI Align, RoI Pool and FPN level assignment on NHWC feature maps.

`roi_align` follows torchvision's compiled CPU/CUDA kernels sample for sample. Bilinear
interpolation is separable, and so is the kernel's out-of-map rule (a sample with y < -1, y > H,
x < -1 or x > W contributes 0), so each box's output is `Ay @ F @ Ax^T / count` with per-box
weight matrices Ay [oh, H] and Ax [ow, W] that sum every sample's bilinear weights. The
contraction is a dense (one-hot style) matmul: exact for any box size, including torchvision's
adaptive `sampling_ratio <= 0` (ceil(roi / out) samples per bin, unbounded), and it maps onto
MXU/tensor cores. The weights are built without enumerating an unbounded number of samples:
for a row r only samples within distance 2 can touch it, and in the adaptive case consecutive
samples are more than half a pixel apart, so a fixed window of 6 candidates per (bin, row) holds
all of them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.ops._checks import check_last_dim, check_pair, check_rank

_WINDOW = 7


def _check_inputs(features, boxes, box_indices):
    check_rank(features, "features", 4, "[B, H, W, C] (NHWC)")
    check_last_dim(boxes, "boxes")
    boxes = jnp.asarray(boxes)
    if boxes.ndim != 2:
        raise ValueError(f"boxes: expected shape [K, 4] xyxy, got {boxes.shape}")
    box_indices = jnp.asarray(box_indices)
    if box_indices.shape != boxes.shape[:1]:
        raise ValueError(
            f"box_indices: expected shape {boxes.shape[:1]} (one per box), got {box_indices.shape}"
        )
    if not jnp.issubdtype(box_indices.dtype, jnp.integer):
        raise ValueError(f"box_indices: expected an integer dtype, got {box_indices.dtype}")
    return boxes, box_indices


def _axis_weights(start, bin_size, grid, out_size, length, static_grid):
    """Summed bilinear weights of each bin's samples along one axis: [K, out_size, length].

    start, bin_size: [K] float; grid: [K] samples per bin (float, may be <= 0: no samples).
    static_grid: the fixed sampling ratio, or None for the adaptive (windowed) case.
    """
    dt = start.dtype
    p = jnp.arange(out_size, dtype=dt)
    r = jnp.arange(length)
    base = start[:, None] + p[None, :] * bin_size[:, None]  # [K, P]
    if static_grid is not None:
        i = jnp.arange(static_grid, dtype=dt)
        y = base[..., None] + ((i + 0.5) * bin_size[:, None, None]) / grid[:, None, None]
        y = y[..., None]  # [K, P, S, 1]
        valid = jnp.ones(y.shape, bool)
        rr = r
        sum_axis = 2
    else:
        g = grid[:, None, None]
        step = bin_size[:, None, None] / jnp.maximum(g, 1)
        step = jnp.where(step > 0, step, 1)
        lo = jnp.where(r == 0, -1, r - 1).astype(dt)[None, None, :]
        first = jnp.floor((lo - base[..., None]) / step - 0.5) - 1
        first = jnp.clip(first, 0, jnp.maximum(g, 0))  # [K, P, R]
        i = first[..., None] + jnp.arange(_WINDOW, dtype=dt)  # [K, P, R, W]
        valid = i < g[..., None]
        y = base[..., None, None] + ((i + 0.5) * bin_size[:, None, None, None]) / g[..., None]
        rr = r[:, None]
        sum_axis = 3
    inside = valid & (y >= -1) & (y <= length)
    y = jnp.maximum(y, 0)
    low = jnp.floor(y).astype(jnp.int32)
    at_end = low >= length - 1
    low = jnp.where(at_end, length - 1, low)
    high = jnp.where(at_end, length - 1, low + 1)
    y = jnp.where(at_end, low.astype(dt), y)
    ly = y - low
    hy = 1 - ly
    w = jnp.where(low == rr, hy, 0) + jnp.where(high == rr, ly, 0)
    w = jnp.where(inside, w, 0)
    return jnp.sum(w, axis=sum_axis)


def roi_align(features, boxes, box_indices, output_size, spatial_scale=1.0, sampling_ratio=-1,
              aligned=False):
    """RoI Align (Mask R-CNN) with torchvision's kernel numerics.

    features: [B, H, W, C]; boxes: [K, 4] xyxy in input-image pixels (scaled by
    `spatial_scale`); box_indices: [K] int, the batch element of each box;
    output_size: (oh, ow) or int; sampling_ratio: samples per bin side, <= 0 for adaptive
    ceil(roi_size / output_size); aligned: shift box coordinates by -0.5 pixel.
    Returns [K, oh, ow, C] in the features' dtype. Gradients flow to `features` only (as
    torchvision; boxes are treated as constants).
    """
    boxes, box_indices = _check_inputs(features, boxes, box_indices)
    output_size = check_pair(output_size, "output_size")
    if not isinstance(sampling_ratio, (int, np.integer)):
        raise ValueError(f"sampling_ratio: expected an int, got {sampling_ratio!r}")
    return _roi_align(jnp.asarray(features), boxes, box_indices, output_size,
                      float(spatial_scale), int(sampling_ratio), bool(aligned))


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _roi_align(features, boxes, box_indices, output_size, spatial_scale, sampling_ratio,
               aligned):
    oh, ow = output_size
    b, h, w, _ = features.shape
    dt = jnp.promote_types(features.dtype, jnp.float32)
    boxes = jax.lax.stop_gradient(boxes).astype(dt)
    offset = 0.5 if aligned else 0.0
    x1 = boxes[:, 0] * spatial_scale - offset
    y1 = boxes[:, 1] * spatial_scale - offset
    x2 = boxes[:, 2] * spatial_scale - offset
    y2 = boxes[:, 3] * spatial_scale - offset
    rw = x2 - x1
    rh = y2 - y1
    if not aligned:
        rw = jnp.maximum(rw, 1)
        rh = jnp.maximum(rh, 1)
    bh = rh / oh
    bw = rw / ow
    if sampling_ratio > 0:
        gh = gw = jnp.full(rh.shape, sampling_ratio, dt)
        static = int(sampling_ratio)
    else:
        gh = jnp.ceil(rh / oh)
        gw = jnp.ceil(rw / ow)
        static = None
    count = jnp.maximum(gh * gw, 1)
    ay = _axis_weights(y1, bh, gh, oh, h, static)  # [K, oh, H]
    ax = _axis_weights(x1, bw, gw, ow, w, static)  # [K, ow, W]
    ay = ay / count[:, None, None]
    onehot = jax.nn.one_hot(box_indices, b, dtype=dt)  # [K, B]
    ayb = (onehot[:, None, :, None] * ay[:, :, None, :]).reshape(-1, oh, b * h)
    fmap = features.astype(dt).reshape(b * h, w, -1)
    hp = jax.lax.Precision.HIGHEST
    rows = jnp.einsum("kpr,rwc->kpwc", ayb, fmap, precision=hp)  # [K, oh, W, C]
    out = jnp.einsum("kqw,kpwc->kpqc", ax, rows, precision=hp)
    return out.astype(features.dtype)


def _round_half_away(x):
    """C++ std::round: nearest integer, halves away from zero (exact: x - trunc(x) is exact)."""
    t = jnp.trunc(x)
    return jnp.where(jnp.abs(x - t) >= 0.5, t + jnp.sign(x), t)


def _pool_bin_bounds(size, out):
    """torchvision's roi_pool bin bounds along one axis, in the kernel's float32 arithmetic.

    size: [K] int32 roi sizes (>= 1); out: static bin count. Returns (lo, hi) [K, out] int32
    offsets from the roi start: floor(p * bs), ceil((p + 1) * bs) with bs = float32(size) /
    float32(out). The divisor goes through an optimisation barrier so XLA cannot rewrite the
    true division into a multiplication by the rounded reciprocal 1/out (which makes the last
    bin one cell longer for e.g. size 7, out 3).
    """
    den = jax.lax.optimization_barrier(jnp.full(size.shape, out, jnp.float32))
    bs = size.astype(jnp.float32) / den
    p = jnp.arange(out, dtype=jnp.float32)
    lo = jnp.floor(p * bs[:, None]).astype(jnp.int32)
    hi = jnp.ceil((p + 1) * bs[:, None]).astype(jnp.int32)
    return lo, hi


def roi_pool(features, boxes, box_indices, output_size, spatial_scale=1.0):
    """RoI max pooling (Fast R-CNN) with torchvision's quantisation rules.

    features: [B, H, W, C]; boxes: [K, 4] xyxy (scaled by `spatial_scale`, then rounded);
    box_indices: [K] int; output_size: (oh, ow) or int. Returns [K, oh, ow, C]; empty bins give 0.
    """
    boxes, box_indices = _check_inputs(features, boxes, box_indices)
    output_size = check_pair(output_size, "output_size")
    return _roi_pool(jnp.asarray(features), boxes, box_indices, output_size, float(spatial_scale))


@functools.partial(jax.jit, static_argnums=(3, 4))
def _roi_pool(features, boxes, box_indices, output_size, spatial_scale):
    oh, ow = output_size
    _, h, w, _ = features.shape
    q = _round_half_away(jax.lax.stop_gradient(boxes).astype(jnp.float32) * spatial_scale)
    q = q.astype(jnp.int32)
    sx, sy = q[:, 0], q[:, 1]
    rw = jnp.maximum(q[:, 2] - sx + 1, 1)
    rh = jnp.maximum(q[:, 3] - sy + 1, 1)

    def bins(start, size, out, length):
        lo, hi = _pool_bin_bounds(size, out)
        lo = jnp.clip(lo + start[:, None], 0, length)
        hi = jnp.clip(hi + start[:, None], 0, length)
        r = jnp.arange(length)
        mask = (r >= lo[..., None]) & (r < hi[..., None])  # [K, out, length]
        return mask, hi > lo

    my, ney = bins(sy, rh, oh, h)
    mx, nex = bins(sx, rw, ow, w)
    neg = jnp.array(-jnp.inf, features.dtype)

    def one_box(args):
        bi, mky, mkx = args
        fmap = features[bi]  # [H, W, C]
        cols = jnp.max(jnp.where(mkx[None, :, :, None], fmap[:, None], neg), axis=2)
        return jnp.max(jnp.where(mky[:, :, None, None], cols[None], neg), axis=1)

    # boxes in batches of 16: never materialises a [K, H, W, C] gather of the maps
    out = jax.lax.map(one_box, (box_indices, my, mx), batch_size=16)
    nonempty = ney[:, :, None] & nex[:, None, :]
    return jnp.where(nonempty[..., None], out, 0)


def fpn_level(boxes, min_level=2, max_level=5, canonical_scale=224, canonical_level=4, eps=1e-6):
    """FPN level of each box (Lin et al. eq. 1, as torchvision's LevelMapper).

    k = floor(k0 + log2(sqrt(area) / s0) + eps), clamped to [min_level, max_level].
    boxes: [K, 4] xyxy. Returns int32 [K] levels.
    """
    check_last_dim(boxes, "boxes")
    boxes = jnp.asarray(boxes)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    k = jnp.floor(canonical_level + jnp.log2(jnp.sqrt(area) / canonical_scale) + eps)
    return jnp.clip(k, min_level, max_level).astype(jnp.int32)


def multiscale_roi_align(features, boxes, box_indices, output_size, scales, sampling_ratio=2,
                         aligned=False, min_level=2, canonical_scale=224, canonical_level=4):
    """RoI Align over an FPN pyramid: each box is pooled from its `fpn_level` map.

    features: list of [B, H_l, W_l, C] maps for levels min_level.. (finest first);
    scales: their spatial scales (e.g. 1/4, 1/8, ...). Returns [K, oh, ow, C]. Every level is
    computed for every box and the right one selected (static shapes under jit).
    """
    if len(features) != len(scales) or not features:
        raise ValueError(
            f"features/scales: expected equal non-zero lengths, got {len(features)} and "
            f"{len(scales)}"
        )
    max_level = min_level + len(features) - 1
    lvl = fpn_level(boxes, min_level, max_level, canonical_scale, canonical_level)
    out = None
    for i, (f, s) in enumerate(zip(features, scales, strict=True)):
        o = roi_align(f, boxes, box_indices, output_size, s, sampling_ratio, aligned)
        sel = (lvl == min_level + i)[:, None, None, None]
        out = jnp.where(sel, o, 0 if out is None else out)
    return out
