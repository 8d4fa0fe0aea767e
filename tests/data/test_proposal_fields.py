"""`proposals` / `proposals_valid` through the example transforms, `load_splits` with
`config.data.proposals`, and the config checks of its fields."""

import os

import numpy as np
import pytest

from configs.detection_shapes import detection_shapes
from jaxvision.data import load_splits, make_transforms, pipeline, transforms
from jaxvision.data.shapes_render import RenderSpec, render_example
from jaxvision.ops.proposals import selective_search
from jaxvision.train.config import base_config, validate_config

MAX_BOXES = 12


def _example(seed: int) -> dict:
    """A rendered shapes example plus 9 random non-empty proposals and 3 padding rows."""
    ex = render_example(RenderSpec(image_size=48, min_shapes=1, max_shapes=3),
                        np.random.default_rng([5, seed]))
    rng = np.random.default_rng([6, seed])
    xy = rng.uniform(0, 36, (9, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(2, 12, (9, 2))], 1).astype(np.float32)
    ex["proposals"] = np.concatenate([boxes, np.zeros((3, 4), np.float32)])
    ex["proposals_valid"] = np.arange(12) < 9
    return ex


@pytest.mark.parametrize("settings", [
    dict(random_flip=True),
    dict(random_flip=True, zoom_out=True, zoom_out_max=2.0, resize="fixed", fixed_size=40),
    dict(resize="min_max", min_size=64, max_size=80, size_divisible=32),
    dict(photometric_distort=True, resize="fixed", fixed_size=64, pad_size=96),
])
def test_proposals_move_exactly_as_ground_truth_boxes(settings):
    """The reference: the same boxes given as ground truth, under the same random draws."""
    train = pipeline.ExampleTransform(("image", "boxes"), max_boxes=MAX_BOXES, seed=3, **settings)
    flipped = 0
    for index in range(6):
        ex = _example(index)
        out = train(ex, index)
        as_gt = {k: v for k, v in ex.items() if not k.startswith("proposals")}
        as_gt.update(boxes=ex["proposals"][:9], labels=np.zeros(9, np.int64))
        want = train(as_gt, index)
        assert want["num_dropped_boxes"] == 0
        assert out["proposals"].dtype == np.float32 and out["proposals"].shape == (12, 4)
        np.testing.assert_array_equal(out["proposals_valid"], np.arange(12) < 9)
        np.testing.assert_array_equal(out["proposals"][:9], want["boxes"][:9])
        assert not out["proposals"][9:].any()
        # the ground-truth boxes are unaffected by the proposals being there
        np.testing.assert_array_equal(out["boxes"], train({k: v for k, v in ex.items()
                                                           if k[0] != "p"}, index)["boxes"])
        flipped += bool(out["proposals"][0, 0] != ex["proposals"][0, 0])
    assert flipped > 0  # the random steps ran


def test_min_iou_crop_clips_proposals_and_invalidates_emptied_ones():
    ex = _example(0)
    ex["proposals"][:3] = [[0, 0, 4, 4], [40, 40, 48, 48], [10, 12, 30, 40]]
    top, left, h, w = 8, 6, 28, 30
    out = transforms.finish_proposals(transforms.crop(ex, top, left, h, w))
    shifted = ex["proposals"][:9] - [left, top, left, top]
    want = np.clip(shifted, 0, [w, h, w, h])
    keep = (want[:, 2] > want[:, 0]) & (want[:, 3] > want[:, 1])
    assert not keep[0] and not keep[1] and keep[2]  # corners outside; the third crosses in
    np.testing.assert_array_equal(out["proposals_valid"], np.r_[keep, [False] * 3])
    np.testing.assert_allclose(out["proposals"][:9][keep], want[keep])
    assert not out["proposals"][~out["proposals_valid"]].any()
    # SSD's recipe with the min-IoU crop on: always static, valid rows inside the image
    t = pipeline.ExampleTransform(("image", "boxes"), max_boxes=4, min_iou_crop=True,
                                  zoom_out=True, resize="fixed", fixed_size=32, seed=1)
    for index in range(8):
        out = t(_example(index), index)
        assert out["proposals"].shape == (12, 4)
        p = out["proposals"][out["proposals_valid"]]
        assert ((p[:, 2] > p[:, 0]) & (p[:, 3] > p[:, 1])).all() and p.max() <= 32


def test_load_splits_adds_cached_selective_search(tmp_path):
    config = detection_shapes(base_config(), recipe="rcnn")
    config.data.data_dir = str(tmp_path)
    config.data.image_size = 48
    config.data.builders.shapes.update(dict(num_train=3, num_test=2))
    config.data.proposals.update(dict(method="selective_search", max_proposals=40,
                                      processes=0, ks=(100,)))
    validate_config(config)
    splits = load_splits(config.dataset, config.data)
    folder = tmp_path / "jaxvision_proposals"
    files = sorted(os.listdir(folder))
    assert len(files) == 2 and all(f.endswith(".npz") for f in files)  # train and test
    for split in (splits.train, splits.test):
        for i in range(len(split)):
            ex = split[i]
            want = selective_search(ex["image"], max_boxes=40, ks=(100,), min_size=20)
            n = len(want)
            assert 0 < n <= 40
            np.testing.assert_array_equal(ex["proposals"][:n], want)
            np.testing.assert_array_equal(ex["proposals_valid"], np.arange(40) < n)
    # through the detection eval transform: the 'rcnn' recipe resizes 48 px images to 128
    _, evaluation = make_transforms(config, ("image", "boxes"))
    out = evaluation(splits.test[1], 1)
    np.testing.assert_array_equal(out["image_size"], [128, 128])
    np.testing.assert_allclose(out["proposals"], splits.test[1]["proposals"] * (128 / 48),
                               rtol=1e-6)
    # a second load reads the files; other settings get their own file
    again = load_splits(config.dataset, config.data)
    np.testing.assert_array_equal(again.train[2]["proposals"], splits.train[2]["proposals"])
    assert len(os.listdir(folder)) == 2
    config.data.proposals.processes = 1  # the worker count is not part of the cache key
    load_splits(config.dataset, config.data)
    assert len(os.listdir(folder)) == 2
    config.data.proposals.max_proposals = 8
    fewer = load_splits(config.dataset, config.data)
    assert len(os.listdir(folder)) == 4
    np.testing.assert_array_equal(fewer.train[0]["proposals"], splits.train[0]["proposals"][:8])


@pytest.mark.parametrize("field, value, match", [
    ("method", "edge_boxes", r"config.data.proposals.method: expected one of \('none', "
                             r"'selective_search'\), got 'edge_boxes'"),
    ("strategy", "quality", r"config.data.proposals.strategy: expected one of"),
    ("max_proposals", 0, r"config.data.proposals.max_proposals: expected an integer >= 1, "
                         r"got 0"),
    ("processes", -1, r"config.data.proposals.processes: expected an integer >= 0, got -1"),
    ("min_size", 0, r"config.data.proposals.min_size: expected an integer >= 1, got 0"),
    ("ks", (), r"config.data.proposals.ks: expected positive Felzenszwalb scales, got \(\)"),
])
def test_proposal_settings_errors_name_the_field(field, value, match):
    config = base_config()
    validate_config(config)  # the defaults pass: method 'none'
    assert config.data.proposals.method == "none"
    config.data.proposals[field] = value
    with pytest.raises(ValueError, match=match):
        validate_config(config)
    # at the edges of the allowed range the settings pass
    for f, ok in (("max_proposals", 1), ("processes", 0), ("min_size", 1)):
        good = base_config()
        good.data.proposals[f] = ok
        validate_config(good)
