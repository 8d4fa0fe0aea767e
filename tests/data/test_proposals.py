"""selective_search_batch: the same boxes as selective_search per image, in order, padded."""

import numpy as np
import pytest

from jaxvision.data.proposals import selective_search_batch
from jaxvision.ops.proposals import selective_search


def _images():
    rng = np.random.default_rng(0)
    a = np.full((24, 32, 3), 120.0) + rng.normal(0, 4, (24, 32, 3))
    a[4:14, 6:20] = [220, 40, 40]
    b = np.full((28, 20, 3), 60.0) + rng.normal(0, 4, (28, 20, 3))
    b[10:26, 2:12] = [30, 200, 60]
    return [np.clip(a, 0, 255).astype(np.uint8), np.clip(b, 0, 255).astype(np.uint8)]


def test_selective_search_batch_matches_per_image_and_pads():
    images = _images()
    kw = dict(ks=(50,), min_size=8)
    singles = [selective_search(img, **kw) for img in images]
    big = max(len(s) for s in singles) + 3
    boxes, valid = selective_search_batch(images, big, processes=2, **kw)
    assert boxes.shape == (2, big, 4) and boxes.dtype == np.float32 and valid.dtype == bool
    for i, s in enumerate(singles):
        assert len(s) > 0
        np.testing.assert_array_equal(valid[i], np.arange(big) < len(s))
        np.testing.assert_array_equal(boxes[i, :len(s)], s)
        assert not boxes[i, len(s):].any()
    # truncation keeps selective search's ranking; in-process gives the same
    small = min(len(s) for s in singles) - 1
    boxes, valid = selective_search_batch(images, small, processes=0, **kw)
    assert valid.all()
    for i, s in enumerate(singles):
        np.testing.assert_array_equal(boxes[i], s[:small])


def test_selective_search_batch_errors():
    with pytest.raises(ValueError, match="max_proposals"):
        selective_search_batch(_images(), 0)
    with pytest.raises(ValueError, match=r"images\[1\]"):
        selective_search_batch([np.zeros((4, 4, 3)), np.zeros((4, 4))], 5)
