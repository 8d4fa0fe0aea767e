"""Boundary F-score (Csurka et al., 2013; the BF score of DAVIS/Cityscapes evaluations).

A pixel is on the boundary of a label map if one of its 4-neighbours has a different label.
Precision: the fraction of predicted boundary pixels within `tolerance` pixels (Chebyshev
distance, a (2t+1)x(2t+1) square) of a true boundary pixel; recall: the fraction of true boundary
pixels within `tolerance` of a predicted one; F = 2PR / (P + R). Counts are summed over a dataset
before the ratio, so `boundary_counts` per batch can be added up and `boundary_f_score` taken
at the end. Host numpy (evaluation only).
"""

from __future__ import annotations

import numpy as np


def boundaries(label_map) -> np.ndarray:
    """Bool [..., H, W]: pixels with a 4-neighbour of another label (both sides of an edge)."""
    m = np.asarray(label_map)
    edge = np.zeros(m.shape, bool)
    dy = m[..., 1:, :] != m[..., :-1, :]
    dx = m[..., :, 1:] != m[..., :, :-1]
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    return edge


def _dilate(mask: np.ndarray, t: int) -> np.ndarray:
    """Bool max filter over a (2t+1)x(2t+1) square on the last two axes (zero padding)."""
    if t == 0:
        return mask
    h, w = mask.shape[-2:]
    pad = np.pad(mask, [(0, 0)] * (mask.ndim - 2) + [(t, t), (t, t)])
    out = np.zeros(mask.shape, bool)
    for dy in range(2 * t + 1):
        for dx in range(2 * t + 1):
            out |= pad[..., dy:dy + h, dx:dx + w]
    return out


def boundary_counts(labels, predictions, tolerance: int = 2) -> np.ndarray:
    """int64 [4]: (matched predicted, predicted, matched true, true) boundary pixel counts.

    labels, predictions: int [B, H, W] (or [H, W]) label maps of the same shape.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim < 2:
        raise ValueError(f"labels/predictions: expected equal shapes [..., H, W], got "
                         f"{labels.shape} and {predictions.shape}")
    if not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise ValueError(f"tolerance: expected an integer >= 0 (pixels), got {tolerance!r}")
    true_b, pred_b = boundaries(labels), boundaries(predictions)
    return np.array([(pred_b & _dilate(true_b, tolerance)).sum(), pred_b.sum(),
                     (true_b & _dilate(pred_b, tolerance)).sum(), true_b.sum()], np.int64)


def boundary_f_score(counts) -> dict[str, float]:
    """{'boundary_precision', 'boundary_recall', 'boundary_f'} from summed `boundary_counts`.

    No boundary at all in both: 1.0 (perfect); boundaries on one side only: 0.0.
    """
    mp, p, mt, t = (float(c) for c in np.asarray(counts))
    if p == 0 and t == 0:
        return {"boundary_precision": 1.0, "boundary_recall": 1.0, "boundary_f": 1.0}
    precision = mp / p if p else 0.0
    recall = mt / t if t else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"boundary_precision": precision, "boundary_recall": recall, "boundary_f": f}
