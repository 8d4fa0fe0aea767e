"""SSD matching and loss against torchvision's SSDMatcher and SSD.compute_loss (small synthetic
inputs), the IoU == 0.5 boundary, padding, images without boxes and the static-shape contract."""

import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.ssd import SSD

from jaxvision.losses.ssd import ssd_loss, ssd_match


def _random_boxes(rng, n, size=100.0):
    xy = rng.uniform(0, size * 0.7, (n, 2))
    wh = rng.uniform(size * 0.05, size * 0.4, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def _torch_match(gt, anchors):
    if len(gt) == 0:
        return np.full(len(anchors), -1)
    iou = torchvision_box_iou(torch.tensor(gt), torch.tensor(anchors))
    return det_utils.SSDMatcher(0.5)(iou).numpy()


def torchvision_box_iou(a, b):
    from torchvision.ops import box_iou
    return box_iou(a, b)


def test_match_equals_torchvision_with_padding():
    rng = np.random.default_rng(0)
    anchors = _random_boxes(rng, 300)
    gt = _random_boxes(rng, 7)
    ref = _torch_match(gt, anchors)
    padded = np.concatenate([gt, np.array([[0, 0, 50, 50], [0, 0, 0, 0]], np.float32)])
    valid = np.array([True] * 7 + [False, False])
    ours = np.asarray(ssd_match(jnp.asarray(anchors), jnp.asarray(padded), jnp.asarray(valid)))
    np.testing.assert_array_equal(ours, ref)
    assert (ref >= 0).sum() > 7  # threshold matches besides the forced ones


def test_match_threshold_boundary_and_forced_matches():
    # anchor 0 has IoU exactly 0.5 with gt 0 (kept: >=), anchor 1 is gt 0's best (forced);
    # anchor 2 has IoU 0.49 with gt 1 but is its best anchor (forced, like torchvision);
    # anchor 3 IoU 0.4 with gt 0 only (background)
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 5.5], [50, 50, 60, 60], [0, 0, 10, 2]],
                       np.float32)
    gt = np.array([[0, 0, 10, 5], [50, 50, 60, 54.9]], np.float32)
    ours = np.asarray(ssd_match(jnp.asarray(anchors), jnp.asarray(gt), jnp.ones(2, bool)))
    np.testing.assert_array_equal(ours, [0, 0, 1, -1])
    np.testing.assert_array_equal(ours, _torch_match(gt, anchors))
    # just below 0.5: background
    gt2 = np.array([[0, 0, 10, 4.99]], np.float32)
    ours = np.asarray(ssd_match(jnp.asarray(anchors[:2]), jnp.asarray(gt2), jnp.ones(1, bool)))
    np.testing.assert_array_equal(ours, [-1, 0])
    np.testing.assert_array_equal(ours, _torch_match(gt2, anchors[:2]))


def _torch_loss(logits, deltas, anchors, targets, ratio=3.0):
    fake = types.SimpleNamespace(box_coder=det_utils.BoxCoder((10.0, 10.0, 5.0, 5.0)),
                                 neg_to_pos_ratio=ratio)
    matched = [torch.as_tensor(_torch_match(t["boxes"], anchors)) for t in targets]
    tt = [{"boxes": torch.tensor(t["boxes"]).reshape(-1, 4),
           "labels": torch.tensor(t["labels"], dtype=torch.int64)} for t in targets]
    a = torch.tensor(anchors)
    out = SSD.compute_loss(fake, tt, {"cls_logits": torch.tensor(logits),
                                      "bbox_regression": torch.tensor(deltas)},
                           [a] * len(targets), matched)
    return {k: float(v) for k, v in out.items()}


def _pad(targets, n):
    boxes = np.zeros((len(targets), n, 4), np.float32)
    labels = np.zeros((len(targets), n), np.int32)
    for i, t in enumerate(targets):
        boxes[i, :len(t["labels"])] = t["boxes"]
        labels[i, :len(t["labels"])] = t["labels"]
    return jnp.asarray(boxes), jnp.asarray(labels), jnp.asarray(labels > 0)


