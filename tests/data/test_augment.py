"""SSD and ImageNet augmentations: photometric ops against torchvision's functional ones, the
min-IoU crop's acceptance rule pinned with scripted draws, zoom-out placement, and
RandomResizedCrop / Resize + CenterCrop against torchvision on PIL images."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2 as tv
from torchvision.transforms.v2 import functional as tvf

from jaxvision.data import augment, pipeline, transforms


class Scripted:
    """A stand-in generator: `random(k)` returns the scripted values, `integers` the first
    option; every draw is recorded."""

    def __init__(self, randoms, integer=0):
        self.randoms, self.integer = list(randoms), integer

    def random(self, size=None):
        if size is None:
            return self.randoms.pop(0)
        return np.array([self.randoms.pop(0) for _ in range(size)])

    def integers(self, low, high=None):
        return self.integer


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((9, 11, 3)).astype(np.float32)


@pytest.mark.parametrize("name, factor", [("brightness", 1.1), ("brightness", 0.875),
                                          ("contrast", 0.5), ("contrast", 1.4),
                                          ("saturation", 0.6), ("saturation", 1.5),
                                          ("hue", 0.05), ("hue", -0.05), ("hue", 0.3)])
def test_photometric_ops_match_torchvision(image, name, factor):
    ours = getattr(augment, f"adjust_{name}")(image, factor)
    theirs = getattr(tvf, f"adjust_{name}")(torch.from_numpy(image).permute(2, 0, 1), factor)
    np.testing.assert_allclose(ours, theirs.permute(1, 2, 0).numpy(), atol=2e-6)


def test_photometric_distort_order_matches_torchvision(image):
    params = {"brightness": 1.05, "contrast": 1.3, "saturation": 0.7, "hue": 0.02,
              "contrast_before": False, "permutation": np.array([2, 0, 1])}
    x = torch.from_numpy(image).permute(2, 0, 1)
    x = tvf.adjust_hue(tvf.adjust_saturation(tvf.adjust_brightness(x, 1.05), 0.7), 0.02)
    x = tvf.adjust_contrast(x, 1.3)[[2, 0, 1]]
    ours = augment.photometric_distort(image * 255, params)
    np.testing.assert_allclose(ours / 255, x.permute(1, 2, 0).numpy(), atol=1e-5)


def _crop(boxes, options, randoms, **kw):
    return augment.min_iou_crop_params(Scripted(randoms), np.array(boxes, np.float32), 100, 100,
                                       options=options, **kw)


def test_min_iou_crop_accepts_iou_exactly_at_the_threshold():
    # min_scale = max_scale = 0.5: a 50x50 window; offset draws (0, 0): window (0, 0, 50, 50)
    fixed = dict(min_scale=0.5, max_scale=0.5, trials=1, max_rounds=1)
    top, left, h, w, keep = _crop([[0, 0, 50, 25]], (0.5,), [0, 0, 0, 0], **fixed)  # IoU 0.5
    assert (top, left, h, w) == (0, 0, 50, 50) and keep.tolist() == [True]
    assert _crop([[0, 0, 50, 24.5]], (0.5,), [0, 0, 0, 0], **fixed) is None  # IoU 0.49
    # an option of 1.0 means "no crop"
    assert _crop([[0, 0, 50, 25]], (1.0,), [], **fixed) is None


def test_min_iou_crop_needs_a_centre_strictly_inside():
    fixed = dict(min_scale=0.5, max_scale=0.5, trials=1, max_rounds=1)
    # centre x exactly on the window's right edge (50) is outside, as in SSD / torchvision
    assert _crop([[40, 10, 60, 20]], (0.0,), [0, 0, 0, 0], **fixed) is None
    *_, keep = _crop([[40, 10, 59.8, 20], [60, 60, 70, 70]], (0.0,), [0, 0, 0, 0], **fixed)
    assert keep.tolist() == [True, False]


def test_min_iou_crop_aspect_bounds_are_inclusive():
    # sides 0.25 and 0.5 of 100 -> 25 x 50: aspect w / h = 0.5 exactly, accepted at min 0.5
    kw = dict(min_scale=0.0, max_scale=1.0, trials=1, max_rounds=1)
    got = _crop([[0, 0, 20, 40]], (0.0,), [0.25, 0.5, 0, 0], **kw)
    assert got is not None and got[2:4] == (50, 25)
    assert _crop([[0, 0, 20, 40]], (0.0,), [0.24, 0.5, 0, 0], **kw) is None  # 24 / 50 < 0.5


def test_min_iou_crop_in_the_pipeline_keeps_centres_and_counts_drops():
    rng = np.random.default_rng(1)
    n, size = 6, 60
    x1, y1 = rng.uniform(0, 45, n), rng.uniform(0, 45, n)
    boxes = np.stack([x1, y1, x1 + 12, y1 + 12], -1).astype(np.float32)
    ex = {"image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "boxes": boxes,
          "labels": np.arange(n)}
    t = pipeline.ExampleTransform(("image", "boxes"), max_boxes=n, min_iou_crop=True, seed=2)
    cropped = 0
    for index in range(40):
        params = augment.min_iou_crop_params(np.random.default_rng([2, index, 4]), boxes,
                                             size, size)
        out = t(ex, index)
        if params is None:
            assert out["image"].shape[:2] == (size, size) and out["num_dropped_boxes"] == 0
            continue
        cropped += 1
        top, left, h, w, keep = params
        assert out["image"].shape[:2] == (h, w)
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        inside = (cx > left) & (cx < left + w) & (cy > top) & (cy < top + h)
        np.testing.assert_array_equal(keep, inside)
        assert out["num_dropped_boxes"] == n - inside.sum()
        np.testing.assert_array_equal(out["labels"][out["boxes_valid"]], np.nonzero(inside)[0] + 1)
        want = np.clip(boxes[inside] - [left, top, left, top], 0, [w, h, w, h])
        np.testing.assert_allclose(out["boxes"][out["boxes_valid"]], want, atol=1e-5)
    assert 5 < cropped < 40


def test_zoom_out_places_the_image_on_a_mean_canvas():
    ex = {"image": np.full((10, 20, 3), 200, np.uint8), "boxes": np.array([[1, 2, 5, 6]], float),
          "labels": np.zeros(1, int)}
    rng = Scripted([0.2, 0.5, 0.25, 0.5])  # apply (0.2 < 0.5), r = 1 + 0.5 * 3 = 2.5
    params = augment.zoom_out_params(rng, 10, 20, max_ratio=4.0)
    assert params == (25, 50, 7, 7)  # int(30 * 0.25), int(15 * 0.5)
    out = augment.zoom_out(ex, params)
    np.testing.assert_array_equal(out["boxes"], [[8, 9, 12, 13]])
    np.testing.assert_allclose(transforms.normalise(out["image"][0:1, 0:1]), 0, atol=1e-6)
    assert augment.zoom_out_params(Scripted([0.5]), 10, 20) is None  # p = 0.5: not applied


def test_random_resized_crop_fallback_and_draws():
    # impossible areas (scale > 1): the 10 tries fail, then the centred fallback
    assert augment.random_resized_crop_params(np.random.default_rng(0), 10, 1000,
                                              scale=(2, 2)) == (0, 493, 10, 13)  # w = 10 * 4/3
    assert augment.random_resized_crop_params(np.random.default_rng(0), 1000, 10,
                                              scale=(2, 2)) == (493, 0, 13, 10)  # h = 10 / (3/4)
    assert augment.random_resized_crop_params(np.random.default_rng(0), 30, 36,
                                              scale=(2, 2)) == (0, 0, 30, 36)
    rng = np.random.default_rng(5)
    for _ in range(50):
        top, left, h, w = augment.random_resized_crop_params(rng, 80, 120)
        assert 0 <= top <= 80 - h and 0 <= left <= 120 - w
        assert 0.08 * 9600 - 120 <= h * w <= 9600
        assert 3 / 4 - 0.1 <= w / h <= 4 / 3 + 0.1  # rounding of small sides


def test_imagenet_crops_match_torchvision_on_pil_images():
    array = np.random.default_rng(3).integers(0, 256, (75, 97, 3), dtype=np.uint8)
    pil = Image.fromarray(array)
    want = np.asarray(tv.Compose([tv.Resize(256), tv.CenterCrop(224)])(pil))
    np.testing.assert_array_equal(augment.imagenet_eval_crop(array, 224), want)
    top, left, h, w = augment.random_resized_crop_params(np.random.default_rng(9), 75, 97)
    got = augment.imagenet_train_crop(array, 32, np.random.default_rng(9))
    want = np.asarray(tvf.resized_crop(pil, top, left, h, w, [32, 32]))
    np.testing.assert_array_equal(got, want)
