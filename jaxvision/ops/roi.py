"""RoI Align, RoI Pool and FPN level assignment on NHWC feature maps.

`roi_align` follows torchvision's compiled CPU/CUDA kernels sample for sample, in two exact
formulations chosen by `impl`:

- 'matmul': bilinear interpolation is separable, and so is the kernel's out-of-map rule (a
  sample with y < -1, y > H, x < -1 or x > W contributes 0), so each box's output is
  `Ay @ F @ Ax^T / count` with per-box weight matrices Ay [oh, H] and Ax [ow, W] that sum every
  sample's bilinear weights. A dense contraction: exact for any box size, including the adaptive
  `sampling_ratio <= 0` (ceil(roi / out) samples per bin, unbounded), scatter-free, and it maps
  onto MXU/tensor cores (TPU/GPU). The weights are built without enumerating an unbounded number
  of samples: for a row r only samples within distance 2 can touch it, and in the adaptive case
  consecutive samples are more than half a pixel apart, so a fixed window of candidates per
  (bin, row) holds all of them.
- 'gather' (CPU): each output bin is a weighted sum of Ty * Tx feature vectors gathered from the
  map (the kernel's four bilinear neighbours per sample point), and the backward pass
  scatter-adds the weighted cotangents back (a custom VJP; no dense [K, H, W] matrices). With a
  fixed sampling ratio g the taps are the 2g neighbouring rows (columns) of the g samples; in
  the adaptive case they are a window of `_ADAPTIVE_ROWS` consecutive rows (columns) per bin
  holding every row the bin's samples touch, with the summed weights of the 'matmul' form. A
  batch with a bin wider than the window falls back to 'matmul' (`lax.cond`), so any box stays
  exact.

Divisions the kernel does in float32 (bin size = roi / pooled, sample offsets / grid) go
through `true_div`: XLA would otherwise rewrite `x / c` into `x * (1 / c)`, which rounds
differently.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.ops._checks import check_choice, check_last_dim, check_pair, check_rank

_WINDOW = 7
_ADAPTIVE_ROWS = 6  # rows (columns) per bin in the adaptive gather form; wider bins -> matmul
_IMPLS = ("auto", "gather", "matmul")
_UNROLL_TAPS = 36  # the gather form's forward unrolls up to this many taps per bin


def true_div(x, d):
    """x / d as a true float division even when d is a constant or a broadcast.

    The divisor is broadcast to x's shape behind an optimisation barrier: XLA rewrites both
    `x / constant` and `x / broadcast(scalar)` into a multiplication by the reciprocal.
    """
    x = jnp.asarray(x)
    d = jnp.broadcast_to(jnp.asarray(d, x.dtype), x.shape)
    return x / jax.lax.optimization_barrier(d)


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


def _bilinear_1d(y, length):
    """The kernel's per-axis rule for sample coordinates y: (low, high, w_low, w_high, inside)."""
    inside = (y >= -1) & (y <= length)  # False for NaN, as the kernel's !(in range) test
    y = jnp.clip(y, 0, length)  # no change for inside samples
    low = jnp.floor(y).astype(jnp.int32)
    at_end = low >= length - 1
    low = jnp.where(at_end, length - 1, low)
    high = jnp.where(at_end, length - 1, low + 1)
    y = jnp.where(at_end, low.astype(y.dtype), y)
    ly = y - low
    # indices stay in range even for NaN coordinates (their weights are masked to 0): the
    # gather form's scatter promises in-bounds indices
    low = jnp.clip(low, 0, length - 1)
    high = jnp.clip(high, 0, length - 1)
    return low, high, 1 - ly, ly, inside


