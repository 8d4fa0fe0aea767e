"""Float64 numpy loop references written from the definitions (and torchvision's kernel rules)."""

from __future__ import annotations

import math

import numpy as np


def iou_ref(a, b):
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(np.asarray(a, np.float64)):
        for j, q in enumerate(np.asarray(b, np.float64)):
            iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = iw * ih
            area = lambda t: max(t[2] - t[0], 0) * max(t[3] - t[1], 0)
            union = area(p) + area(q) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def greedy_nms_ref(boxes, scores, thr, classes=None):
    """Greedy NMS: stable descending order, suppress IoU > thr (same class only if classes)."""
    boxes = np.asarray(boxes, np.float64)
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    keep, suppressed = [], np.zeros(len(scores), bool)
    iou = iou_ref(boxes, boxes)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        for j in order:
            if classes is not None and classes[j] != classes[i]:
                continue
            if iou[i, j] > thr:
                suppressed[j] = True
    return keep


def _bilinear(fmap, y, x, t=float):
    """torchvision kernel rule: 0 outside [-1, H] x [-1, W], clamp to the border otherwise.

    t: the scalar type of the coordinate arithmetic (float, or np.float32 as the kernel does for
    float32 inputs); the values are accumulated in float64.
    """
    h, w = fmap.shape[:2]
    if not (y >= -1.0 and y <= h and x >= -1.0 and x <= w):  # NaN included
        return np.zeros(fmap.shape[2:])
    y = max(y, t(0))
    x = max(x, t(0))
    yl, xl = int(y), int(x)
    if yl >= h - 1:
        yh = yl = h - 1
        y = t(yl)
    else:
        yh = yl + 1
    if xl >= w - 1:
        xh = xl = w - 1
        x = t(xl)
    else:
        xh = xl + 1
    ly, lx = t(y - t(yl)), t(x - t(xl))
    hy, hx = t(1) - ly, t(1) - lx
    ly, lx, hy, hx = (float(v) for v in (ly, lx, hy, hx))
    return (hy * hx * fmap[yl, xl] + hy * lx * fmap[yl, xh] + ly * hx * fmap[yh, xl]
            + ly * lx * fmap[yh, xh])


def roi_align_ref(features, boxes, box_indices, output_size, spatial_scale=1.0,
                  sampling_ratio=-1, aligned=False, dtype=np.float64):
    """The kernel's loops; dtype float32 does the coordinate arithmetic in float32 scalars in the
    kernel's order (start = x1 * scale - offset, bin = roi / pooled, sample = start + p * bin +
    (i + .5) * bin / grid), which decides samples on the -1 / H borders as the compiled kernel."""
    features = np.asarray(features, np.float64)
    t = np.float32 if dtype == np.float32 else float
    oh, ow = output_size
    out = np.zeros((len(boxes), oh, ow, features.shape[-1]))
    off = t(0.5 if aligned else 0.0)
    scale = t(spatial_scale)
    for k, (box, bi) in enumerate(zip(np.asarray(boxes, dtype), box_indices, strict=True)):
        x1, y1, x2, y2 = (t(t(v) * scale - off) for v in box)
        rw, rh = t(x2 - x1), t(y2 - y1)
        if not aligned:
            rw, rh = max(rw, t(1)), max(rh, t(1))
        bh, bw = t(rh / t(oh)), t(rw / t(ow))
        # the kernel's int cast of a NaN grid size leaves the sample loops empty
        gh = sampling_ratio if sampling_ratio > 0 else (0 if math.isnan(bh) else math.ceil(bh))
        gw = sampling_ratio if sampling_ratio > 0 else (0 if math.isnan(bw) else math.ceil(bw))
        count = max(gh * gw, 1)
        for ph in range(oh):
            for pw in range(ow):
                acc = np.zeros(features.shape[-1])
                for iy in range(gh):
                    y = t(y1 + t(ph) * bh) + t(t(iy + 0.5) * bh) / t(gh)
                    for ix in range(gw):
                        x = t(x1 + t(pw) * bw) + t(t(ix + 0.5) * bw) / t(gw)
                        acc += _bilinear(features[bi], t(y), t(x), t)
                out[k, ph, pw] = acc / count
    return out


def roi_pool_ref(features, boxes, box_indices, output_size, spatial_scale=1.0):
    features = np.asarray(features, np.float64)
    h, w = features.shape[1:3]
    oh, ow = output_size
    rnd = lambda v: int(math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1))
    out = np.zeros((len(boxes), oh, ow, features.shape[-1]))
    for k, (box, bi) in enumerate(zip(np.asarray(boxes, np.float64), box_indices, strict=True)):
        sx, sy, ex, ey = (rnd(float(v) * spatial_scale) for v in box)
        rw, rh = max(ex - sx + 1, 1), max(ey - sy + 1, 1)
        for ph in range(oh):
            for pw in range(ow):
                hs = min(max(math.floor(ph * rh / oh) + sy, 0), h)
                he = min(max(math.ceil((ph + 1) * rh / oh) + sy, 0), h)
                ws = min(max(math.floor(pw * rw / ow) + sx, 0), w)
                we = min(max(math.ceil((pw + 1) * rw / ow) + sx, 0), w)
                if he <= hs or we <= ws:
                    continue
                out[k, ph, pw] = features[bi, hs:he, ws:we].max(axis=(0, 1))
    return out


def _std_round(v):
    """C++ std::round of a float: nearest integer, halves away from zero (exact, via Fraction)."""
    from fractions import Fraction

    f = Fraction(float(v))
    n = math.floor(abs(f) + Fraction(1, 2))
    return n if f >= 0 else -n


def roi_pool_ref_f32(features, boxes, box_indices, output_size, spatial_scale=1.0):
    """torchvision's compiled CPU roi_pool kernel, step by step in float32 scalars.

    roi_start = std::round(x1 * scale) (float32 product), roi_size = max(end - start + 1, 1),
    bin_size = float(roi_size) / float(pooled) (float32 division), bin bounds
    floor(p * bin_size) / ceil((p + 1) * bin_size) (float32 products) + roi_start, clamped to
    [0, size]; an empty bin gives 0, otherwise the max over the bin.
    """
    features = np.asarray(features, np.float32)
    h, w = features.shape[1:3]
    oh, ow = output_size
    f32 = np.float32
    scale = f32(spatial_scale)
    out = np.zeros((len(boxes), oh, ow, features.shape[-1]), np.float32)
    for k, (box, bi) in enumerate(zip(np.asarray(boxes, np.float32), box_indices, strict=True)):
        sx, sy, ex, ey = (_std_round(f32(v) * scale) for v in box)
        rw, rh = max(ex - sx + 1, 1), max(ey - sy + 1, 1)
        bh = f32(rh) / f32(oh)
        bw = f32(rw) / f32(ow)
        for ph in range(oh):
            hs = min(max(math.floor(f32(ph) * bh) + sy, 0), h)
            he = min(max(math.ceil(f32(ph + 1) * bh) + sy, 0), h)
            for pw in range(ow):
                ws = min(max(math.floor(f32(pw) * bw) + sx, 0), w)
                we = min(max(math.ceil(f32(pw + 1) * bw) + sx, 0), w)
                if he <= hs or we <= ws:
                    continue
                out[k, ph, pw] = features[bi, hs:he, ws:we].max(axis=(0, 1))
    return out
