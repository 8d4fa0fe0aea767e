"""Pad-and-random-crop: keeps labels, is a shifted copy of the image, deterministic per index."""

import numpy as np
import pytest

from jaxvision.data import pipeline, transforms
from jaxvision.data.shapes_render import RenderSpec, render_example


@pytest.fixture(scope="module")
def source():
    spec = RenderSpec(image_size=32, min_shapes=1, max_shapes=1)
    return [render_example(spec, np.random.default_rng([3, i])) for i in range(12)]


def test_crop_is_a_shift_and_keeps_the_label(source):
    p = 4
    t = pipeline.ExampleTransform(("image", "label"), random_crop_padding=p, seed=5)
    plain = pipeline.ExampleTransform(("image", "label"))
    offsets = set()
    for i, ex in enumerate(source):
        out = t(ex, i)
        assert out["label"] == ex["label"] and out["label"].dtype == np.int32
        assert out["image"].shape == (32, 32, 3)
        dy, dx = np.random.default_rng([5, i, 1]).integers(0, 2 * p + 1, size=2)
        offsets.add((int(dy), int(dx)))
        padded = np.pad(plain(ex, i)["image"], ((p, p), (p, p), (0, 0)),
                        constant_values=np.nan)
        expected = padded[dy:dy + 32, dx:dx + 32]
        inside = ~np.isnan(expected)
        np.testing.assert_array_equal(out["image"][inside], expected[inside])
        black = transforms.normalise(np.zeros((1, 1, 3), np.uint8))[0, 0]
        np.testing.assert_allclose(out["image"][~inside[..., 0]],
                                   np.broadcast_to(black, out["image"][~inside[..., 0]].shape))
    assert len(offsets) > 3  # offsets vary with the index


def test_crop_is_deterministic_and_independent_of_the_flip(source):
    crop = pipeline.ExampleTransform(("image", "label"), random_crop_padding=4, seed=1,
                                     random_flip=True)
    again = pipeline.ExampleTransform(("image", "label"), random_crop_padding=4, seed=1,
                                      random_flip=True)
    for i, ex in enumerate(source):
        np.testing.assert_array_equal(crop(ex, i)["image"], again(ex, i)["image"])
    other = pipeline.ExampleTransform(("image", "label"), random_crop_padding=4, seed=2)
    assert any(not np.array_equal(crop(ex, i)["image"], other(ex, i)["image"])
               for i, ex in enumerate(source))


def test_crop_moves_segmentation_with_the_image(source):
    ex = {k: source[0][k] for k in ("image", "segmentation", "label")}
    out = transforms.pad_and_crop(ex, 3, (0, 6))
    np.testing.assert_array_equal(out["segmentation"][3:, :29], ex["segmentation"][:-3, 3:])
    np.testing.assert_array_equal(out["image"][3:, :29], ex["image"][:-3, 3:])
    assert not out["segmentation"][:3].any()
    unchanged = transforms.pad_and_crop(ex, 3, (3, 3))
    np.testing.assert_array_equal(unchanged["image"], ex["image"])


def test_crop_rejects_bad_settings(source):
    with pytest.raises(ValueError, match="random_crop_padding: expected an integer >= 0, got -1"):
        pipeline.ExampleTransform(("image", "label"), random_crop_padding=-1)
    with pytest.raises(ValueError, match="random_crop_padding: expected 0 for box fields"):
        pipeline.ExampleTransform(("image", "boxes"), random_crop_padding=2)
    with pytest.raises(ValueError, match="random_crop_padding: expected an example without boxes"):
        transforms.pad_and_crop({"image": source[0]["image"], "boxes": source[0]["boxes"]}, 2,
                                (0, 0))
    with pytest.raises(ValueError, match=r"offset: expected each in \[0, 4\], got \(5, 0\)"):
        transforms.pad_and_crop({"image": source[0]["image"]}, 2, (5, 0))
