"""The synthetic shapes TFDS builder: determinism, masks agreeing with boxes and labels."""

import numpy as np
import pytest

from jaxvision.data.shapes import shapes_builder
from jaxvision.data.shapes_render import RenderSpec, render_example


def _build(tmp_path, name, **kw):
    builder = shapes_builder(num_train=12, num_test=4, data_dir=str(tmp_path / name), **kw)
    builder.download_and_prepare()
    return builder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("shapes"), "a", image_size=48, max_shapes=4)


def test_builds_without_network_and_reports_splits(built):
    assert built.name == "shapes"
    assert built.info.splits["train"].num_examples == 12
    assert built.info.splits["test"].num_examples == 4


def test_same_seed_same_data_other_seed_other_data(built, tmp_path):
    again = _build(tmp_path, "b", image_size=48, max_shapes=4)
    other = _build(tmp_path, "c", image_size=48, max_shapes=4, seed=1)
    a, b, c = (x.as_data_source(split="train") for x in (built, again, other))
    for i in range(len(a)):
        for key in a[i]:
            np.testing.assert_array_equal(a[i][key], b[i][key])
    assert any(not np.array_equal(a[i]["image"], c[i]["image"]) for i in range(len(a)))


def test_masks_boxes_labels_agree(built):
    source = built.as_data_source(split="train")
    for i in range(len(source)):
        ex = source[i]
        n = len(ex["labels"])
        assert 1 <= n <= 4
        assert ex["image"].shape == (48, 48, 3) and ex["image"].dtype == np.uint8
        assert ex["masks"].shape == (n, 48, 48) and ex["boxes"].shape == (n, 4)
        semantic = np.zeros((48, 48), np.int64)
        for mask, box, label in zip(ex["masks"], ex["boxes"], ex["labels"], strict=True):
            ys, xs = np.nonzero(mask)
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            assert not (semantic[mask > 0]).any(), "instances overlap"
            semantic[mask > 0] = label + 1
        np.testing.assert_array_equal(ex["segmentation"], semantic)
        areas = ex["masks"].reshape(n, -1).sum(1)
        assert ex["label"] == ex["labels"][np.argmax(areas)]


def test_render_uses_every_class_and_shape_count():
    spec = RenderSpec(image_size=64, min_shapes=2, max_shapes=3)
    examples = [render_example(spec, np.random.default_rng(i)) for i in range(60)]
    counts = [len(e["labels"]) for e in examples]
    assert set(counts) == {2, 3}
    assert set(np.concatenate([e["labels"] for e in examples])) == {0, 1, 2}


def test_extent_bounds_shape_size(tmp_path):
    """Box sides are the shape diameter 2r (to a pixel), drawn in [min, max] x image size."""
    builder = _build(tmp_path, "big", image_size=40, max_shapes=1, min_extent=0.6,
                     max_extent=0.9)
    assert builder.builder_config.name.endswith("_e0.6-0.9")
    source = builder.as_data_source(split="train")
    sides = np.concatenate([source[i]["boxes"][:, 2:] - source[i]["boxes"][:, :2]
                            for i in range(len(source))])
    assert sides.min() >= 0.6 * 40 - 1 and sides.max() <= 0.9 * 40 + 1
    default = shapes_builder(image_size=40, max_shapes=1, data_dir=str(tmp_path / "d"))
    assert "_e" not in default.builder_config.name


@pytest.mark.parametrize(("field", "kwargs"), [
    ("min_extent", dict(min_extent=0.5, max_extent=0.4)),
    ("max_extent", dict(max_extent=1.5)),
    ("image_size", dict(image_size=8)),
    ("num_train", dict(num_train=0)),
    ("max_shapes", dict(min_shapes=3, max_shapes=2)),
])
def test_bad_settings_name_the_field(field, kwargs, tmp_path):
    with pytest.raises(ValueError, match=field):
        shapes_builder(data_dir=str(tmp_path), **kwargs)
