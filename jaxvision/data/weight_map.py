"""U-Net's pixel weight map (Ronneberger et al. 2015, eq. 2), in numpy / scipy:

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

w_c balances the class frequencies of the label image (w_c(x) = N / (K * N_c) for a pixel of
class c, N pixels, K classes present, N_c pixels of class c: every present class carries the
same total weight). d1, d2: the distances to the nearest and second-nearest cell (a 4-connected
component of `cell_class` pixels). The border term is added on the pixels between cells (any
other class), the separation borders the paper weights; cell pixels keep w_c.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

TOLERANCE = 1e-6  # the border term is exact where it is at least this (distances cut beyond)


def class_balance(labels: np.ndarray) -> np.ndarray:
    """float32 [H, W] w_c: N / (K * N_c) for a pixel of class c (K: classes present)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels.ravel())
    present = counts > 0
    per_class = np.where(present, labels.size / (present.sum() * np.maximum(counts, 1)), 0.0)
    return per_class[labels].astype(np.float32)


def two_nearest(cells: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """float64 (d1, d2) [H, W]: Euclidean distances to the nearest and second-nearest of the
    labelled cells (`cells`: int [H, W], 0 = none, 1..n = cell), inf where beyond `cutoff`."""
    d1 = np.full(cells.shape, np.inf)
    d2 = np.full(cells.shape, np.inf)
    reach = int(math.ceil(cutoff))
    for index, box in enumerate(ndimage.find_objects(cells), start=1):
        if box is None:
            continue
        window = tuple(slice(max(s.start - reach, 0), min(s.stop + reach, n))
                       for s, n in zip(box, cells.shape, strict=True))
        d = ndimage.distance_transform_edt(cells[window] != index)
        near, second = d1[window], d2[window]
        d2[window] = np.minimum(second, np.maximum(near, d))
        d1[window] = np.minimum(near, d)
    return d1, d2


def border_weights(labels: np.ndarray, *, w0: float = 10.0, sigma: float = 5.0,
                   cell_class: int = 1) -> np.ndarray:
    """float32 [H, W] w(x) for the class map `labels` int [H, W] (classes >= 0)."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0:
        raise ValueError(f"weight map labels: expected a non-empty [H, W] class map, got shape "
                         f"{labels.shape}")
    if labels.min() < 0:
        raise ValueError(f"weight map labels: expected classes >= 0, got {labels.min()}")
    if w0 < 0 or sigma <= 0:
        raise ValueError(f"data.weight_map: expected w0 >= 0 and sigma > 0, got w0={w0}, "
                         f"sigma={sigma}")
    weights = class_balance(labels).astype(np.float64)
    if w0 > 0:
        cells, _ = ndimage.label(labels == cell_class)
        cutoff = sigma * math.sqrt(2 * math.log(max(w0 / TOLERANCE, 1.0)))
        d1, d2 = two_nearest(cells, cutoff)
        border = w0 * np.exp(-np.square(d1 + d2) / (2 * sigma**2))
        weights += np.where(labels != cell_class, border, 0.0)
    return weights.astype(np.float32)