def _axis_weights(start, bin_size, grid, out_size, length, static_grid, rows=None):
    """Summed bilinear weights of each bin's samples on given rows along one axis.

    start, bin_size: [K] float; grid: [K] samples per bin (float, may be <= 0: no samples).
    static_grid: the fixed sampling ratio, or None for the adaptive (windowed) case.
    rows: [K, out_size, R] int rows to weigh, default every row (R = length).
    Returns [K, out_size, R].
    """
    dt = start.dtype
    p = jnp.arange(out_size, dtype=dt)
    if rows is None:
        rows = jnp.arange(length)[None, None, :]
    base = start[:, None] + p[None, :] * bin_size[:, None]  # [K, P]
    if static_grid is not None:
        i = jnp.arange(static_grid, dtype=dt)
        y = base[..., None] + true_div((i + 0.5) * bin_size[:, None, None], static_grid)
        y = y[..., None]  # [K, P, S, 1]
        valid = jnp.ones(y.shape, bool)
        rr = rows[:, :, None, :]
        sum_axis = 2
    else:
        g = grid[:, None, None]
        step = bin_size[:, None, None] / jnp.maximum(g, 1)
        step = jnp.where(step > 0, step, 1)
        lo = jnp.where(rows == 0, -1, rows - 1).astype(dt)
        first = jnp.floor((lo - base[..., None]) / step - 0.5) - 1
        first = jnp.clip(first, 0, jnp.maximum(g, 0))  # [K, P, R]
        i = first[..., None] + jnp.arange(_WINDOW, dtype=dt)  # [K, P, R, W]
        valid = i < g[..., None]
        offs = true_div((i + 0.5) * bin_size[:, None, None, None], g[..., None])
        y = base[..., None, None] + offs
        rr = rows[..., None]
        sum_axis = 3
    low, high, hy, ly, inside = _bilinear_1d(y, length)
    w = jnp.where(low == rr, hy, 0) + jnp.where(high == rr, ly, 0)
    w = jnp.where(valid & inside, w, 0)
    return jnp.sum(w, axis=sum_axis)


def _sample_taps(start, bin_size, grid, out_size, length):
    """Fixed sampling ratio `grid`: the 2 * grid (row, weight) taps of each bin, [K, P, 2g]."""
    dt = start.dtype
    p = jnp.arange(out_size, dtype=dt)
    i = jnp.arange(grid, dtype=dt)
    base = start[:, None] + p[None, :] * bin_size[:, None]  # [K, P]
    y = base[..., None] + true_div((i + 0.5) * bin_size[:, None, None], grid)  # [K, P, g]
    low, high, hy, ly, inside = _bilinear_1d(y, length)
    idx = jnp.concatenate([low, high], -1)
    w = jnp.where(jnp.concatenate([inside, inside], -1), jnp.concatenate([hy, ly], -1), 0)
    return idx, w


def _window_taps(start, bin_size, grid, out_size, length):
    """Adaptive grid: a window of consecutive rows per bin with their summed weights.

    Returns (rows [K, P, L], weights [K, P, L], fits [] bool): `fits` is False when some bin's
    samples touch more rows than the window holds (the caller then uses the dense form).
    """
    dt = start.dtype
    size = min(_ADAPTIVE_ROWS, length)
    p = jnp.arange(out_size, dtype=dt)
    base = start[:, None] + p[None, :] * bin_size[:, None]  # [K, P]
    g = grid[:, None]
    y0 = base + true_div(0.5 * bin_size[:, None], g)  # first and last sample, as the kernel
    y1 = base + true_div((g - 0.5) * bin_size[:, None], g)
    r0 = jnp.clip(jnp.floor(jnp.maximum(y0, 0)), 0, length - size).astype(jnp.int32)
    r0 = jnp.clip(r0, 0, length - size)  # in range for NaN coordinates too
    r1 = jnp.minimum(jnp.floor(jnp.maximum(y1, 0)) + 1, length - 1).astype(jnp.int32)
    fits = jnp.all((r1 - r0 < size) | (g <= 0))
    rows = r0[..., None] + jnp.arange(size)
    w = _axis_weights(start, bin_size, grid, out_size, length, None, rows)
    return rows, w, fits


@jax.custom_vjp
def _gather_taps(fmap, idx, w):
    """out[n] = sum_t w[t, n] * fmap[idx[t, n]]. fmap: [N, C]; idx, w: [T, M] -> [M, C]."""
    return _gather_taps_fwd(fmap, idx, w)[0]


