"""Aspect-ratio buckets and multi-scale sizes (jaxvision.data.buckets): shapes against a float64
count of the min/max rule, the grouped order against torchvision's pending-list rule, process
slices and resumption, bucketed evaluation, image sizes without decoding, Darknet's sizes, and
one trace per shape."""

import io

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from PIL import Image

from jaxvision.data import buckets, pipeline
from jaxvision.data.images import DecodedImages
from jaxvision.train.config import base_config, validate_config

RECIPE = (0.75, 1.0, 1.34, 1.5)  # configs/coco/faster_rcnn_r50_fpn.py


def _content(h, w, min_size=800, max_size=1333):
    """torchvision's GeneralizedRCNNTransform size, float64: floor of each side times
    min(min_size / shorter, max_size / longer)."""
    scale = np.minimum(min_size / np.minimum(h, w), max_size / np.maximum(h, w))
    return np.floor(h * scale), np.floor(w * scale)


def test_bucket_shapes_are_the_tightest_that_hold_every_image():
    assert buckets.bucket_shapes((1.0,), 800, 1333, 32) == ((1344, 800), (800, 1344))
    shapes = buckets.bucket_shapes(RECIPE, 800, 1333, 32)
    h, w = (g.ravel() for g in np.meshgrid(np.arange(100, 2200, 3), np.arange(100, 2200, 3)))
    ch, cw = _content(h.astype(np.float64), w.astype(np.float64))
    which = buckets.bucket_of(np.stack([h, w], 1), RECIPE)
    up = lambda v: np.ceil(v / 32) * 32  # noqa: E731
    for k, (sh, sw) in enumerate(shapes):
        inside = which == k
        assert (ch[inside] <= sh).all() and (cw[inside] <= sw).all()
        assert (up(ch[inside]).max(), up(cw[inside]).max()) == (sh, sw)  # none smaller holds
    assert shapes == ((1344, 800), (1088, 800), (800, 1088), (800, 1216), (800, 1344))
    # a boundary belongs to the bucket above it: 480 x 640 portrait is exactly 0.75, squares 1.0
    assert buckets.bucket_of([[640, 480], [641, 480], [500, 500], [501, 500]], RECIPE).tolist() \
        == [1, 0, 2, 1]


def test_padded_fraction_by_hand():
    # 480 x 640 -> 800 x 1066 content: 1 - 852,800 / 1344^2 in the square, / (800 x 1088)
    square = buckets.padded_fraction([[480, 640]], None, 800, 1333, 32)
    assert square == pytest.approx(1 - 800 * 1066 / 1344 ** 2)
    assert buckets.padded_fraction([[480, 640]], RECIPE, 800, 1333, 32) == pytest.approx(
        1 - 1066 / 1088)
    # and a portrait 427 x 640 with it: content 1199 x 800 in 1344 x 800
    both = buckets.padded_fraction([[480, 640], [640, 427]], RECIPE, 800, 1333, 32)
    assert both == pytest.approx(1 - (800 * 1066 + 1199 * 800) / (800 * 1088 + 1344 * 800))


def _grouped_reference(bucket_ids, batch, seed, count):
    """torchvision's GroupedBatchSampler walk over the seeded per-epoch permutations, the
    pending lists carried from one epoch to the next."""
    pending, out, epoch = {}, [], 0
    while len(out) < count:
        for i in np.random.default_rng([seed, epoch]).permutation(len(bucket_ids)):
            group = pending.setdefault(bucket_ids[i], [])
            group.append(i)
            if len(group) == batch:
                out.append((bucket_ids[i], group))
                pending[bucket_ids[i]] = []
        epoch += 1
    return out[:count]


def test_grouped_batches_are_torchvisions_walk():
    ids = np.random.default_rng(0).integers(0, 3, size=23)
    plan = buckets.GroupedBatches(ids, 4, seed=5)
    expected = _grouped_reference(ids.tolist(), 4, 5, 40)  # about 7 epochs
    for k in (39, 0, 17):  # any order: computed as far as asked
        bucket, indices = plan(k)
        assert (bucket, indices.tolist()) == expected[k]
        assert (ids[indices] == bucket).all()
    other = buckets.GroupedBatches(ids, 4, seed=6)
    assert [plan(k)[1].tolist() for k in range(10)] != [other(k)[1].tolist() for k in range(10)]