@pytest.mark.parametrize("num_anchors", [400, 12])
def test_loss_equals_torchvision(num_anchors):
    # 12 anchors: in image 2, 3 x 6 positives exceeds the 6 negatives, so positives enter the
    # mined set (torchvision counts them twice; so do we)
    rng = np.random.default_rng(num_anchors)
    anchors = _random_boxes(rng, num_anchors)
    k = 4
    targets = [{"boxes": _random_boxes(rng, 5), "labels": rng.integers(1, k, 5)},
               {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, int)},
               {"boxes": anchors[:6] + 1.0, "labels": np.array([3, 1, 2, 1, 1, 2])}]
    logits = rng.normal(size=(3, num_anchors, k)).astype(np.float32) * 2
    deltas = rng.normal(size=(3, num_anchors, 4)).astype(np.float32)
    ref = _torch_loss(logits, deltas, anchors, targets)
    boxes, labels, valid = _pad(targets, 7)
    ours = jax.jit(ssd_loss)(jnp.asarray(logits), jnp.asarray(deltas), jnp.asarray(anchors),
                             boxes, labels, valid)
    assert ref["classification"] > 0 and ref["bbox_regression"] > 0
    for term in ("classification", "bbox_regression"):
        np.testing.assert_allclose(float(ours[term]), ref[term], rtol=1e-5)


def test_no_boxes_gives_zero_finite_loss_and_gradient():
    rng = np.random.default_rng(3)
    anchors = jnp.asarray(_random_boxes(rng, 50))
    logits = jnp.asarray(rng.normal(size=(2, 50, 3)), jnp.float32)
    deltas = jnp.asarray(rng.normal(size=(2, 50, 4)), jnp.float32)
    boxes = jnp.zeros((2, 3, 4))
    labels = jnp.zeros((2, 3), jnp.int32)

    def total(lg, dl):
        out = ssd_loss(lg, dl, anchors, boxes, labels, labels > 0)
        return out["classification"] + out["bbox_regression"]

    value, grads = jax.jit(jax.value_and_grad(total, argnums=(0, 1)))(logits, deltas)
    assert float(value) == 0.0  # no positives: no mined negatives either (torchvision)
    assert all(bool(jnp.isfinite(g).all()) for g in grads)
    # a degenerate (zero-width) "valid" box is ignored instead of giving log(0)
    bad = boxes.at[0, 0].set(jnp.array([10.0, 10.0, 10.0, 30.0]))
    out = jax.jit(ssd_loss)(logits, deltas, anchors, bad, labels.at[0, 0].set(1),
                            jnp.ones((2, 3), bool))
    assert all(np.isfinite(float(v)) for v in out.values())


def test_loss_is_traced_once_for_new_values():
    rng = np.random.default_rng(4)
    anchors = jnp.asarray(_random_boxes(rng, 60))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(lg, dl, b, lab):
        return ssd_loss(lg, dl, anchors, b, lab, lab > 0)

    for seed in range(3):
        r = np.random.default_rng(seed)
        b = jnp.asarray(np.stack([_random_boxes(r, 4)] * 2))
        lab = jnp.asarray(r.integers(0, 3, (2, 4)), jnp.int32)
        f(jnp.asarray(r.normal(size=(2, 60, 3)), jnp.float32),
          jnp.asarray(r.normal(size=(2, 60, 4)), jnp.float32), b, lab)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="gt_labels"):
        ssd_loss(jnp.zeros((1, 5, 3)), jnp.zeros((1, 5, 4)), jnp.zeros((5, 4)),
                 jnp.zeros((1, 2, 4)), jnp.zeros((1, 3), jnp.int32), jnp.zeros((1, 3), bool))
