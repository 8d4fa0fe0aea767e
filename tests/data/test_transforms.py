"""Geometric transforms by field kind, checked against torchvision (resize rule, interpolation,
box resizing, flips) and hand-computed cases (crop clipping, dropping, placement, static pad)."""

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.models.detection import transform as tv_detection
from torchvision.transforms.v2 import functional as tvf

from jaxvision.data import pipeline, transforms


def _example(h, w, n=3, seed=0):
    rng = np.random.default_rng(seed)
    x1, y1 = rng.uniform(0, w - 8, n), rng.uniform(0, h - 8, n)
    boxes = np.stack([x1, y1, x1 + rng.uniform(2, 8, n), y1 + rng.uniform(2, 8, n)], -1)
    masks = (rng.random((n, h, w)) < 0.3).astype(np.uint8)
    return {"image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
            "segmentation": rng.integers(0, 4, (h, w)).astype(np.uint8),
            "masks": masks, "boxes": boxes.astype(np.float32),
            "labels": rng.integers(0, 3, n), "iscrowd": np.zeros(n, bool)}


@pytest.mark.parametrize("h, w, min_size, max_size", [
    (37, 53, 800, 1333), (480, 640, 800, 1333), (1000, 300, 800, 1333), (21, 17, 16, 20),
    (64, 64, 64, 64), (50, 90, 60, 100)])
def test_min_max_resize_matches_generalized_rcnn_transform(h, w, min_size, max_size):
    ex = _example(h, w)
    image = torch.from_numpy(ex["image"].astype(np.float32)).permute(2, 0, 1)
    target = {"masks": torch.from_numpy(ex["masks"])}
    want_image, want = tv_detection._resize_image_and_masks(image, min_size, max_size, target)
    size = transforms.min_max_size(h, w, min_size, max_size)
    assert size == tuple(want_image.shape[-2:])
    out = transforms.resize(ex, size)
    np.testing.assert_allclose(out["image"], want_image.permute(1, 2, 0).numpy(), atol=1e-2)
    np.testing.assert_array_equal(out["masks"], want["masks"].numpy())
    want_boxes = tv_detection.resize_boxes(torch.from_numpy(ex["boxes"]), [h, w], list(size))
    np.testing.assert_allclose(out["boxes"], want_boxes.numpy(), rtol=1e-6)


@pytest.mark.parametrize("side", [300, 416, 13])
def test_fixed_resize_matches_torchvision_fixed_size(side):
    ex = _example(45, 70, seed=1)
    image = torch.from_numpy(ex["image"].astype(np.float32)).permute(2, 0, 1)
    want, target = tv_detection._resize_image_and_masks(
        image, 800, 1333, {"masks": torch.from_numpy(ex["masks"])}, fixed_size=(side, side))
    out = transforms.resize(ex, (side, side))
    np.testing.assert_allclose(out["image"], want.permute(1, 2, 0).numpy(), atol=1e-2)
    np.testing.assert_array_equal(out["masks"], target["masks"].numpy())
    np.testing.assert_array_equal(out["segmentation"],
                                  torch.nn.functional.interpolate(
                                      torch.from_numpy(ex["segmentation"])[None, None].float(),
                                      size=(side, side))[0, 0].byte().numpy())


def test_hflip_matches_torchvision_and_twice_is_identity():
    ex = _example(30, 41, n=5, seed=2)
    flipped = transforms.hflip(ex)
    want = tvf.horizontal_flip(tv_tensors.BoundingBoxes(
        torch.from_numpy(ex["boxes"]), format="XYXY", canvas_size=(30, 41)))
    np.testing.assert_allclose(flipped["boxes"], want.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(flipped["image"], ex["image"][:, ::-1])
    np.testing.assert_array_equal(flipped["masks"], ex["masks"][:, :, ::-1])
    twice = transforms.hflip(flipped)
    for key in ("image", "segmentation", "masks", "labels"):
        np.testing.assert_array_equal(twice[key], ex[key])
    np.testing.assert_allclose(twice["boxes"], ex["boxes"], atol=1e-5)  # float32 W - (W - x)


def test_crop_clips_shifts_and_drop_empty_counts():
    ex = {"image": np.zeros((20, 30, 3), np.uint8),
          "boxes": np.array([[2, 3, 12, 9],     # inside the window after the shift
                             [0, 0, 6, 30],     # partly outside: clipped
                             [25, 1, 29, 4],    # entirely right of the window: no area
                             [6, 5, 6, 8]],     # zero width before the crop
                            np.float32),
          "labels": np.arange(4), "iscrowd": np.array([0, 1, 0, 0], bool),
          "masks": np.arange(4 * 20 * 30).reshape(4, 20, 30).astype(np.uint8)}
    out = transforms.crop(ex, top=2, left=1, height=10, width=15)  # window x 1..16, y 2..12
    np.testing.assert_array_equal(out["boxes"], [[1, 1, 11, 7], [0, 0, 5, 10], [15, 0, 15, 2],
                                                 [5, 3, 5, 6]])
    np.testing.assert_array_equal(out["masks"], ex["masks"][:, 2:12, 1:16])
    kept, dropped = transforms.drop_empty(out)
    assert dropped == 2
    np.testing.assert_array_equal(kept["labels"], [0, 1])
    np.testing.assert_array_equal(kept["iscrowd"], [False, True])
    np.testing.assert_array_equal(kept["masks"], out["masks"][:2])


def test_place_shifts_boxes_and_fills_by_kind():
    ex = _example(12, 16, n=2, seed=3)
    out = transforms.place(ex, (16, 21), top=3, left=4, fill=(1, 2, 3))
    np.testing.assert_array_equal(out["image"][3:15, 4:20], ex["image"])
    assert (out["image"][0, 0] == [1, 2, 3]).all()
    assert (out["segmentation"][0] == transforms.IGNORE).all()
    assert out["masks"][:, :3].sum() == 0 and out["masks"].sum() == ex["masks"].sum()
    np.testing.assert_allclose(out["boxes"], ex["boxes"] + [4, 3, 4, 3], atol=1e-5)
    with pytest.raises(ValueError, match="pad size"):
        transforms.place(ex, (12, 18), top=1, left=0)


def test_min_max_pipeline_pads_to_a_static_square_with_defaults():
    ex = _example(48, 64, n=2, seed=4)
    t = pipeline.ExampleTransform(("image", "boxes", "masks"), max_boxes=3, resize="min_max")
    out = t(ex, 0)
    side = 1344  # ceil(1333 / 32) * 32
    assert out["image"].shape == (side, side, 3) and out["masks"].shape == (3, side, side)
    h, w = transforms.min_max_size(48, 64, 800, 1333)
    assert (h, w) == (800, 1066)
    np.testing.assert_array_equal(out["image_size"], [h, w])
    np.testing.assert_array_equal(out["orig_size"], [48, 64])
    assert not out["image"][h:].any() and not out["image"][:, w:].any()
    np.testing.assert_allclose(out["boxes"][:2], ex["boxes"] * [w / 64, h / 48, w / 64, h / 48],
                               rtol=1e-5)
    small = pipeline.ExampleTransform(("image", "boxes"), resize="min_max", min_size=30,
                                      max_size=40, size_divisible=16)
    assert small(ex, 0)["image"].shape == (48, 48, 3)  # ceil(40 / 16) * 16
    fixed = pipeline.ExampleTransform(("image", "boxes"), resize="min_max", min_size=30,
                                      max_size=40, pad_size=50)
    assert fixed(ex, 0)["image"].shape == (50, 50, 3)
