"""Pixel cross-entropy against a float64 numpy softmax."""

import numpy as np

from jaxvision.losses import pixel_cross_entropy


def test_pixel_cross_entropy_matches_numpy_and_ignores_label():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 6, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=(2, 5, 6))
    labels[0, :2] = 255
    z = logits.astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    keep = labels != 255
    picked = np.take_along_axis(logp, np.where(keep, labels, 0)[..., None], -1)[..., 0]
    expected = -(picked * keep).sum() / keep.sum()
    got = pixel_cross_entropy(logits, labels, ignore_label=255)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    all_pixels = pixel_cross_entropy(logits, np.where(keep, labels, 0))
    assert not np.isclose(all_pixels, got)
