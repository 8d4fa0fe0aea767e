"""SSD300 (Liu et al., 2016) with torchvision's `ssd300_vgg16` architecture, in static shapes.

Backbone: VGG-16 conv1_1..conv4_3 (pool3 in ceil mode, so 300 -> 38), conv4_3 L2-normalised per
position and rescaled by a learned per-channel `scale_weight` (init 20); then pool4, conv5_1..5_3,
a 3x3/1 pad 1 pool5, fc6 as a 3x3 conv with dilation 6 (1024) and fc7 a 1x1 conv (1024); extra
layers conv8 (1x1 256, 3x3/2 512), conv9 (1x1 128, 3x3/2 256), conv10 and conv11 (1x1 128, 3x3
valid 256). Six maps 38/19/10/5/3/1 with 4, 6, 6, 6, 4, 4 default boxes per position: 8,732.
Heads: per map a 3x3 conv giving A*K class logits and one giving A*4 deltas, flattened
position-major then box (torchvision's order). Layer names: conv{b}_{i}, fc6, fc7,
conv{8..11}_{1,2}, cls{k}, reg{k} and the parameter `scale_weight`;
`jaxvision.weights.from_torchvision('ssd300_vgg16', sd)` maps torchvision's keys onto them.

Inference postprocess = torchvision's `SSD.postprocess_detections`: softmax, decode with weights
(10, 10, 5, 5), clip to the image; per class 1..K-1 the scores > score_thresh, at most
topk_candidates of them; class-wise NMS at nms_thresh; the best detections_per_img overall.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from jaxvision.layers import check_images
from jaxvision.losses.ssd import SSD_BOX_WEIGHTS, ssd_loss
from jaxvision.models.backbones import vgg_frozen
from jaxvision.models.detection.inputs import check_targets
from jaxvision.ops.anchors import ssd_default_boxes
from jaxvision.ops.boxes import clip_boxes, decode_boxes
from jaxvision.ops.nms import nms

# torchvision's DefaultBoxGenerator for ssd300_vgg16
ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
SCALES = (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)
STEPS = (8, 16, 32, 64, 100, 300)

_vgg_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # torchvision VGG convs
_xavier = nn.initializers.xavier_uniform()  # torchvision's SSD extras, fc6/fc7 and heads


def _conv(features, kernel, name, *, stride=1, padding=0, dilation=1, init=_xavier, dtype):
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                   padding=((padding, padding), (padding, padding)),
                   kernel_dilation=(dilation, dilation), kernel_init=init, dtype=dtype, name=name)


def _ceil_pool(x):
    """2x2/2 max pool in torch's ceil_mode (an odd side keeps its last row/column)."""
    ph, pw = x.shape[1] % 2, x.shape[2] % 2
    return nn.max_pool(x, (2, 2), strides=(2, 2), padding=((0, ph), (0, pw)))


