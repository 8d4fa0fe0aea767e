import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torchvision

from jaxvision.ops import box_area, box_convert, box_iou, clip_boxes, decode_boxes, encode_boxes
from tests.ops.reference import iou_ref


def _random_boxes(rng, n, size=50.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(0, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh", "xyxy"])
def test_box_convert_roundtrip_and_definition(fmt):
    b = _random_boxes(np.random.default_rng(0), 7)
    x1, y1, x2, y2 = b.astype(np.float64).T
    want = {"xyxy": b, "xywh": np.stack([x1, y1, x2 - x1, y2 - y1], 1),
            "cxcywh": np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)}[fmt]
    got = box_convert(b, "xyxy", fmt)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(np.asarray(box_convert(got, fmt, "xyxy")), b, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(box_convert(b, "xyxy", fmt)),
        torchvision.ops.box_convert(torch.tensor(b), "xyxy", fmt).numpy(), atol=1e-5)


def test_box_iou_matches_reference_and_torchvision():
    rng = np.random.default_rng(1)
    a, b = _random_boxes(rng, 13), _random_boxes(rng, 9)
    got = np.asarray(box_iou(a, b))
    np.testing.assert_allclose(got, iou_ref(a, b), rtol=1e-5, atol=1e-6)
    tv = torchvision.ops.box_iou(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(got, tv, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_box_iou_degenerate_and_batched():
    a = np.array([[0, 0, 0, 0], [1, 1, 1, 5], [0, 0, 2, 2], [3, 3, 1, 1]], np.float32)
    got = np.asarray(box_iou(a, a))
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, iou_ref(a, a), atol=1e-7)
    rng = np.random.default_rng(2)
    ba = np.stack([_random_boxes(rng, 5) for _ in range(3)])
    bb = np.stack([_random_boxes(rng, 4) for _ in range(3)])
    got = box_iou(ba, bb)
    chex.assert_shape(got, (3, 5, 4))
    for i in range(3):
        np.testing.assert_allclose(np.asarray(got[i]), iou_ref(ba[i], bb[i]), atol=1e-6)


def test_area_and_clip():
    b = np.array([[-5, 2, 30, 40], [3, 3, 1, 8]], np.float32)
    np.testing.assert_allclose(np.asarray(box_area(b)), [35 * 38, 0])
    np.testing.assert_allclose(np.asarray(clip_boxes(b, (20, 25))), [[0, 2, 25, 20], [3, 3, 1, 8]])


def test_box_coder_matches_definition_and_roundtrips():
    rng = np.random.default_rng(3)
    anchors = _random_boxes(rng, 11) + np.array([0, 0, 1, 1], np.float32)
    gt = _random_boxes(rng, 11) + np.array([0, 0, 1, 1], np.float32)
    w = (10.0, 10.0, 5.0, 5.0)
    t = np.asarray(encode_boxes(gt, anchors, w))
    a, g = anchors.astype(np.float64), gt.astype(np.float64)
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    want = np.stack([10 * ((g[:, 0] + gw / 2) - (a[:, 0] + aw / 2)) / aw,
                     10 * ((g[:, 1] + gh / 2) - (a[:, 1] + ah / 2)) / ah,
                     5 * np.log(gw / aw), 5 * np.log(gh / ah)], 1)
    np.testing.assert_allclose(t, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(decode_boxes(t, anchors, w)), gt, rtol=1e-4, atol=1e-3)
    # dw is clamped at log(1000/16) before the exp
    big = decode_boxes(np.array([[0, 0, 100.0, 0]]), np.array([[0, 0, 10.0, 10]]))
    np.testing.assert_allclose(float(big[0, 2] - big[0, 0]), 10 * 1000 / 16, rtol=1e-5)


def test_box_iou_jit_no_retrace():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(a, b):
        return box_iou(a, b)

    rng = np.random.default_rng(0)
    for _ in range(3):
        f(_random_boxes(rng, 5), _random_boxes(rng, 6))


def test_errors_name_the_field():
    with pytest.raises(ValueError, match="in_fmt"):
        box_convert(jnp.zeros((2, 4)), "yxyx", "xyxy")
    with pytest.raises(ValueError, match="boxes1"):
        box_iou(jnp.zeros((2, 3)), jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="weights"):
        encode_boxes(jnp.ones((1, 4)), jnp.ones((1, 4)), (1, 1, 1))
