"""grain pipeline: padding, flip consistency, determinism, process slicing, iterator state."""

import os

import grain
import numpy as np
import pytest

from jaxvision.data import pipeline, transforms
from jaxvision.data.shapes_render import RenderSpec, render_example
from jaxvision.train.config import base_config, validate_data

FIELDS = ("image", "segmentation", "masks", "boxes", "labels", "label")


@pytest.fixture(scope="module")
def source():
    spec = RenderSpec(image_size=32, min_shapes=1, max_shapes=3, min_extent=0.25)
    return [render_example(spec, np.random.default_rng([7, i])) for i in range(10)]


def test_padding_and_label_shift(source):
    out = pipeline.ExampleTransform(FIELDS, max_boxes=5)(source[0], 0)
    n = len(source[0]["labels"])
    assert out["boxes"].shape == (5, 4) and out["masks"].shape == (5, 32, 32)
    np.testing.assert_array_equal(out["boxes_valid"], np.arange(5) < n)
    np.testing.assert_array_equal(out["boxes"][:n], source[0]["boxes"])
    np.testing.assert_array_equal(out["labels"][:n], source[0]["labels"] + 1)
    assert not out["boxes"][n:].any() and not out["labels"][n:].any() and not out["masks"][n:].any()
    expected = (source[0]["image"] / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(out["image"], expected, rtol=1e-5, atol=1e-5)


def test_truncates_to_max_boxes(source):
    ex = next(e for e in source if len(e["labels"]) >= 2)
    out = pipeline.ExampleTransform(FIELDS, max_boxes=1)(ex, 0)
    assert out["boxes_valid"].tolist() == [True]
    np.testing.assert_array_equal(out["boxes"][0], ex["boxes"][0])


def test_flip_moves_boxes_with_masks_and_image(source):
    for ex in source:
        flipped = transforms.hflip(ex)
        np.testing.assert_array_equal(flipped["image"], ex["image"][:, ::-1])
        np.testing.assert_array_equal(flipped["segmentation"], ex["segmentation"][:, ::-1])
        for mask, box in zip(flipped["masks"], flipped["boxes"], strict=True):
            ys, xs = np.nonzero(mask)
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_random_flip_is_a_function_of_seed_and_index(source):
    t = pipeline.ExampleTransform(FIELDS, random_flip=True, seed=3)
    flips = []
    for i in range(len(source)):
        a, b = t(source[i], i), t(source[i], i)
        np.testing.assert_array_equal(a["image"], b["image"])
        flips.append(not np.array_equal(a["segmentation"], source[i]["segmentation"]))
    assert 0 < sum(flips) < len(flips)


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match="depth"):
        pipeline.ExampleTransform(("image", "depth"))


def test_process_slices_partition_every_global_batch():
    ds = grain.MapDataset.range(40)
    parts = [pipeline._ProcessSlice(ds, 8, p, 4) for p in range(4)]
    assert [len(p) for p in parts] == [10] * 4
    for batch in range(5):
        rebuilt = np.concatenate([[p[batch * 2 + j] for j in range(2)] for p in parts])
        np.testing.assert_array_equal(rebuilt, np.arange(batch * 8, batch * 8 + 8))


def test_train_iterator_state_resumes_exactly(source):
    t = pipeline.ExampleTransform(("image", "segmentation"), random_flip=True)
    first = iter(pipeline.train_dataset(source, t, global_batch=4, seed=0))
    for _ in range(3):
        next(first)
    state = first.get_state()
    expected = [next(first) for _ in range(4)]  # crosses an epoch boundary (10 examples)
    second = iter(pipeline.train_dataset(source, t, global_batch=4, seed=0))
    second.set_state(state)
    for want in expected:
        got = next(second)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_epochs_are_reshuffled_and_cover_the_data(source):
    t = pipeline.ExampleTransform(("image", "label"))
    it = iter(pipeline.train_dataset(source, t, global_batch=5, seed=0))
    labels = lambda b: [tuple(np.round(img[0, 0], 4)) for img in b["image"]]
    epoch1 = labels(next(it)) + labels(next(it))
    epoch2 = labels(next(it)) + labels(next(it))
    assert sorted(epoch1) == sorted(epoch2) and len(set(epoch1)) == 10
    assert epoch1 != epoch2


def test_eval_batches_pad_and_mark(source):
    t = pipeline.ExampleTransform(("image", "segmentation"))
    batches = list(pipeline.eval_batches(source, t, global_batch=4))
    assert len(batches) == 3 and all(b["image"].shape[0] == 4 for b in batches)
    valid = np.concatenate([b["example_valid"] for b in batches])
    np.testing.assert_array_equal(valid, np.arange(12) < 10)
    seg = np.concatenate([b["segmentation"] for b in batches])[:10]
    np.testing.assert_array_equal(seg, np.stack([e["segmentation"] for e in source]))


class _WithPid:
    """The transform's example plus `pid`: the process that made it."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, example, index):
        return {**self.transform(example, index), "pid": np.int64(os.getpid())}


@pytest.mark.slow
def test_worker_processes_give_the_same_batches(source):
    """data.workers: batches made in a grain worker process equal the in-process ones."""
    from absl import flags

    if not flags.FLAGS.is_parsed():  # grain's workers read its flags; train.py parses them
        flags.FLAGS.mark_as_parsed()
    t = _WithPid(pipeline.ExampleTransform(("image", "segmentation"), random_flip=True))
    here = iter(pipeline.train_dataset(source, t, global_batch=4, seed=0))
    workers = iter(pipeline.train_dataset(source, t, global_batch=4, seed=0, workers=1))
    for _ in range(4):  # crosses an epoch boundary (10 examples)
        want, got = next(here), next(workers)
        assert (want["pid"] == os.getpid()).all() and (got["pid"] != os.getpid()).all()
        for key in ("image", "segmentation"):
            np.testing.assert_array_equal(got[key], want[key])
    data = base_config().data
    assert data.workers == 0
    data.workers = -1
    with pytest.raises(ValueError, match="config.data.workers: expected an integer >= 0"):
        validate_data(data)