def _gather_taps_fwd(fmap, idx, w):
    if idx.shape[0] <= _UNROLL_TAPS:  # one fused pass over the taps
        out = w[0][:, None] * fmap[idx[0]]
        for t in range(1, idx.shape[0]):
            out = out + w[t][:, None] * fmap[idx[t]]
    else:  # large sampling ratios: a loop keeps the program small
        out = jax.lax.fori_loop(
            0, idx.shape[0], lambda t, acc: acc + w[t][:, None] * fmap[idx[t]],
            jnp.zeros((idx.shape[1], fmap.shape[1]), fmap.dtype))
    return out, (idx, w, fmap.shape[0])


def _gather_taps_bwd(res, g):
    idx, w, n = res
    mode = jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS

    def body(t, acc):
        return acc.at[idx[t]].add(w[t][:, None] * g, mode=mode)

    grad = jax.lax.fori_loop(0, idx.shape[0], body, jnp.zeros((n, g.shape[-1]), g.dtype))
    return grad, None, None


_gather_taps.defvjp(_gather_taps_fwd, _gather_taps_bwd)


def roi_align(features, boxes, box_indices, output_size, spatial_scale=1.0, sampling_ratio=-1,
              aligned=False, impl="auto"):
    """RoI Align (Mask R-CNN) with torchvision's kernel numerics.

    features: [B, H, W, C]; boxes: [K, 4] xyxy in input-image pixels (scaled by
    `spatial_scale`); box_indices: [K] int, the batch element of each box;
    output_size: (oh, ow) or int; sampling_ratio: samples per bin side, <= 0 for adaptive
    ceil(roi_size / output_size); aligned: shift box coordinates by -0.5 pixel.
    impl: 'gather' (four neighbours per sample, scatter-add backward; fastest on CPU),
    'matmul' (dense per-box interpolation matrices; for TPU/GPU) or 'auto' ('gather' when the
    default backend is the CPU). Both give the same numbers up to float32 rounding.
    Returns [K, oh, ow, C] in the features' dtype. Gradients flow to `features` only (as
    torchvision; boxes are treated as constants).
    """
    boxes, box_indices = _check_inputs(features, boxes, box_indices)
    output_size = check_pair(output_size, "output_size")
    if not isinstance(sampling_ratio, (int, np.integer)):
        raise ValueError(f"sampling_ratio: expected an int, got {sampling_ratio!r}")
    check_choice(impl, "impl", _IMPLS)
    if impl == "auto":
        impl = "gather" if jax.default_backend() == "cpu" else "matmul"
    return _roi_align(jnp.asarray(features), boxes, box_indices, output_size,
                      float(spatial_scale), int(sampling_ratio), bool(aligned), impl)


def _box_geometry(boxes, output_size, spatial_scale, sampling_ratio, aligned, dt):
    """The kernel's per-box start, bin size and grid along y and x (each [K])."""
    oh, ow = output_size
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
    bh = true_div(rh, oh)
    bw = true_div(rw, ow)
    if sampling_ratio > 0:
        gh = gw = jnp.full(rh.shape, sampling_ratio, dt)
    else:
        gh = jnp.ceil(bh)
        gw = jnp.ceil(bw)
        # a NaN box has no samples (the kernel's int cast of NaN gives an empty loop)
        gh = jnp.where(jnp.isnan(gh), 0, gh)
        gw = jnp.where(jnp.isnan(gw), 0, gw)
    return (y1, bh, gh), (x1, bw, gw)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6, 7))
def _roi_align(features, boxes, box_indices, output_size, spatial_scale, sampling_ratio,
               aligned, impl):
    dt = jnp.promote_types(features.dtype, jnp.float32)
    ygeo, xgeo = _box_geometry(boxes, output_size, spatial_scale, sampling_ratio, aligned, dt)
    feats = features.astype(dt)
    if impl == "matmul":
        out = _align_matmul(feats, box_indices, output_size, ygeo, xgeo, sampling_ratio)
    elif sampling_ratio > 0:
        out = _align_gather(feats, box_indices, output_size, ygeo, xgeo, sampling_ratio)
    else:
        out = _align_gather(feats, box_indices, output_size, ygeo, xgeo, None)
    return out.astype(features.dtype)


def _count(ygeo, xgeo):
    return jnp.maximum(ygeo[2] * xgeo[2], 1)


