"""U-Net's weight map (eq. 2) against a float64 brute force: per pixel, the distance to every
pixel of each of 3 cells, the two smallest cell distances d1 <= d2, w_c from class counts."""

import numpy as np
import pytest

from jaxvision.data.weight_map import TOLERANCE, border_weights, class_balance


def _three_cells(width=70):
    """[24, width] membrane 0 / cell 1: two touching-ish blobs and one far away, so that some
    pixels' second-nearest cell is beyond the distance cut-off."""
    labels = np.zeros((24, width), np.int64)
    labels[3:12, 2:10] = 1
    labels[14:22, 4:9] = 1  # 2 rows of membrane below the first
    labels[8:20, width - 8:width - 2] = 1
    labels[5, 3] = 0  # a hole inside the first cell: a membrane pixel at d1 = 0
    return labels


def _reference(labels, w0, sigma):
    """float64 w(x) by brute force, cells labelled by flood fill (4-connectivity)."""
    cells, n = np.zeros(labels.shape, int), 0
    for start in zip(*np.nonzero(labels == 1), strict=True):
        if cells[start]:
            continue
        n += 1
        stack = [start]
        while stack:
            y, x = stack.pop()
            if 0 <= y < labels.shape[0] and 0 <= x < labels.shape[1] and labels[y, x] == 1 \
                    and not cells[y, x]:
                cells[y, x] = n
                stack += [(y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)]
    yy, xx = np.mgrid[:labels.shape[0], :labels.shape[1]]
    dist = []
    for k in range(1, n + 1):
        py, px = np.nonzero(cells == k)
        d = np.sqrt((yy[..., None] - py) ** 2.0 + (xx[..., None] - px) ** 2.0).min(-1)
        dist.append(d)
    d1, d2 = np.sort(np.stack(dist), axis=0)[:2]
    counts = {c: (labels == c).sum() for c in (0, 1)}
    wc = np.where(labels == 1, labels.size / (2 * counts[1]), labels.size / (2 * counts[0]))
    border = w0 * np.exp(-(d1 + d2) ** 2 / (2 * sigma ** 2))
    return n, wc + np.where(labels == 0, border, 0.0), d2


@pytest.mark.parametrize("w0,sigma", [(10.0, 5.0), (4.0, 2.5)])
def test_weights_are_the_brute_force_formula(w0, sigma):
    labels = _three_cells()
    n, expected, d2 = _reference(labels, w0, sigma)
    assert n == 3
    cutoff = sigma * np.sqrt(2 * np.log(w0 / TOLERANCE))
    assert (d2 > cutoff).any()  # the cut-off is exercised
    got = border_weights(labels, w0=w0, sigma=sigma)
    assert got.dtype == np.float32 and got.shape == labels.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=TOLERANCE)


def test_defaults_are_the_papers():
    labels = _three_cells()
    np.testing.assert_allclose(border_weights(labels), _reference(labels, 10.0, 5.0)[1],
                               rtol=1e-6, atol=TOLERANCE)
    np.testing.assert_array_equal(border_weights(labels, w0=0.0), class_balance(labels))


def test_one_cell_has_no_border_term_and_balance_sums_per_class():
    labels = np.zeros((10, 12), np.int64)
    labels[2:5, 3:9] = 1
    weights = border_weights(labels)
    np.testing.assert_allclose(weights, class_balance(labels))
    for c in (0, 1):  # every present class carries the same total weight N / K
        np.testing.assert_allclose(weights[labels == c].sum(), labels.size / 2, rtol=1e-6)


def test_bad_input_names_what_was_expected():
    labels = _three_cells()
    with pytest.raises(ValueError, match="expected a non-empty \\[H, W\\] class map, got shape"):
        border_weights(labels[None])
    with pytest.raises(ValueError, match="expected classes >= 0, got -1"):
        border_weights(labels - 1)
    with pytest.raises(ValueError, match="data.weight_map: expected w0 >= 0 and sigma > 0"):
        border_weights(labels, sigma=0.0)