class SSD300(nn.Module):
    """`__call__(images [B, H, W, 3], train=False, targets=None)`.

    Inference: {'boxes' [B, D, 4] xyxy pixels clipped, 'scores' [B, D], 'labels' [B, D] int32
    (1..K-1), 'valid' [B, D] bool, 'cls_logits' [B, A, K], 'bbox_regression' [B, A, 4]} with
    D = detections_per_img and detections in torchvision's order (descending score), padding
    slots valid=False with score 0, label 0 and a zero box.
    Training (`train=True`): targets {'boxes' [B, N, 4] xyxy pixels, 'labels' [B, N] int,
    'boxes_valid' [B, N] bool} -> {'losses': {'bbox_regression', 'classification'}, plus the
    head outputs}. No BatchNorm or dropout: the rngs are accepted and unused.
    """

    num_classes: int = 91
    score_thresh: float = 0.01
    nms_thresh: float = 0.45
    detections_per_img: int = 200
    topk_candidates: int = 400
    iou_thresh: float = 0.5
    positive_fraction: float = 0.25
    width: float = 1.0
    scales: tuple[float, ...] = SCALES
    trainable_layers: int = 5
    dtype: Any = jnp.float32
    axis_name: str | None = None  # no BatchNorm: accepted for the trainer's uniform call

    def trainable_mask(self, params):
        """`params`' tree of bools: False for the VGG conv blocks `trainable_layers` freezes
        (torchvision's `requires_grad=False`), which the optimiser then leaves unchanged."""
        flat = traverse_util.flatten_dict(params)
        return traverse_util.unflatten_dict(
            {p: not vgg_frozen(p[0], self.trainable_layers) for p in flat})

    def default_boxes(self, image_size, feature_sizes=None):
        """Default boxes [A, 4] xyxy pixels for an (H, W) input (8,732 at 300x300)."""
        if feature_sizes is None:
            feature_sizes = feature_map_sizes(image_size)
        return ssd_default_boxes(feature_sizes, image_size, ASPECT_RATIOS, scales=self.scales,
                                 steps=STEPS, clip=True, dtype=self._out_dtype)

    @property
    def _out_dtype(self):
        """Heads, boxes and scores: float32, or float64 when dtype is float64."""
        return jnp.promote_types(self.dtype, jnp.float32)

    def _channels(self, c: int) -> int:
        return max(8, int(round(c * self.width)))

    def features(self, x):
        """The six head inputs, [B, h_k, w_k, C_k] with C = 512, 1024, 512, 256, 256, 256
        (times `width`)."""
        d, c = self.dtype, self._channels
        frozen_blocks = 5 - self.trainable_layers
        if not 0 <= frozen_blocks <= 5:
            raise ValueError(f"trainable_layers: expected 0..5, got {self.trainable_layers}")
        x = jnp.asarray(x, d)
        for b, (n, width) in enumerate(zip((2, 2, 3, 3), (64, 128, 256, 512), strict=True)):
            width = c(width)
            if b:
                x = _ceil_pool(x) if b == 3 else nn.max_pool(x, (2, 2), strides=(2, 2))
            for i in range(n):
                x = nn.relu(_conv(width, 3, f"conv{b + 1}_{i + 1}", padding=1, init=_vgg_init,
                                  dtype=d)(x))
            if b + 1 == frozen_blocks:  # no gradient reaches the frozen blocks
                x = jax.lax.stop_gradient(x)
        scale = self.param("scale_weight", nn.initializers.constant(20.0), (c(512),),
                           jnp.float32)
        xf = x.astype(self._out_dtype)
        norm = jnp.sqrt(jnp.sum(xf * xf, axis=-1, keepdims=True))
        outs = [(xf / jnp.maximum(norm, 1e-12) * scale.astype(xf.dtype)).astype(d)]
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        for i in range(3):
            x = nn.relu(_conv(c(512), 3, f"conv5_{i + 1}", padding=1, init=_vgg_init,
                              dtype=d)(x))
        if frozen_blocks == 5:
            x = jax.lax.stop_gradient(x)
        x = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
        x = nn.relu(_conv(c(1024), 3, "fc6", padding=6, dilation=6, dtype=d)(x))
        x = nn.relu(_conv(c(1024), 1, "fc7", dtype=d)(x))
        outs.append(x)
        for k, (mid, out, stride, pad) in enumerate(
                ((256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0), (128, 256, 1, 0))):
            x = nn.relu(_conv(c(mid), 1, f"conv{k + 8}_1", dtype=d)(x))
            x = nn.relu(_conv(c(out), 3, f"conv{k + 8}_2", stride=stride, padding=pad, dtype=d)(x))
            outs.append(x)
        return outs

    def head(self, feats):
        """Heads: (cls_logits [B, A, K], bbox_regression [B, A, 4]), float32 (float64 for
        dtype float64)."""
        logits, deltas = [], []
        for k, (f, ratios) in enumerate(zip(feats, ASPECT_RATIOS, strict=True)):
            a = 2 + 2 * len(ratios)
            b = f.shape[0]
            c = _conv(a * self.num_classes, 3, f"cls{k}", padding=1, dtype=self.dtype)(f)
            r = _conv(a * 4, 3, f"reg{k}", padding=1, dtype=self.dtype)(f)
            logits.append(c.reshape(b, -1, self.num_classes))
            deltas.append(r.reshape(b, -1, 4))
        return (jnp.concatenate(logits, 1).astype(self._out_dtype),
                jnp.concatenate(deltas, 1).astype(self._out_dtype))

    @nn.compact
    def __call__(self, images, train: bool = False, targets=None):
        check_images(images, "ssd300", channels=3, min_size=_MIN_SIZE)
        feats = self.features(images)
        cls_logits, bbox_regression = self.head(feats)
        image_size = images.shape[1:3]
        anchors = self.default_boxes(image_size, [f.shape[1:3] for f in feats])
        out = {"cls_logits": cls_logits, "bbox_regression": bbox_regression}
        if train:
            t = check_targets(targets, images.shape[0], "ssd300")
            boxes, labels, valid = t["boxes"], t["labels"], t["boxes_valid"]
            ratio = (1.0 - self.positive_fraction) / self.positive_fraction
            out["losses"] = ssd_loss(cls_logits, bbox_regression, anchors, boxes, labels, valid,
                                     iou_thresh=self.iou_thresh, neg_to_pos_ratio=ratio)
            return out
        if self.is_initializing():  # parameters only: skip the postprocess (and its NMS)
            return out
        det = jax.vmap(lambda c, r: self.postprocess(c, r, anchors, image_size))(
            cls_logits, bbox_regression)
        out.update(det)
        return out

    def postprocess(self, cls_logits, bbox_regression, anchors, image_size):
        """One image: cls_logits [A, K], bbox_regression [A, 4], anchors [A, 4] ->
        {'boxes' [D, 4], 'scores' [D], 'labels' [D] int32, 'valid' [D] bool}."""
        num_a, k = cls_logits.shape
        scores = jax.nn.softmax(cls_logits, axis=-1)[:, 1:].T  # [K-1, A]
        boxes = clip_boxes(decode_boxes(bbox_regression, anchors, SSD_BOX_WEIGHTS), image_size)
        topk = min(self.topk_candidates, num_a)
        d = self.detections_per_img
        keep_per_class = min(topk, d)

        def per_class(s):
            s = jnp.where(s > self.score_thresh, s, -jnp.inf)
            top, idx = jax.lax.top_k(s, topk)
            kept, kept_valid = nms(boxes[idx], top, self.nms_thresh, keep_per_class)
            return top[kept], idx[kept], kept_valid

        top, idx, valid = jax.vmap(per_class)(scores)  # [K-1, keep]
        labels = jnp.broadcast_to(jnp.arange(1, k, dtype=jnp.int32)[:, None], top.shape)
        flat = jnp.where(valid, top, -jnp.inf).reshape(-1)
        n_out = min(d, flat.shape[0])
        best, order = jax.lax.top_k(flat, n_out)
        ok = best > -jnp.inf
        det_boxes = jnp.where(ok[:, None], boxes[idx.reshape(-1)[order]], 0.0)
        det = {"boxes": det_boxes, "scores": jnp.where(ok, best, 0.0),
               "labels": jnp.where(ok, labels.reshape(-1)[order], 0), "valid": ok}
        if n_out < d:
            det = {key: jnp.concatenate(
                [v, jnp.zeros((d - n_out,) + v.shape[1:], v.dtype)]) for key, v in det.items()}
        return det