def _align_matmul(features, box_indices, output_size, ygeo, xgeo, sampling_ratio):
    oh, ow = output_size
    b, h, w, _ = features.shape
    static = sampling_ratio if sampling_ratio > 0 else None
    ay = _axis_weights(*ygeo, oh, h, static)  # [K, oh, H]
    ax = _axis_weights(*xgeo, ow, w, static)  # [K, ow, W]
    ay = ay / _count(ygeo, xgeo)[:, None, None]
    onehot = jax.nn.one_hot(box_indices, b, dtype=features.dtype)  # [K, B]
    ayb = (onehot[:, None, :, None] * ay[:, :, None, :]).reshape(-1, oh, b * h)
    fmap = features.reshape(b * h, w, -1)
    hp = jax.lax.Precision.HIGHEST
    rows = jnp.einsum("kpr,rwc->kpwc", ayb, fmap, precision=hp)  # [K, oh, W, C]
    return jnp.einsum("kqw,kpwc->kpqc", ax, rows, precision=hp)


def _tap_table(shape, box_indices, output_size, ygeo, xgeo, grid):
    """The gather form's taps into a [B*H*W, C] map of `shape` [B, H, W, C].

    Returns (idx, wt, fits): idx [T, K*oh*ow] int32 rows (b * H + y) * W + x, wt [T, K*oh*ow]
    weights (1 / count folded in), fits: None for a fixed grid, else whether every bin's rows
    and columns fit the adaptive window.
    """
    oh, ow = output_size
    _, h, w, _ = shape
    k = box_indices.shape[0]
    if grid is not None:
        iy, wy = _sample_taps(ygeo[0], ygeo[1], grid, oh, h)  # [K, oh, Ty]
        ix, wx = _sample_taps(xgeo[0], xgeo[1], grid, ow, w)  # [K, ow, Tx]
        fits = None
    else:
        iy, wy, fits_y = _window_taps(*ygeo, oh, h)
        ix, wx, fits_x = _window_taps(*xgeo, ow, w)
        fits = fits_y & fits_x
    b = shape[0]
    bi = box_indices.astype(jnp.int32)
    # a batch index outside [0, B) gives 0 (as the matmul form's one-hot), never a stray index
    wy = jnp.where(((bi >= 0) & (bi < b))[:, None, None], wy / _count(ygeo, xgeo)[:, None, None], 0)
    iy = iy + (jnp.clip(bi, 0, b - 1) * h)[:, None, None]
    ty, tx = iy.shape[-1], ix.shape[-1]
    # taps [Ty, Tx, K, oh, ow] -> [T, K * oh * ow]
    idx = (jnp.moveaxis(iy, -1, 0)[:, None, :, :, None] * w
           + jnp.moveaxis(ix, -1, 0)[None, :, :, None, :])
    wt = jnp.moveaxis(wy, -1, 0)[:, None, :, :, None] * jnp.moveaxis(wx, -1, 0)[None, :, :, None]
    return idx.reshape(ty * tx, k * oh * ow), wt.reshape(ty * tx, k * oh * ow), fits


def _align_gather(features, box_indices, output_size, ygeo, xgeo, grid):
    """grid: the fixed sampling ratio, or None (adaptive: window taps, dense fallback)."""
    oh, ow = output_size
    b, h, w, c = features.shape
    k = box_indices.shape[0]
    idx, wt, fits = _tap_table(features.shape, box_indices, output_size, ygeo, xgeo, grid)

    def gather(feats):
        return _gather_taps(feats.reshape(b * h * w, c), idx, wt).reshape(k, oh, ow, c)

    if fits is None:
        return gather(features)
    sr = 0  # adaptive
    return jax.lax.cond(
        fits, gather,
        lambda f: _align_matmul(f, box_indices, output_size, ygeo, xgeo, sr), features)


def _round_half_away(x):
    """C++ std::round: nearest integer, halves away from zero (exact: x - trunc(x) is exact)."""
    t = jnp.trunc(x)
    return jnp.where(jnp.abs(x - t) >= 0.5, t + jnp.sign(x), t)


