"""selective_search_batch: the same boxes as selective_search per image, in order, padded."""

import os

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


def test_cached_proposals_saves_resumes_and_checks(tmp_path, monkeypatch):
    from jaxvision.data import proposals as lib

    images = _images() * 2  # 4 images
    source = [{"image": img} for img in images]
    kw = dict(ks=(50,), min_size=8)
    want_boxes, want_valid = selective_search_batch(images, 30, processes=0, **kw)
    path = str(tmp_path / "p.npz")
    # an interrupted run left its first chunk (images 0-1): it is reused, not recomputed
    os.makedirs(path + ".parts")
    marker = np.full((2, 30, 4), 7.0, np.float32)
    np.savez(os.path.join(path + ".parts", f"{0:09d}-{2:09d}.npz"), boxes=marker,
             valid=np.ones((2, 30), bool))
    boxes, valid = lib.cached_proposals(source, path, 30, processes=0, save_every=2, **kw)
    np.testing.assert_array_equal(boxes[:2], marker)
    np.testing.assert_array_equal(boxes[2:], want_boxes[2:])
    np.testing.assert_array_equal(valid[2:], want_valid[2:])
    assert os.path.exists(path) and not os.path.exists(path + ".parts")
    # the finished file is read back without running selective search
    monkeypatch.setattr(lib, "selective_search", None)
    again, _ = lib.cached_proposals(source, path, 30, processes=0, **kw)
    np.testing.assert_array_equal(again, boxes)
    with pytest.raises(ValueError, match=r"proposals cache .*p.npz: expected boxes \[4, 20, 4\] "
                                         r"for this source, got \(4, 30, 4\); delete the file"):
        lib.cached_proposals(source, path, 20, processes=0)
    with pytest.raises(ValueError, match=r"proposals: expected one row per example \(4\), got 3"):
        lib.WithProposals(source, boxes[:3], valid[:3])
    ex = lib.WithProposals(source, boxes, valid)[3]
    np.testing.assert_array_equal(ex["proposals"], want_boxes[3])
    assert ex["image"] is images[3]


def test_cached_proposals_in_worker_processes_equal_in_process(tmp_path):
    from jaxvision.data.proposals import cached_proposals

    images = _images()
    source = [{"image": img} for img in images]
    kw = dict(ks=(50,), min_size=8)
    boxes, valid = cached_proposals(source, str(tmp_path / "w.npz"), 25, processes=2,
                                    save_every=1, **kw)
    want_boxes, want_valid = selective_search_batch(images, 25, processes=0, **kw)
    np.testing.assert_array_equal(boxes, want_boxes)
    np.testing.assert_array_equal(valid, want_valid)