# conv10_2 and conv11_2 are valid 3x3 convs: the input must leave 5x5 maps after conv9_2.
_MIN_SIZE = 268


def feature_map_sizes(image_size):
    """Sizes of the six SSD300 maps for an (H, W) input: 300 -> 38, 19, 10, 5, 3, 1."""
    out = []
    for s in image_size:
        s = math.ceil((s // 2 // 2) / 2)  # pool1, pool2, pool3 (ceil)
        sizes = [s]
        s = s // 2  # pool4 (pool5 keeps the size)
        sizes.append(s)
        for _ in range(2):
            s = (s - 1) // 2 + 1  # 3x3 stride 2 pad 1
            sizes.append(s)
        for _ in range(2):
            s = s - 2
            sizes.append(s)
        out.append(sizes)
    return list(zip(*out, strict=True))


def ssd300(**kwargs) -> SSD300:
    """SSD300 with torchvision's defaults: num_classes=91 (incl. background), score_thresh=0.01,
    nms_thresh=0.45, detections_per_img=200, topk_candidates=400, iou_thresh=0.5,
    positive_fraction=0.25 (3:1 hard negatives); width=1.0 scales every conv's channels
    (rounded, at least 8; torchvision's weights need 1.0), for small CPU runs; scales: the
    default boxes' 7 scales (DefaultBoxGenerator's; COCO's by default, the paper's VOC set is
    (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05)); trainable_layers=5 (0..5, torchvision's
    trainable_backbone_layers: only the last k VGG conv blocks train); dtype.
    Inputs must be at least 268x268 (the last map is then 1x1)."""
    return SSD300(**kwargs)
