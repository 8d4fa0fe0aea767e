"""ops.kmeans_anchors against a float64 numpy Lloyd loop with the 1 - IoU distance, and on data
with known clusters."""

import numpy as np
import pytest

from jaxvision.ops import kmeans_anchors


def _lloyd_reference(wh, centroids, max_iters=300):
    """float64 k-means, d = 1 - IoU of centred boxes, mean update, empty clusters kept."""
    wh = wh.astype(np.float64)
    c = centroids.astype(np.float64)
    assign = None
    for _ in range(max_iters):
        inter = (np.minimum(wh[:, None, 0], c[None, :, 0])
                 * np.minimum(wh[:, None, 1], c[None, :, 1]))
        iou = inter / (wh.prod(1)[:, None] + c.prod(1)[None, :] - inter)
        new = np.argmin(1.0 - iou, axis=1)
        if assign is not None and (new == assign).all():
            break
        assign = new
        for m in range(len(c)):
            if (assign == m).any():
                c[m] = wh[assign == m].mean(0)
    return c[np.argsort(c[:, 0] * c[:, 1], kind="stable")]


def test_equals_float64_lloyd_reference():
    rng = np.random.default_rng(0)
    wh = np.exp(rng.normal(3.0, 0.8, (200, 2))).astype(np.float32)
    pick = rng.choice(200, 9, replace=False)
    ours = np.asarray(kmeans_anchors(wh, 9, init=wh[pick]))
    ref = _lloyd_reference(wh, wh[pick])
    np.testing.assert_allclose(ours, ref, rtol=1e-4)
    assert (np.diff(ours.prod(1)) >= 0).all()
    # the seeded (k-means++) start is deterministic per seed, and a Lloyd fixed point
    seeded = np.asarray(kmeans_anchors(wh, 9, seed=3))
    np.testing.assert_array_equal(np.asarray(kmeans_anchors(wh, 9, seed=3)), seeded)
    np.testing.assert_allclose(_lloyd_reference(wh, seeded), seeded, rtol=1e-4)
    assert not np.allclose(np.asarray(kmeans_anchors(wh, 9, seed=4)), seeded)


def test_recovers_known_clusters():
    rng = np.random.default_rng(1)
    centres = np.array([[10.0, 12.0], [60.0, 20.0], [25.0, 90.0]])
    wh = np.concatenate([c * np.exp(rng.normal(0, 0.03, (50, 2))) for c in centres])
    ours = np.asarray(kmeans_anchors(wh.astype(np.float32), 3))
    ref = np.stack([wh[i * 50:(i + 1) * 50].mean(0) for i in range(3)])
    np.testing.assert_allclose(ours, ref[np.argsort(ref.prod(1))], rtol=1e-4)


def test_max_iters_stops_early_and_bad_input():
    wh = np.exp(np.random.default_rng(2).normal(3.0, 0.8, (60, 2))).astype(np.float32)
    init = wh[:4]
    np.testing.assert_allclose(np.asarray(kmeans_anchors(wh, 4, init=init, max_iters=1)),
                               _lloyd_reference(wh, init, max_iters=1), rtol=1e-5)
    # a centroid no box is nearest to stays where it is
    far = np.concatenate([wh[:2], [[5000.0, 5000.0]]]).astype(np.float32)
    ours = np.asarray(kmeans_anchors(wh, 3, init=far))
    np.testing.assert_allclose(ours, _lloyd_reference(wh, far), rtol=1e-5)
    np.testing.assert_array_equal(ours[-1], [5000.0, 5000.0])
    with pytest.raises(ValueError, match="k: expected"):
        kmeans_anchors(wh, 61)
    with pytest.raises(ValueError, match="boxes_wh"):
        kmeans_anchors(wh[:, :1], 2)
