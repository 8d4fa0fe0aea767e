"""Felzenszwalb & Huttenlocher (2004), written from the paper in plain Python (float64): the
reference the library's scikit-image-backed `felzenszwalb` is checked against."""

import numpy as np
from scipy import ndimage


def felzenszwalb_reference(image, k, sigma, min_size):
    """image [H, W, C] -> int labels [H, W] (arbitrary numbering). 8-connected grid, edge
    weight = Euclidean colour distance after per-channel Gaussian smoothing; edges in increasing
    weight order merge components A, B when w <= min(Int(A) + k/|A|, Int(B) + k/|B|) (Int: the
    largest weight merged into the component so far); then components below min_size pixels are
    merged across the remaining edges in the same order."""
    img = np.asarray(image, np.float64)
    h, w, _ = img.shape
    img = np.stack([ndimage.gaussian_filter(img[..., c], sigma, mode="reflect", truncate=4.0)
                    for c in range(img.shape[2])], -1)
    idx = np.arange(h * w).reshape(h, w)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1], idx[1:]), (idx[:-1, :-1], idx[1:, 1:]),
             (idx[:-1, 1:], idx[1:, :-1])]
    edges = np.concatenate([np.stack([p.ravel(), q.ravel()], 1) for p, q in pairs])
    flat = img.reshape(h * w, -1)
    weight = np.sqrt(((flat[edges[:, 0]] - flat[edges[:, 1]]) ** 2).sum(1))
    order = np.argsort(weight, kind="stable")
    parent, size, thresh = list(range(h * w)), [1] * (h * w), [k] * (h * w)

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in order:
        ra, rb = find(edges[e, 0]), find(edges[e, 1])
        if ra != rb and weight[e] <= thresh[ra] and weight[e] <= thresh[rb]:
            parent[rb] = ra
            size[ra] += size[rb]
            thresh[ra] = weight[e] + k / size[ra]
    for e in order:
        ra, rb = find(edges[e, 0]), find(edges[e, 1])
        if ra != rb and (size[ra] < min_size or size[rb] < min_size):
            parent[rb] = ra
            size[ra] += size[rb]
    return np.array([find(i) for i in range(h * w)]).reshape(h, w)


def same_partition(a, b) -> bool:
    """True when two label images group the pixels identically (numbering aside)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()], 1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))
