"""Region proposals: dense sliding windows, and selective search (Uijlings et al. 2013).

Selective search runs on the host in numpy (it is data-dependent graph work, done once per
image before training, as in R-CNN): Felzenszwalb-Huttenlocher graph segmentation gives the
initial regions, which are then merged greedily by colour, texture, size and fill similarity;
every region of every hierarchy is a proposal.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from jaxvision.ops._checks import check_pair


def sliding_windows(image_size, window_sizes, stride):
    """All windows of the given sizes on a regular grid of positions.

    image_size: (H, W); window_sizes: [(h, w), ...]; stride: int or (sy, sx).
    Returns a numpy float32 [N, 4] xyxy array of the windows that fit inside the image
    (sizes in order, then rows, then columns).
    """
    ih, iw = check_pair(image_size, "image_size")
    sy, sx = check_pair(stride, "stride")
    out = []
    for k, size in enumerate(window_sizes):
        h, w = check_pair(size, f"window_sizes[{k}]")
        ys = np.arange(0, ih - h + 1, sy)
        xs = np.arange(0, iw - w + 1, sx)
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        out.append(np.stack([xx, yy, xx + w, yy + h], -1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 4), np.float32)


def felzenszwalb(image, k=100.0, sigma=0.8, min_size=50):
    """Graph-based segmentation (Felzenszwalb & Huttenlocher 2004), scikit-image's C
    implementation on an 8-connected grid of the colour image.

    image: [H, W, C] numbers (k is in their units, e.g. 0..255). Edge weight = colour distance
    after Gaussian smoothing (`sigma`); two components merge when the edge is
    <= min(Int(A) + k/|A|, Int(B) + k/|B|); components smaller than `min_size` are then merged
    into a neighbour. Returns int32 labels [H, W], numbered 0..R-1.
    """
    from skimage.segmentation import felzenszwalb as segment

    img = np.asarray(image, np.float64)
    if img.ndim != 3:
        raise ValueError(f"image: expected [H, W, C], got shape {img.shape}")
    # scikit-image keeps float images as they are and divides `scale` by 255 (its [0, 1] range):
    # dividing the image by 255 too gives k in the image's own units
    labels = segment(img / 255.0, scale=float(k), sigma=float(sigma), min_size=int(min_size),
                     channel_axis=-1)
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(img.shape[:2]).astype(np.int32)


def _histograms(values, labels, n_regions, bins):
    """L1-normalised per-region histograms of values in [0, 1]: [R, channels * bins]."""
    feats = []
    for c in range(values.shape[-1]):
        b = np.minimum((values[..., c] * bins).astype(np.int64), bins - 1)
        hist = np.bincount((labels * bins + b).ravel(), minlength=n_regions * bins)
        feats.append(hist.reshape(n_regions, bins))
    f = np.concatenate(feats, 1).astype(np.float64)
    return f / np.maximum(f.sum(1, keepdims=True), 1)


def _texture(img):
    """Gaussian derivative responses in 8 orientations per channel, scaled to [0, 1]."""
    out = []
    for c in range(img.shape[-1]):
        gy = ndimage.gaussian_filter(img[..., c], 1.0, order=(1, 0))
        gx = ndimage.gaussian_filter(img[..., c], 1.0, order=(0, 1))
        for t in np.arange(8) * np.pi / 4:
            r = np.maximum(np.cos(t) * gx + np.sin(t) * gy, 0)
            out.append(r / max(r.max(), 1e-12))
    return np.stack(out, -1)


def _group(labels, colour, tex, weights):
    """Hierarchical grouping of a segmentation `labels` [H, W] (R regions) with the regions'
    colour [R, 75] and texture [R, 240] histograms; returns [(box xyxy, level)] for every
    region ever formed."""
    h, w = labels.shape
    n = int(labels.max()) + 1
    ys, xs = np.mgrid[:h, :w]
    lab = labels.ravel()
    size = np.bincount(lab, minlength=n).astype(np.float64)
    x1 = np.full(n, w)
    y1 = np.full(n, h)
    x2 = np.zeros(n, np.int64)
    y2 = np.zeros(n, np.int64)
    np.minimum.at(x1, lab, xs.ravel())
    np.minimum.at(y1, lab, ys.ravel())
    np.maximum.at(x2, lab, xs.ravel() + 1)
    np.maximum.at(y2, lab, ys.ravel() + 1)
    regions = {i: dict(size=size[i], box=(x1[i], y1[i], x2[i], y2[i]), c=colour[i], t=tex[i])
               for i in range(n)}
    im = float(h * w)
    wc, wt, ws, wf = weights

    def sim(a, b):
        ra, rb = regions[a], regions[b]
        s = 0.0
        if wc:
            s += wc * np.minimum(ra["c"], rb["c"]).sum()
        if wt:
            s += wt * np.minimum(ra["t"], rb["t"]).sum()
        if ws:
            s += ws * (1 - (ra["size"] + rb["size"]) / im)
        if wf:
            bx = _union_box(ra["box"], rb["box"])
            s += wf * (1 - ((bx[2] - bx[0]) * (bx[3] - bx[1]) - ra["size"] - rb["size"]) / im)
        return s

    nb = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        m = a != b
        p = np.stack([np.minimum(a[m], b[m]), np.maximum(a[m], b[m])], 1)
        nb.update(map(tuple, np.unique(p, axis=0).tolist()))
    neighbours = {i: set() for i in range(n)}
    for a, b in nb:
        neighbours[a].add(b)
        neighbours[b].add(a)
    sims = {(a, b): sim(a, b) for a, b in nb}
    out = [(regions[i]["box"], 0) for i in range(n)]
    nxt, level = n, 0
    while sims:
        level += 1
        a, b = max(sims, key=sims.get)
        ra, rb = regions[a], regions[b]
        s = ra["size"] + rb["size"]
        regions[nxt] = dict(size=s, box=_union_box(ra["box"], rb["box"]),
                            c=(ra["c"] * ra["size"] + rb["c"] * rb["size"]) / s,
                            t=(ra["t"] * ra["size"] + rb["t"] * rb["size"]) / s)
        nbrs = (neighbours.pop(a) | neighbours.pop(b)) - {a, b}
        for q in nbrs:
            neighbours[q] -= {a, b}
            neighbours[q].add(nxt)
            sims.pop((min(a, q), max(a, q)), None)
            sims.pop((min(b, q), max(b, q)), None)
        sims.pop((min(a, b), max(a, b)), None)
        neighbours[nxt] = nbrs
        for q in nbrs:
            sims[(q, nxt)] = sim(q, nxt)
        out.append((regions[nxt]["box"], level))
        del regions[a], regions[b]
        nxt += 1
    total = max(level, 1)
    # Uijlings' ranking: a region's rank is its position from the top of the hierarchy
    return [(bx, total - lv) for bx, lv in out]


def _union_box(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


_STRATEGY_WEIGHTS = {
    "fast": [(1, 1, 1, 1), (0, 1, 1, 1)],
    "single": [(1, 1, 1, 1)],
}

STRATEGIES = tuple(_STRATEGY_WEIGHTS)


def selective_search(image, max_boxes=2000, ks=(50, 100, 200), strategy="fast",
                     min_size=20, seed=0):
    """Selective search proposals for one image (host numpy).

    image: [H, W, 3] uint8 or float in [0, 255]. Runs Felzenszwalb segmentation for each k in
    `ks` and, per segmentation, hierarchical grouping with each similarity combination of the
    strategy ('fast': colour+texture+size+fill and texture+size+fill; 'single': the first).
    Proposals are ranked as Uijlings et al. (hierarchy position times a random number in [0, 1]),
    duplicates removed, and boxes with a side below `min_size` / 4 dropped.
    Returns a numpy float32 [N, 4] xyxy array, N <= max_boxes.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"image: expected [H, W, 3], got shape {img.shape}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {STRATEGIES}, got {strategy!r}")
    img01 = np.clip(img.astype(np.float64) / 255.0, 0, 1)
    rng = np.random.default_rng(seed)
    boxes, ranks = [], []
    texture = _texture(img01)  # once per image; the histograms once per segmentation
    for k in ks:
        labels = felzenszwalb(img01 * 255.0, k=k, sigma=0.8, min_size=min_size)
        n = int(labels.max()) + 1
        colour, tex = _histograms(img01, labels, n, 25), _histograms(texture, labels, n, 10)
        for weights in _STRATEGY_WEIGHTS[strategy]:
            for bx, lv in _group(labels, colour, tex, weights):
                boxes.append(bx)
                ranks.append(lv * rng.uniform())
    boxes = np.asarray(boxes, np.float32)
    order = np.argsort(np.asarray(ranks), kind="stable")
    boxes = boxes[order]
    _, first = np.unique(boxes, axis=0, return_index=True)
    boxes = boxes[np.sort(first)]
    side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    boxes = boxes[side >= min_size / 4]
    return boxes[:max_boxes]
