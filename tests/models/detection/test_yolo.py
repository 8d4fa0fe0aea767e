"""YOLOv3: the lecture's 13x13x5 head, the three-scale shapes, Darknet-53's size, decoding and
postprocess against numpy + torchvision's batched_nms, the loss against a float64 loop written from
its definition, the ignore threshold pinned at IoU 0.5, and training on awkward targets."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torchvision

from jaxvision.losses.yolo import decode_yolo, yolo_loss
from jaxvision.models import get_model
from jaxvision.models.darknet import darknet53
from jaxvision.models.yolo import YOLOv3
from tests import torchvision_ops

torchvision_ops.register()


def _shapes(model, size):
    x = jnp.zeros((2, size, size, 3))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
    return jax.eval_shape(lambda v: model.apply(v, x), variables)


def test_lecture_single_grid_head():
    out = _shapes(get_model("yolov3", strides=(32,), anchors_per_cell=5), 416)
    (raw,) = out["raw"]
    assert raw.shape == (2, 13, 13, 5, 5 + 80)
    assert raw.shape[1] * raw.shape[2] == 169 and 169 * 5 == 845  # cells x boxes per cell
    assert out["boxes"].shape == (2, 100, 4) and out["labels"].dtype == jnp.int32


def test_three_scales_at_416():
    out = _shapes(get_model("yolov3", num_classes=81), 416)
    assert [r.shape for r in out["raw"]] == [(2, 13, 13, 3, 85), (2, 26, 26, 3, 85),
                                             (2, 52, 52, 3, 85)]
    with pytest.raises(ValueError, match="strides"):
        _shapes(get_model("yolov3", strides=(16, 32)), 64)
    with pytest.raises(ValueError, match="anchors"):
        _shapes(get_model("yolov3", strides=(32, 16), anchors_per_cell=2), 64)


def _darknet53_count_from_table1():
    """Parameters of the paper's Table 1 network: conv k*k*cin*cout + BN (gamma, beta) per conv,
    and the 1000-way fully connected layer with bias."""
    def conv(k, cin, cout):
        return k * k * cin * cout + 2 * cout
    total, c = conv(3, 3, 32), 32
    for blocks, out in zip((1, 2, 8, 8, 4), (64, 128, 256, 512, 1024), strict=True):
        total += conv(3, c, out)
        total += blocks * (conv(1, out, out // 2) + conv(3, out // 2, out))
        c = out
    return total + 1024 * 1000 + 1000


# YOLOv3-416 for COCO's 80 classes: trainable parameters (also tests/configs' reference)
YOLOV3_COCO_PARAMS = 61_949_149


def test_darknet53_and_yolov3_parameter_counts():
    # 41,609,928: also the published size of keras-hub's darknet_53_imagenet
    variables = jax.eval_shape(lambda: darknet53().init(
        jax.random.key(0), jnp.zeros((1, 256, 256, 3)), train=False))
    n = sum(np.prod(p.shape) for p in jax.tree.leaves(variables["params"]))
    assert n == _darknet53_count_from_table1() == 41_609_928
    # YOLOv3-416 for COCO's 80 classes: 61,949,149 trainable parameters and 52,608 BatchNorm
    # statistics (ultralytics' and the Keras ports' model summaries)
    variables = jax.eval_shape(lambda: get_model("yolov3").init(
        jax.random.key(0), jnp.zeros((1, 416, 416, 3))))
    count = lambda tree: sum(np.prod(p.shape) for p in jax.tree.leaves(tree))  # noqa: E731
    assert count(variables["params"]) == YOLOV3_COCO_PARAMS
    assert count(variables["batch_stats"]) == 52_608


def _np_decode(raw, stride, anchors):
    raw = raw.astype(np.float64)
    h, w = raw.shape[:2]
    sig = 1 / (1 + np.exp(-raw[..., :2]))
    cx = (sig[..., 0] + np.arange(w)[None, :, None]) * stride
    cy = (sig[..., 1] + np.arange(h)[:, None, None]) * stride
    bw = anchors[:, 0] * np.exp(raw[..., 2])
    bh = anchors[:, 1] * np.exp(raw[..., 3])
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)


def test_postprocess_equals_numpy_and_torchvision_batched_nms():
    rng = np.random.default_rng(0)
    model = YOLOv3(num_classes=4, strides=(32, 16), anchors_per_cell=2,
                   anchors=((20, 30), (40, 40), (90, 60), (60, 120)), score_thresh=0.3,
                   detections_per_img=60)
    raw = [rng.normal(size=(4, 4, 2, 8)).astype(np.float32),
           rng.normal(size=(8, 8, 2, 8)).astype(np.float32)]
    table = model.anchor_table()
    anchors = [table[32], table[16]]
    np.testing.assert_allclose(np.asarray(anchors[0]), [[90, 60], [60, 120]])
    out = jax.jit(lambda r, a: model.apply({}, r, a, (128, 128), method=YOLOv3.postprocess))(
        [jnp.asarray(r) for r in raw], [jnp.asarray(a) for a in anchors])
    boxes, scores = [], []
    for r, s, a in zip(raw, (32, 16), anchors, strict=True):
        boxes.append(np.clip(_np_decode(r, s, a).reshape(-1, 4), 0, 128))
        sig = 1 / (1 + np.exp(-r.astype(np.float64)))
        scores.append((sig[..., 4:5] * sig[..., 5:]).reshape(-1, 3))
    boxes, scores = np.concatenate(boxes), np.concatenate(scores)
    box_i, cls_i = np.nonzero(scores > 0.3)
    assert 60 < len(box_i) < 1000  # NMS and the detection cap both act; no top-k truncation
    b = torch.tensor(boxes[box_i], dtype=torch.float32)
    s = torch.tensor(scores[box_i, cls_i], dtype=torch.float32)
    keep = torchvision.ops.batched_nms(b, s, torch.tensor(cls_i), 0.45)[:60].numpy()
    assert len(keep) == 60 and bool(out["valid"].all())
    np.testing.assert_array_equal(np.asarray(out["labels"]), cls_i[keep] + 1)
    np.testing.assert_allclose(np.asarray(out["scores"]), s.numpy()[keep], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(out["boxes"]), boxes[box_i][keep], atol=1e-3)
    np.testing.assert_allclose(np.asarray(decode_yolo(jnp.asarray(raw[1]), 16, anchors[1])),
                               _np_decode(raw[1], 16, anchors[1]), rtol=1e-5, atol=1e-3)


@pytest.mark.slow
def test_score_threshold_is_strict():
    # zero logits: objectness 0.5 x class 0.5 = 0.25 exactly for every box and class
    model = YOLOv3(num_classes=2, strides=(32,), anchors_per_cell=1, anchors=((32, 32),))
    raw = [jnp.zeros((2, 2, 1, 6))]
    for thresh, expected in ((0.25, 0), (0.2499, 4)):  # four disjoint cells
        det = model.clone(score_thresh=thresh).apply(
            {}, raw, [jnp.array([[32.0, 32.0]])], (64, 64), method=YOLOv3.postprocess)
        assert int(det["valid"].sum()) == expected


def _bce(x, t):
    return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))


def _np_iou(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), -1)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], -1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def _np_yolo_loss(raw, strides, anchors, boxes, labels, valid, size, ignore=0.5):
    """float64 loop over images and ground-truth boxes, from the loss module's definition."""
    terms = dict(xy=0.0, wh=0.0, objectness=0.0, classification=0.0)
    all_a = np.concatenate(anchors).astype(np.float64)
    num_a = len(anchors[0])
    for b in range(len(boxes)):
        owner = [dict() for _ in strides]
        gts = [g for g in range(len(boxes[b])) if valid[b][g]]
        for g in gts:
            x1, y1, x2, y2 = boxes[b][g]
            w, h = x2 - x1, y2 - y1
            ious = [min(w, aw) * min(h, ah) / (w * h + aw * ah - min(w, aw) * min(h, ah))
                    for aw, ah in all_a]
            best = int(np.argmax(ious))
            k, a = divmod(best, num_a)
            gh, gw = raw[k].shape[1:3]
            i = min(int((y1 + y2) / 2 // strides[k]), gh - 1)
            j = min(int((x1 + x2) / 2 // strides[k]), gw - 1)
            owner[k][(i, j, a)] = g  # later boxes overwrite
        for k, s in enumerate(strides):
            r = raw[k][b].astype(np.float64)
            pos = np.zeros(r.shape[:3], bool)
            for (i, j, a), g in owner[k].items():
                x1, y1, x2, y2 = boxes[b][g]
                w, h = x2 - x1, y2 - y1
                scale = 2 - w * h / (size[0] * size[1])
                p = r[i, j, a]
                terms["xy"] += scale * (_bce(p[0], (x1 + x2) / 2 / s - j)
                                        + _bce(p[1], (y1 + y2) / 2 / s - i))
                terms["wh"] += scale * ((p[2] - np.log(w / anchors[k][a][0])) ** 2
                                        + (p[3] - np.log(h / anchors[k][a][1])) ** 2)
                onehot = np.eye(r.shape[-1] - 5)[labels[b][g] - 1]
                terms["classification"] += _bce(p[5:], onehot).sum()
                pos[i, j, a] = True
            pred = _np_decode(r, s, anchors[k]).reshape(-1, 4)
            best = (_np_iou(pred, np.asarray(boxes[b])[gts]).max(1) if gts
                    else np.zeros(len(pred)))
            ign = (best > ignore).reshape(pos.shape)
            obj = r[..., 4]
            terms["objectness"] += (_bce(obj, 1.0)[pos].sum()
                                    + _bce(obj, 0.0)[~pos & ~ign].sum())
    return {t: v / len(boxes) for t, v in terms.items()}


def test_loss_equals_float64_reference():
    rng = np.random.default_rng(1)
    strides, size = (32, 16, 8), (64, 96)
    anchors = [np.array([[40, 50], [60, 30], [64, 64]], np.float32),
               np.array([[12, 30], [20, 20], [30, 14]], np.float32),
               np.array([[3, 4], [6, 6], [10, 7]], np.float32)]
    raw = [rng.normal(size=(3, 64 // s, 96 // s, 3, 4 + 5)).astype(np.float32) * 0.5
           for s in strides]
    boxes = np.zeros((3, 6, 4), np.float32)
    labels = np.zeros((3, 6), np.int32)
    # image 0: boxes of every size, one smaller than a stride-8 cell, one ending on the border,
    # two identical (same cell and anchor: the later owns it); image 1: none; image 2: one
    boxes[0, :5] = [[5, 5, 50, 60], [30, 10, 45, 38], [70, 40, 73, 43], [20, 30, 96, 64],
                    [30, 10, 45, 38]]
    labels[0, :5] = [1, 2, 4, 3, 3]
    boxes[2, 0] = [40, 20, 60, 44]
    labels[2, 0] = 2
    valid = labels > 0
    ours = jax.jit(yolo_loss, static_argnums=(1, 6))(
        [jnp.asarray(r) for r in raw], strides, [jnp.asarray(a) for a in anchors],
        jnp.asarray(boxes), jnp.asarray(labels), jnp.asarray(valid), size)
    ref = _np_yolo_loss(raw, strides, anchors, boxes, labels, valid, size)
    for term in ref:
        assert ref[term] > 0
        np.testing.assert_allclose(float(ours[term]), ref[term], rtol=1e-4, err_msg=term)


@pytest.mark.parametrize("y2, ignored", [(16.0, False), (16.1, True)])
def test_ignore_threshold_is_strictly_above_half(y2, ignored):
    # anchor 0 at cell (0, 0) predicts [0, 0, 32, 32]; the box [0, 0, 32, y2] belongs to
    # anchor 1 (exact size); IoU(prediction, box) = y2 / 32: 0.5 is still a negative
    anchors = [jnp.array([[32.0, 32.0], [32.0, 16.0]])]
    raw = jnp.zeros((1, 2, 2, 2, 6))
    boxes = jnp.array([[[0.0, 0.0, 32.0, y2]]])

    def objectness(r):
        return yolo_loss([r], (32,), anchors, boxes, jnp.ones((1, 1), jnp.int32),
                         jnp.ones((1, 1), bool), (64, 64))["objectness"]

    grad = jax.jit(jax.grad(objectness))(raw)[0, 0, 0, 0, 4]
    assert (float(grad) == 0.0) == ignored
    if not ignored:
        np.testing.assert_allclose(float(grad), 0.5)  # d/dx BCE(x, 0) at 0 = sigmoid(0)


@pytest.mark.slow
def test_training_on_awkward_targets_is_finite_and_traced_once():
    model = get_model("yolov3", num_classes=3, width=0.125, depths=(0, 0, 0, 0, 1),
                      strides=(32,), anchors=[(4, 4), (16, 16), (48, 40)])
    x = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
    # an 'rbg' key: XLA compiles threefry initialisers of many small parameters slowly on CPU
    variables = jax.jit(model.init)(jax.random.key(1, impl="rbg"), x)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, boxes, labels, valid):
        def loss(p):
            out, _ = model.apply({"params": p, "batch_stats": variables["batch_stats"]}, x,
                                 train=True, targets={"boxes": boxes, "labels": labels,
                                                      "boxes_valid": valid},
                                 rngs={"dropout": jax.random.key(2), "sample": jax.random.key(3)},
                                 mutable=["batch_stats"])
            return sum(out["losses"].values()), out["losses"]
        return jax.grad(loss, has_aux=True)(params)

    cases = [
        np.zeros((2, 3, 4), np.float32),  # no boxes at all
        np.array([[[10, 10, 11, 10.5], [0, 0, 64, 64], [0, 0, 0, 0]]] * 2, np.float32),  # tiny
        np.array([[[63, 63, 64, 64], [5, 5, 5, 20], [30, 30, 40, 50]]] * 2, np.float32),
    ]
    for boxes in cases:
        labels = np.where(boxes[..., 2] > 0, 1, 0).astype(np.int32)
        grads, losses = step(variables["params"], boxes, labels, labels > 0)
        assert set(losses) == {"xy", "wh", "objectness", "classification"}
        assert all(np.isfinite(float(v)) for v in losses.values())
        assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
        if not labels.any():
            assert float(losses["xy"]) == float(losses["classification"]) == 0.0
