"""Boundary F-score against a float64 loop reference written from its definition."""

import numpy as np
import pytest

from jaxvision.metrics.boundary import boundaries, boundary_counts, boundary_f_score


def _reference(labels, preds, t):
    """Per-pixel loops: boundary = a 4-neighbour differs; matched = a boundary pixel of the other
    map at Chebyshev distance <= t; F from dataset-summed counts, float64."""
    def edge(m):
        h, w = m.shape
        out = np.zeros((h, w), bool)
        for y in range(h):
            for x in range(w):
                for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and m[yy, xx] != m[y, x]:
                        out[y, x] = True
        return out

    def matched(a, b):
        ys, xs = np.nonzero(b)
        n = 0
        for y, x in zip(*np.nonzero(a), strict=True):
            n += bool(np.any(np.maximum(np.abs(ys - y), np.abs(xs - x)) <= t))
        return n

    c = np.zeros(4, np.float64)
    for lab, pre in zip(labels, preds, strict=True):
        tb, pb = edge(lab), edge(pre)
        c += [matched(pb, tb), pb.sum(), matched(tb, pb), tb.sum()]
    p, r = c[0] / c[1], c[2] / c[3]
    return c, 2 * p * r / (p + r)


@pytest.mark.parametrize("tolerance", [0, 1, 3])
def test_matches_the_definition_on_random_blobs(tolerance):
    rng = np.random.default_rng(tolerance)
    labels = np.zeros((3, 20, 24), np.int32)
    labels[:, 4:12, 5:15] = 1
    labels[:, 14:18, 2:9] = 2
    preds = labels.copy()
    preds[:, 5:13, 6:16] = 1  # a shifted box
    noise = rng.random(preds.shape) < 0.05
    preds[noise] = rng.integers(0, 3, noise.sum())
    counts = boundary_counts(labels, preds, tolerance)
    ref_counts, ref_f = _reference(labels, preds, tolerance)
    np.testing.assert_array_equal(counts, ref_counts)
    assert boundary_f_score(counts)["boundary_f"] == pytest.approx(ref_f, rel=1e-12)
    assert 0.0 < ref_f < 1.0


def test_tolerance_forgives_a_small_shift_only():
    labels = np.zeros((1, 16, 16), np.int32)
    labels[0, 4:10, 4:10] = 1
    shifted = np.roll(labels, 4, axis=2)
    assert boundary_f_score(boundary_counts(labels, labels))["boundary_f"] == 1.0
    assert boundary_f_score(boundary_counts(labels, shifted, 4))["boundary_f"] == 1.0
    assert boundary_f_score(boundary_counts(labels, shifted, 1))["boundary_f"] < 0.7


def test_boundaries_mark_both_sides_of_an_edge_and_empty_maps_score_one():
    m = np.array([[0, 0, 1, 1]])
    np.testing.assert_array_equal(boundaries(m), [[False, True, True, False]])
    flat = np.zeros((2, 8, 8), np.int32)
    assert boundary_f_score(boundary_counts(flat, flat))["boundary_f"] == 1.0


def test_bad_input_raises_naming_the_field():
    with pytest.raises(ValueError, match="labels/predictions: expected equal shapes"):
        boundary_counts(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="tolerance: expected an integer >= 0"):
        boundary_counts(np.zeros((4, 4)), np.zeros((4, 4)), -1)
