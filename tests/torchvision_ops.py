"""CPU implementations of torchvision's compiled `nms` and `roi_align`, registered with
`torch.library` so that `torchvision.models.detection` runs here (its compiled ops do not load).

Both follow the compiled kernels' rules (DESIGN.md, Testing), written here in vectorised torch:
- nms: greedy in descending score order (stable for ties), a box is suppressed by a kept one when
  IoU > iou_threshold (IoU == threshold keeps it), areas without +1.
- roi_align: torchvision's `roi_align_kernel.cpp`: box * spatial_scale (- 0.5 when aligned),
  size max(., 1) unless aligned, `sampling_ratio` samples per bin side or ceil(size / out) when
  <= 0, and a sample point with y < -1, y > H, x < -1 or x > W contributes 0 (the pure-Python
  `_roi_align` clamps such points instead). Registered as CompositeImplicitAutograd so autograd
  differentiates it (the backward is the kernel's: bilinear weights scattered into the map).

Call `register()` once, after `import torchvision` is possible (tests/conftest.py defines the
schemas first). Test-only code: the library never imports torch.
"""

from __future__ import annotations

import torch

_LIB = None


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Kept indices (int64), by descending score; torchvision.ops.nms semantics."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order].double()
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    iou = inter / (area[:, None] + area[None, :] - inter)
    # the kernel computes the IoU in the boxes' dtype (float32 boxes give float32 IoUs) and
    # compares it with the threshold as a double: 3/10 in float32 (0.30000001) is > 0.3
    iou = iou.to(boxes.dtype).double()
    over = (iou > torch.tensor(iou_threshold, dtype=torch.float64)).cpu().numpy()
    n = len(order)
    removed = [False] * n
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        row = over[i]
        for j in range(i + 1, n):
            if row[j]:
                removed[j] = True
    return order[torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)]


def _axis_samples(start, bin_size, grid, out_size, gmax):
    """Sample coordinates [K, out, gmax] and their validity (i < grid) along one axis."""
    p = torch.arange(out_size, dtype=start.dtype, device=start.device)
    i = torch.arange(gmax, dtype=start.dtype, device=start.device)
    g = grid[:, None, None]
    coord = (start[:, None, None] + p[None, :, None] * bin_size[:, None, None]
             + (i[None, None, :] + 0.5) * bin_size[:, None, None] / g.clamp(min=1))
    valid = i[None, None, :] < g
    return coord, valid


def _bilinear_1d(coord, length):
    """Kernel rule along one axis: (low, high, w_low, w_high, inside)."""
    inside = (coord >= -1.0) & (coord <= length)
    c = coord.clamp(min=0)
    low = c.floor().long()
    at_end = low >= length - 1
    low = torch.where(at_end, torch.full_like(low, length - 1), low)
    high = torch.where(at_end, low, low + 1)
    c = torch.where(at_end, low.to(c.dtype), c)
    frac = c - low.to(c.dtype)
    return low, high, 1 - frac, frac, inside


def roi_align(features, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio,
              aligned):
    """features [B, C, H, W]; rois [K, 5] (batch index, x1, y1, x2, y2) -> [K, C, ph, pw]."""
    k = rois.shape[0]
    _, c, h, w = features.shape
    ph, pw = int(pooled_height), int(pooled_width)
    if k == 0:
        return features.new_zeros((0, c, ph, pw))
    offset = 0.5 if aligned else 0.0
    r = rois.to(features.dtype)
    x1, y1 = r[:, 1] * spatial_scale - offset, r[:, 2] * spatial_scale - offset
    x2, y2 = r[:, 3] * spatial_scale - offset, r[:, 4] * spatial_scale - offset
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
    bh, bw = rh / ph, rw / pw
    if sampling_ratio > 0:
        gh = gw = torch.full_like(rh, float(sampling_ratio))
    else:
        gh, gw = torch.ceil(rh / ph), torch.ceil(rw / pw)
    gmax_h = max(int(gh.max().item()), 1)
    gmax_w = max(int(gw.max().item()), 1)
    count = (gh * gw).clamp(min=1)
    ys, vy = _axis_samples(y1, bh, gh, ph, gmax_h)  # [K, ph, gh]
    xs, vx = _axis_samples(x1, bw, gw, pw, gmax_w)  # [K, pw, gw]
    yl, yh, wyl, wyh, iny = _bilinear_1d(ys, h)
    xl, xh, wxl, wxh, inx = _bilinear_1d(xs, w)
    wy = torch.stack([wyl, wyh], -1) * (vy & iny)[..., None]  # [K, ph, gh, 2]
    wx = torch.stack([wxl, wxh], -1) * (vx & inx)[..., None]  # [K, pw, gw, 2]
    iy = torch.stack([yl, yh], -1)
    ix = torch.stack([xl, xh], -1)
    batch = rois[:, 0].long()
    out = []
    for s in range(0, k, 64):  # chunks bound the gathered [k, C, ph, gh, 2, pw, gw, 2] block
        e = min(s + 64, k)
        fm = features[batch[s:e]]  # [k, C, H, W]
        rows = torch.gather(fm, 2, iy[s:e].reshape(e - s, 1, -1, 1).expand(-1, c, -1, w))
        rows = rows.reshape(e - s, c, ph, gmax_h, 2, w)
        rows = (rows * wy[s:e, None, ..., None]).sum((3, 4))  # [k, C, ph, W]
        cols = torch.gather(rows, 3, ix[s:e].reshape(e - s, 1, 1, -1).expand(-1, c, ph, -1))
        cols = cols.reshape(e - s, c, ph, pw, gmax_w, 2)
        out.append((cols * wx[s:e, None, None]).sum((4, 5)))
    return torch.cat(out) / count[:, None, None, None]


def register() -> None:
    """Registers `nms` (CPU) and `roi_align` (autograd-composite) for torchvision's ops and makes
    torchvision use them instead of its pure-Python fallback. Idempotent."""
    global _LIB
    if _LIB is not None:
        return
    import sys

    import torchvision.extension
    import torchvision.ops.roi_align  # noqa: F401  (the module; `torchvision.ops.roi_align`
    # as an attribute is the function)
    roi_align_module = sys.modules["torchvision.ops.roi_align"]

    lib = torch.library.Library("torchvision", "FRAGMENT")
    try:
        lib.define("roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt "
                   "pooled_height, SymInt pooled_width, int sampling_ratio, bool aligned) "
                   "-> Tensor")
    except RuntimeError:  # defined already (e.g. by a loaded extension)
        pass
    lib.impl("nms", nms, "CPU")
    lib.impl("roi_align", roi_align, "CompositeImplicitAutograd")
    torchvision.extension._has_ops = lambda: True
    roi_align_module._has_ops = lambda: True
    _LIB = lib
