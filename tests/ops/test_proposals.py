import numpy as np
import pytest

from jaxvision.ops.proposals import felzenszwalb, selective_search, sliding_windows
from tests.ops.felzenszwalb_reference import felzenszwalb_reference, same_partition
from tests.ops.reference import iou_ref


def test_sliding_windows_definition():
    got = sliding_windows((10, 12), [(4, 4), (5, 8)], 3)
    want = [[x, y, x + w, y + h] for h, w in [(4, 4), (5, 8)]
            for y in range(0, 10 - h + 1, 3) for x in range(0, 12 - w + 1, 3)]
    np.testing.assert_array_equal(got, want)


def test_felzenszwalb_separates_flat_regions():
    img = np.zeros((30, 40, 3))
    img[5:20, 8:30] = [200, 30, 30]
    labels = felzenszwalb(img, k=100, sigma=0.0, min_size=10)
    assert labels.max() == 1
    assert len(np.unique(labels[5:20, 8:30])) == 1 and labels[0, 0] != labels[10, 10]
    # with smoothing, blurred borders may form thin strips but never below min_size pixels
    labels = felzenszwalb(img + np.random.default_rng(0).normal(0, 2, img.shape), min_size=10)
    assert np.bincount(labels.ravel()).min() >= 10


@pytest.mark.parametrize("k, min_size", [(50, 20), (200, 20), (100, 5)])
def test_felzenszwalb_equals_the_paper_algorithm(k, min_size):
    rng = np.random.default_rng(k + min_size)
    img = np.full((48, 64, 3), 110.0) + rng.normal(0, 10, (48, 64, 3))
    for _ in range(4):  # noisy rectangles of random colours
        y, x = rng.integers(0, 36), rng.integers(0, 50)
        img[y:y + 12, x:x + 14] = rng.uniform(0, 255, 3) + rng.normal(0, 6, (12, 14, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    got = felzenszwalb(img, k=k, sigma=0.8, min_size=min_size)
    want = felzenszwalb_reference(img, k=k, sigma=0.8, min_size=min_size)
    assert got.dtype == np.int32 and got.min() == 0
    np.testing.assert_array_equal(np.unique(got), np.arange(got.max() + 1))
    assert 3 <= got.max() + 1 < 48 * 64 // min_size
    assert same_partition(got, want)


def shapes_image(rng, h=375, w=500, n=5):
    """A shapes-dataset-like image: circles, squares and triangles on a textured background."""
    yy, xx = np.mgrid[:h, :w]
    bg = 90 + 40 * np.sin(xx / 17.0)[..., None] * np.cos(yy / 23.0)[..., None]
    img = bg + rng.normal(0, 12, (h, w, 3)) + rng.uniform(-30, 30, 3)
    boxes, taken = [], np.zeros((h, w), bool)
    while len(boxes) < n:
        s = rng.uniform(45, 120)
        cx, cy = rng.uniform(s, w - s), rng.uniform(s, h - s)
        kind = len(boxes) % 3
        if kind == 0:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= (s / 2) ** 2
        elif kind == 1:
            mask = (abs(xx - cx) <= s / 2) & (abs(yy - cy) <= s / 2)
        else:  # triangle with apex up
            t = (yy - (cy - s / 2)) / s
            mask = (t >= 0) & (t <= 1) & (abs(xx - cx) <= t * s / 2)
        if (mask & taken).any():
            continue
        taken |= ndilate(mask)
        img[mask] = rng.uniform(0, 255, 3) + rng.normal(0, 6, (mask.sum(), 3))
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.clip(img, 0, 255).astype(np.uint8), np.array(boxes, np.float32)


def ndilate(mask):
    from scipy import ndimage
    return ndimage.binary_dilation(mask, iterations=6)


@pytest.mark.slow
def test_selective_search_recall_on_shapes_image():
    rng = np.random.default_rng(0)
    img, gt = shapes_image(rng)
    boxes = selective_search(img)
    assert 200 <= len(boxes) <= 2000, len(boxes)
    assert (boxes[:, 2] <= 500).all() and (boxes[:, 3] <= 375).all()
    best = iou_ref(gt, boxes).max(1)
    assert (best >= 0.7).all(), best


def test_selective_search_errors():
    with pytest.raises(ValueError, match="image"):
        selective_search(np.zeros((10, 10)))
    with pytest.raises(ValueError, match="strategy"):
        selective_search(np.zeros((10, 10, 3)), strategy="quality")
