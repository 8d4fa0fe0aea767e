"""YOLOv3 (Redmon & Farhadi, 2018): Darknet-53 and one head per stride, in static shapes.

Neck/heads (the darknet yolov3.cfg layout), coarsest first: from the stride-32 map five convs
alternating 1x1 (c) and 3x3 (2c) with c = 512, then a 3x3 (2c) conv and a 1x1 conv with bias
giving A * (5 + C) channels; for the next stride the 5-conv output goes through a 1x1 conv
(c / 2), a 2x nearest upsample, a concatenation with the backbone map of that stride, and the same
head with c halved (256, then 128). Raw outputs are [B, H, W, A, 5 + C]: (tx, ty, tw, th,
objectness, C class logits) with C = num_classes - 1 (label 0 is background, as every jaxvision
detector: `yolov3()` defaults to num_classes=81, i.e. COCO's 80 classes).

Decoding: centre ((sigmoid(tx) + j) s, (sigmoid(ty) + i) s) for cell (i, j) at stride s, size
(a_w exp(tw), a_h exp(th)) for the cell's anchor a (tw, th clamped at log(1000 / 16) as the R-CNN
coder), score of class c = sigmoid(objectness) sigmoid(class c). Postprocess: the
`topk_candidates` best (box, class) pairs with score > score_thresh, class-wise NMS at nms_thresh
(`ops.batched_nms`), the best `detections_per_img`.

Anchors: `anchors` is len(strides) * anchors_per_cell (w, h) pixel pairs, sorted by area and
dealt out smallest to the finest stride (what `ops.kmeans_anchors` returns); default the paper's 9
COCO anchors at 416 (3 per cell at strides 32/16/8), or for one stride-32 grid with 5 boxes per
cell YOLOv2's 5 VOC anchors (in cells of 32 pixels), the lecture's 13x13x5 head.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from jaxvision.layers import check_images
from jaxvision.losses.yolo import decode_yolo, yolo_loss
from jaxvision.models.darknet import DEPTHS, Darknet53, DarknetConv, scaled
from jaxvision.models.detection.inputs import check_targets
from jaxvision.ops.boxes import clip_boxes
from jaxvision.ops.nms import batched_nms

YOLOV3_ANCHORS = ((10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90),
                  (156, 198), (373, 326))
YOLOV2_VOC_ANCHORS = tuple((32 * w, 32 * h) for w, h in (
    (1.3221, 1.73145), (3.19275, 4.00944), (5.05587, 8.09892), (9.47112, 4.84053),
    (11.2364, 10.0071)))
_NECK = {32: 512, 16: 256, 8: 128}


def anchors_by_stride(anchors, strides, anchors_per_cell):
    """Deals `anchors` ((w, h) pixels, len(strides) * anchors_per_cell) out per stride: sorted by
    area, the smallest to the finest stride. Returns {stride: np [A, 2] float32}."""
    if anchors is None:
        if len(strides) * anchors_per_cell == 9:
            anchors = YOLOV3_ANCHORS
        elif tuple(strides) == (32,) and anchors_per_cell == 5:
            anchors = YOLOV2_VOC_ANCHORS
        else:
            raise ValueError(f"yolov3 anchors: expected {len(strides) * anchors_per_cell} (w, h) "
                             f"pairs for strides {strides} x {anchors_per_cell}, got None (no "
                             "default; use ops.kmeans_anchors)")
    a = np.asarray(anchors, np.float32)
    if a.shape != (len(strides) * anchors_per_cell, 2) or (a <= 0).any():
        raise ValueError(f"yolov3 anchors: expected {len(strides) * anchors_per_cell} positive "
                         f"(w, h) pairs, got shape {a.shape}")
    a = a[np.argsort(a[:, 0] * a[:, 1], kind="stable")]
    fine_first = sorted(strides)
    return {s: a[i * anchors_per_cell:(i + 1) * anchors_per_cell]
            for i, s in enumerate(fine_first)}


class YOLOv3(nn.Module):
    """`__call__(images [B, H, W, 3], train=False, targets=None)`; H, W multiples of max(strides).

    Inference: {'boxes' [B, D, 4] xyxy pixels clipped, 'scores' [B, D], 'labels' [B, D] int32
    (1..K-1), 'valid' [B, D] bool, 'raw': [one [B, H/s, W/s, A, 5 + K - 1] per stride, in the
    order of `strides`]}, D = detections_per_img, descending score, padding valid=False.
    Training: targets {'boxes' [B, N, 4] xyxy pixels, 'labels' [B, N] int, 'boxes_valid'
    [B, N] bool} -> {'losses': {'xy', 'wh', 'objectness', 'classification'}, 'raw'}
    (jaxvision.losses.yolo). BatchNorm statistics live in `batch_stats` (mutable when training).
    """

    num_classes: int = 81
    strides: tuple[int, ...] = (32, 16, 8)
    anchors_per_cell: int = 3
    anchors: Any = None
    width: float = 1.0
    depths: tuple[int, ...] = DEPTHS
    score_thresh: float = 0.005
    nms_thresh: float = 0.45
    detections_per_img: int = 100
    topk_candidates: int = 1000
    ignore_thresh: float = 0.5
    darknet_input: bool = False
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32
    axis_name: str | None = None

    def anchor_table(self):
        return anchors_by_stride(self.anchors, self.strides, self.anchors_per_cell)

    @nn.compact
    def __call__(self, images, train: bool = False, targets=None):
        strides = tuple(self.strides)
        if not strides or sorted(strides, reverse=True) != list(strides) or any(
                s not in _NECK for s in strides) or strides[0] != 32 or len(set(strides)) != len(
                strides):
            raise ValueError(f"yolov3 strides: expected a prefix of (32, 16, 8), got {strides}")
        if self.num_classes < 2:
            raise ValueError(f"yolov3 num_classes: expected >= 2 (incl. background), got "
                             f"{self.num_classes}")
        check_images(images, "yolov3", channels=3, min_size=32)
        h, w = images.shape[1:3]
        if h % 32 or w % 32:
            raise ValueError(f"yolov3 input height/width: expected multiples of 32, got {(h, w)}")
        table = self.anchor_table()
        kw = dict(dtype=self.dtype, axis_name=self.axis_name, bn_epsilon=self.bn_epsilon)
        if self.darknet_input:  # ImageNet-normalised -> RGB in [0, 1]
            images = (images * jnp.asarray(IMAGENET_STD / 255)
                      + jnp.asarray(IMAGENET_MEAN / 255))
        _, feats = Darknet53(num_classes=None, width=self.width, depths=self.depths,
                             name="backbone", **kw)(images, train)
        a, c_out = self.anchors_per_cell, self.num_classes - 1 + 5
        raw, route = [], None
        for s in strides:
            c = scaled(_NECK[s], self.width)
            x = feats[f"stride{s}"]
            if route is not None:
                r = DarknetConv(c, 1, name=f"route{s}", **kw)(route, train)
                r = jnp.repeat(jnp.repeat(r, 2, axis=1), 2, axis=2)
                x = jnp.concatenate([r, x], axis=-1)
            for i in range(5):
                x = DarknetConv(c if i % 2 == 0 else 2 * c, 1 if i % 2 == 0 else 3,
                                name=f"neck{s}_{i + 1}", **kw)(x, train)
            route = x
            y = DarknetConv(2 * c, 3, name=f"head{s}_conv", **kw)(x, train)
            y = nn.Conv(a * c_out, (1, 1), dtype=self.dtype, name=f"head{s}_out")(y)
            y = y.astype(jnp.promote_types(self.dtype, jnp.float32))  # float64 stays
            raw.append(y.reshape(y.shape[:3] + (a, c_out)))
        out = {"raw": raw}
        anchors = [jnp.asarray(table[s]) for s in strides]
        if train:
            t = check_targets(targets, images.shape[0], "yolov3")
            boxes, labels, valid = t["boxes"], t["labels"], t["boxes_valid"]
            out["losses"] = yolo_loss(raw, strides, anchors, boxes, labels, valid,
                                      image_size=(h, w), ignore_thresh=self.ignore_thresh)
            return out
        if self.is_initializing():  # parameters only: skip the postprocess (and its NMS)
            return out
        out.update(jax.vmap(lambda *r: self.postprocess(r, anchors, (h, w)))(*raw))
        return out

    def postprocess(self, raw, anchors, image_size):
        """One image: raw per stride [H, W, A, 5 + C] -> {'boxes', 'scores', 'labels', 'valid'}."""
        boxes, obj, cls = [], [], []
        for r, s, a in zip(raw, self.strides, anchors, strict=True):
            boxes.append(decode_yolo(r, s, a).reshape(-1, 4))
            obj.append(r[..., 4].reshape(-1))
            cls.append(r[..., 5:].reshape(-1, r.shape[-1] - 5))
        boxes = clip_boxes(jnp.concatenate(boxes), image_size)
        scores = (jax.nn.sigmoid(jnp.concatenate(obj))[:, None]
                  * jax.nn.sigmoid(jnp.concatenate(cls)))  # [N, C]
        n, c = scores.shape
        flat = jnp.where(scores > self.score_thresh, scores, -jnp.inf).reshape(-1)
        k = min(self.topk_candidates, flat.shape[0])
        top, idx = jax.lax.top_k(flat, k)
        box_idx, cls_idx = idx // c, idx % c
        cand = boxes[box_idx]
        d = self.detections_per_img
        keep, valid = batched_nms(cand, top, cls_idx, self.nms_thresh, d)
        return {"boxes": jnp.where(valid[:, None], cand[keep], 0.0),
                "scores": jnp.where(valid, top[keep], 0.0),
                "labels": jnp.where(valid, cls_idx[keep] + 1, 0).astype(jnp.int32),
                "valid": valid}


def yolov3(**kwargs) -> YOLOv3:
    """YOLOv3. kwargs: num_classes=81 (incl. background), strides=(32, 16, 8),
    anchors_per_cell=3, anchors=None, width=1.0, depths, score_thresh=0.005, nms_thresh=0.45,
    detections_per_img=100, topk_candidates=1000, ignore_thresh=0.5, darknet_input=False,
    bn_epsilon=1e-5, dtype, axis_name."""
    return YOLOv3(**kwargs)