def _pool_bin_bounds(size, out, dtype=jnp.float32):
    """torchvision's roi_pool bin bounds along one axis, in the kernel's arithmetic (the
    features' floating type, float32 or float64).

    size: [K] int32 roi sizes (>= 1); out: static bin count. Returns (lo, hi) [K, out] int32
    offsets from the roi start: floor(p * bs), ceil((p + 1) * bs) with bs = float32(size) /
    float32(out). The divisor goes through an optimisation barrier so XLA cannot rewrite the
    true division into a multiplication by the rounded reciprocal 1/out (which makes the last
    bin one cell longer for e.g. size 7, out 3).
    """
    bs = true_div(size.astype(dtype), out)
    p = jnp.arange(out, dtype=dtype)
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
    dt = jnp.promote_types(features.dtype, jnp.float32)
    q = _round_half_away(jax.lax.stop_gradient(boxes).astype(dt) * spatial_scale)
    q = q.astype(jnp.int32)
    sx, sy = q[:, 0], q[:, 1]
    rw = jnp.maximum(q[:, 2] - sx + 1, 1)
    rh = jnp.maximum(q[:, 3] - sy + 1, 1)

    def bins(start, size, out, length):
        lo, hi = _pool_bin_bounds(size, out, dt)
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
                         aligned=False, min_level=2, canonical_scale=224, canonical_level=4,
                         impl="auto"):
    """RoI Align over an FPN pyramid: each box is pooled from its `fpn_level` map.

    features: list of [B, H_l, W_l, C] maps for levels min_level.. (finest first);
    scales: their spatial scales (e.g. 1/4, 1/8, ...); impl as `roi_align`. Returns
    [K, oh, ow, C]. With the gather form and a fixed sampling ratio each box gathers from its
    own level only (one tap table into the concatenated maps); otherwise every level is
    computed for every box and the right one selected (static shapes under jit).
    """
    if len(features) != len(scales) or not features:
        raise ValueError(
            f"features/scales: expected equal non-zero lengths, got {len(features)} and "
            f"{len(scales)}"
        )
    check_choice(impl, "impl", _IMPLS)
    if impl == "auto":
        impl = "gather" if jax.default_backend() == "cpu" else "matmul"
    max_level = min_level + len(features) - 1
    lvl = fpn_level(boxes, min_level, max_level, canonical_scale, canonical_level)
    if impl == "gather" and sampling_ratio > 0:
        boxes, box_indices = _check_inputs(features[0], boxes, box_indices)
        output_size = check_pair(output_size, "output_size")
        for i, f in enumerate(features):
            check_rank(f, f"features[{i}]", 4, "[B, H, W, C] (NHWC)")
        return _multiscale_gather(tuple(jnp.asarray(f) for f in features), boxes, box_indices,
                                  lvl - min_level, output_size, tuple(float(s) for s in scales),
                                  int(sampling_ratio), bool(aligned))
    out = None
    for i, (f, s) in enumerate(zip(features, scales, strict=True)):
        o = roi_align(f, boxes, box_indices, output_size, s, sampling_ratio, aligned, impl)
        sel = (lvl == min_level + i)[:, None, None, None]
        out = jnp.where(sel, o, 0 if out is None else out)
    return out


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7))
def _multiscale_gather(features, boxes, box_indices, level, output_size, scales, grid, aligned):
    oh, ow = output_size
    k = box_indices.shape[0]
    c = features[0].shape[-1]
    dt = jnp.promote_types(features[0].dtype, jnp.float32)
    idx = wt = None
    offset = 0
    for i, (f, s) in enumerate(zip(features, scales, strict=True)):
        ygeo, xgeo = _box_geometry(boxes, output_size, s, grid, aligned, dt)
        li, lw, _ = _tap_table(f.shape, box_indices, output_size, ygeo, xgeo, grid)
        sel = jnp.repeat(level == i, oh * ow)[None, :]  # [1, K * oh * ow]
        li = li + offset
        idx = li if idx is None else jnp.where(sel, li, idx)
        wt = jnp.where(sel, lw, 0 if wt is None else wt)
        offset += math.prod(f.shape[:3])  # symbolic under a shape-polymorphic export
    flat = jnp.concatenate([f.astype(dt).reshape(-1, c) for f in features])
    out = _gather_taps(flat, idx, wt).reshape(k, oh, ow, c)
    return out.astype(features[0].dtype)