def _photos():
    """10 examples: five photographs (at a quarter of their size) and their transposes."""
    out = []
    for k, photo in enumerate((skimage.data.astronaut(), skimage.data.chelsea(),
                               skimage.data.coffee(), skimage.data.rocket(),
                               skimage.data.cat())):
        out.append({"image": photo[::4, ::4], "image_id": 100 + 2 * k})
        out.append({"image": np.ascontiguousarray(photo[::4, ::4].swapaxes(0, 1)),
                    "image_id": 101 + 2 * k})
    return out


def _small_config(**data):
    config = base_config()
    config.data.update({**dict(resize="min_max", min_size=32, max_size=53,
                               aspect_buckets=(1.0,)), **data})
    config.train.update(dict(batch_size=4, eval_batch_size=4))
    return config


class _Splits:
    def __init__(self, examples):
        self.train = self.test = examples
        self.image_size = 0


def _with_sizes(examples):
    """A stored-bytes source (like the folder builders'): PNG bytes, no orig_size."""
    rows = []
    for ex in examples:
        buffer = io.BytesIO()
        Image.fromarray(ex["image"]).save(buffer, format="PNG")
        rows.append({"image": buffer.getvalue(), "image_id": ex["image_id"]})
    return DecodedImages(rows)


def _batches(config, source, count, state=None):
    transform = pipeline.ExampleTransform(("image", "image_id", "image_size"), resize="min_max",
                                          min_size=32, max_size=53, seed=config.seed)
    it = iter(buckets.train_dataset(config, _Splits(source), transform))
    if state is not None:
        it.set_state(state)
    return [next(it) for _ in range(count)], it


def test_processes_take_slices_of_the_same_global_batches_and_resume(monkeypatch):
    config = _small_config()
    source = _with_sizes(_photos())
    whole, it = _batches(config, source, 6)
    shapes = {b["image"].shape[1:3] for b in whole}
    assert shapes == {(64, 32), (32, 64)}  # portrait and landscape buckets
    for b in whole:  # one bucket a batch: every image's content fits, portrait or landscape
        h, w = b["image"].shape[1:3]
        assert (b["image_size"] <= [h, w]).all() and ((b["image_size"][:, 0] > b[
            "image_size"][:, 1]) == (h > w)).all()
    state = it.get_state()
    after, _ = _batches(config, source, 3, state)  # resumed from the iterator's state
    later = [next(it) for _ in range(3)]
    for a, b in zip(after, later, strict=True):
        np.testing.assert_array_equal(a["image_id"], b["image_id"])
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    for index in (0, 1):
        monkeypatch.setattr(jax, "process_index", lambda index=index: index)
        share, _ = _batches(config, source, 6)
        for mine, full in zip(share, whole, strict=True):
            np.testing.assert_array_equal(mine["image_id"], full["image_id"][2 * index:
                                                                            2 * index + 2])
            np.testing.assert_array_equal(mine["image"], full["image"][2 * index:2 * index + 2])


def test_bucketed_evaluation_covers_each_example_once():
    config = _small_config()
    examples = _photos()[:7]
    transform = pipeline.ExampleTransform(("image", "image_size"), resize="min_max",
                                          min_size=32, max_size=53)
    seen = []
    for batch in buckets.eval_data(config, _Splits(_with_sizes(examples)), transform)():
        valid = batch["example_valid"]
        h, w = batch["image"].shape[1:3]
        for index, size in zip(batch["example_index"][valid], batch["image_size"][valid],
                               strict=True):
            oh, ow = examples[index]["image"].shape[:2]
            assert (h, w) == ((32, 64) if ow >= oh else (64, 32))
            assert tuple(size) == tuple(int(v) for v in _content(oh, ow, 32, 53))
            seen.append(int(index))
    assert sorted(seen) == list(range(7))


def test_image_sizes_come_from_stored_sizes_or_file_headers(tmp_path):
    examples = _photos()
    expected = [ex["image"].shape[:2] for ex in examples]
    np.testing.assert_array_equal(buckets.image_sizes(_with_sizes(examples)), expected)
    stored = DecodedImages([{"image": b"not read", "orig_size": np.array(s, np.int32)}
                            for s in expected])
    np.testing.assert_array_equal(buckets.image_sizes(stored), expected)
    np.testing.assert_array_equal(buckets.image_sizes(examples, stored_size=32), [[32, 32]] * 10)
    with pytest.raises(ValueError, match=r"data\.aspect_buckets: expected a source .* got \["):
        buckets.image_sizes(examples)


def test_coco_folder_sizes_are_the_annotation_files(tmp_path):
    from jaxvision.data import load_splits
    from tests.data.coco_photos import write_coco_photos

    data = write_coco_photos(str(tmp_path / "coco"))
    config = _small_config(data_dir=str(tmp_path / "tfds"))
    splits = load_splits(f"coco:{tmp_path / 'coco'}", config.data, instance_masks=False)
    for split, name in (("train", "train"), ("test", "val")):
        by_id = {im["id"]: (im["height"], im["width"]) for im in data[name]["images"]}
        source = getattr(splits, split)
        ids = [int(source.base[i]["image_id"]) for i in range(len(source))]
        np.testing.assert_array_equal(buckets.image_sizes(source), [by_id[i] for i in ids])


def _darknet_sizes(seed, count, steps):
    """pjreddie/darknet train_detector: every 10 batches `(rand() % 10 + 10) * 32`, 608 when
    fewer than 200 batches remain (here rand() is the period's seeded generator)."""
    out = []
    for k in range(count):
        if k % 10 == 0:
            r = np.random.default_rng([seed, k // 10, buckets.MULTI_SCALE_STREAM]).integers(10)
            dim = (r + 10) * 32
            if k + 200 > steps:
                dim = 608
        out.append(int(dim))
    return out


def test_multi_scale_sizes_are_darknets_rule():
    sizes = tuple(range(320, 609, 32))
    plan = buckets.MultiScale(50, 8, seed=3, sizes=sizes, every=10, steps=1000)
    got = [plan.size(k) for k in range(1000)]
    assert got == _darknet_sizes(3, 1000, 1000)
    # at batch 800, 800 + 200 > 1000 is false: still drawn; from 810 on, 608
    assert set(got[:810]) == set(sizes) and set(got[810:]) == {608} and got[800] != 608
    assert [plan.size(k) for k in range(20)] != [
        buckets.MultiScale(50, 8, seed=4, sizes=sizes, every=10, steps=1000).size(k)
        for k in range(20)]


def test_one_trace_per_shape():
    """Bucketed and multi-scale batches: each batch one shape, the jitted step traced once per
    shape (chex.assert_max_traces)."""
    config = _small_config()
    source = _with_sizes(_photos())
    step = jax.jit(chex.assert_max_traces(lambda x: jnp.mean(x), n=2))
    batches, _ = _batches(config, source, 8)
    for batch in batches:
        step(batch["image"])
    chex.clear_trace_counter()
    config = _small_config(resize="fixed", aspect_buckets=(), multi_scale=(32, 48, 64),
                           multi_scale_every=2)
    config.train.steps = 1000
    transform = pipeline.ExampleTransform(("image",), resize="fixed", fixed_size=48)
    it = iter(buckets.train_dataset(config, _Splits(_photos()), transform))
    plan = buckets.MultiScale(10, 4, 0, (32, 48, 64), 2, 1000)
    step = jax.jit(chex.assert_max_traces(lambda x: jnp.mean(x), n=3))
    for k in range(12):
        image = next(it)["image"]
        assert image.shape[1:3] == (plan.size(k),) * 2
        step(image)
    chex.clear_trace_counter()


@pytest.mark.parametrize("change, field", [
    (dict(resize="fixed"), "data.resize"),
    (dict(zoom_out=True), "data.zoom_out"),
    (dict(pad_size=1344), "data.pad_size"),
    (dict(aspect_buckets=(1.0, 0.5)), "data.aspect_buckets"),
    (dict(multi_scale=(320,)), "data.aspect_buckets"),
])
def test_bad_settings_name_their_field(change, field):
    config = _small_config(max_size=1333, min_size=800)
    config.data.update(change)
    with pytest.raises(ValueError, match=r"config\." + field.replace(".", r"\.")):
        validate_config(config)


def test_multi_scale_needs_positive_sizes_and_a_fixed_resize():
    config = _small_config(aspect_buckets=(), resize="fixed", multi_scale=(320, 0))
    with pytest.raises(ValueError, match=r"config\.data\.multi_scale: .* got \(320, 0\)"):
        validate_config(config)
    config.data.update(dict(multi_scale=(320,), resize="min_max"))
    with pytest.raises(ValueError, match=r"config\.data\.resize: expected 'fixed'"):
        validate_config(config)


def test_recipe_docstrings_state_the_benchmarks_padding():
    import configs.coco.faster_rcnn_r50_fpn as recipe
    from benchmarks.padding import assumed_sizes

    sizes = assumed_sizes()
    doc = " ".join(recipe.__doc__.split())
    assert recipe.ASPECT_BUCKETS == RECIPE
    for boundaries in (RECIPE, None, (1.0,)):
        fraction = buckets.padded_fraction(sizes, boundaries, 800, 1333, 32)
        assert f"{fraction:.1%}" in doc, (boundaries, fraction)
