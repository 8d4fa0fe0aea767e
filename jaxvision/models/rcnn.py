"""R-CNN (Girshick et al. 2014): selective-search regions, each warped to a fixed crop with 16
pixels of context, a CNN run once per region, per-class linear SVMs on its features, a
class-specific linear box regressor on pool5, and per-class NMS (IoU 0.3).

The paper trains in three stages on a fixed CNN: (1) fine-tune the ImageNet CNN as a
(K + 1)-way softmax classifier on warped proposals (IoU >= 0.5 with a ground-truth box:
that box's class, else background; mini-batches of 32 foreground and 96 background windows);
(2) on the fine-tuned CNN's features (fc7), one linear SVM per class: positives are the
ground-truth boxes only, negatives the regions with IoU < 0.3 with every box of the class,
trained with hard negative mining; (3) a ridge regression (lambda = 1000) from pool5 features
of proposals with IoU >= 0.6 to the (tx, ty, tw, th) of their best ground-truth box.

Here the three stages are one multitask loss of one train step, `{'finetune', 'svm',
'box_reg'}`: the CNN (conv layers, fc6, fc7, softmax `cls_score`) gets gradients only from
`finetune`; the SVMs and the regressor see the CNN's features through `stop_gradient`, so
they are the same convex problems as the paper's stages 2 and 3, solved by the optimiser on
the current features instead of on frozen ones. What differs from the paper:
- the SVMs chase features that move while the CNN is fine-tuned (for the paper's order, train
  with `loss_weights={'svm': 0, 'box_reg': 0}` first, then continue with the CNN's learning
  rate at zero);
- hard negatives are mined per batch (the `svm_hard_negatives` highest-scoring margin
  violators per class among the batch's regions) instead of from a cache over the data set;
  the SVM regulariser is `svm_l2 / 2 * |W|^2` added to the mean hinge, and the regressor's
  ridge term `box_reg_l2 * |W|^2` is added to the mean squared error (lambda per sample);
- the training regions of an image are its ground-truth boxes and its `P` proposals (padded,
  static shapes), or with `train_proposals=n` a random sample of n of its proposals, up to
  `finetune_fg_fraction` of them foreground (rng stream 'sample'; the paper's SGD windows):
  the CNN runs on these regions once, the fine-tuning loss uses a random 32 / 96 sample of
  them, the SVM and regressor losses use all;
- fc6/fc7 are evaluated a second time without dropout in training for the SVM features (the
  conv layers run once per region);
- `iscrowd` boxes are treated as ordinary ground truth.

Proposals are an input (`proposals` [B, P, 4] xyxy, `proposals_valid` [B, P]), computed
offline by selective search (`jaxvision.data.proposals.selective_search_batch`).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.losses.svm import svm_hinge_loss, svm_labels
from jaxvision.models.detection.inputs import check_proposals
from jaxvision.ops import batched_nms, box_iou, decode_boxes, encode_boxes, sample_balanced
from jaxvision.ops.matching import NEGATIVE, POSITIVE
from jaxvision.ops.warp import warp_regions

BACKBONES = ("alexnet", "vgg11", "vgg13", "vgg16", "vgg19")


class RCNN(nn.Module):
    """`__call__(images [B, H, W, 3], train, targets=None, proposals=None, proposals_valid=None,
    image_sizes=None)`.

    Eval: {'boxes' [B, D, 4] xyxy clipped to `image_sizes` (height, width; default the padded
    size), 'scores' [B, D] (the class's SVM score), 'labels' [B, D] int32 (1..K-1), 'valid'
    [B, D], 'proposals', 'proposals_valid'}, D = detections_per_img, sorted by score.
    Train (targets: 'boxes' [B, G, 4], 'labels' [B, G], 'boxes_valid' [B, G]; rngs 'dropout'
    and 'sample'): {'losses': {'finetune', 'svm', 'box_reg'}}.

    num_classes: K with background 0; backbone: 'alexnet' or 'vgg11'..'vgg19' (`backbone_widths`
    narrows VGG's 5 blocks); the CNN's pool5 output is flattened to the regressor's features,
    then fc6, fc7 (`fc_dim` wide, ReLU, dropout) give the SVMs' features (`svm_features`
    'fc7', as the paper, or 'pool5'); crop_size: the warped crop (227 in the paper);
    context_padding: p context pixels at crop size (16).
    """

    head_names = ("cls_score", "svm_kernel", "svm_bias", "bbox_reg_kernel", "bbox_reg_bias")

    num_classes: int = 21
    backbone: str = "alexnet"
    backbone_widths: tuple[int, ...] | None = None
    crop_size: Any = 227
    context_padding: int = 16
    fc_dim: int = 4096
    svm_features: str = "fc7"
    dropout_rate: float = 0.5
    detections_per_img: int = 100
    nms_thresh: float = 0.3
    score_thresh: float = -1.0
    fg_iou_thresh: float = 0.5
    train_proposals: int | None = None
    finetune_samples: int = 128
    finetune_fg_fraction: float = 0.25
    svm_neg_thresh: float = 0.3
    svm_hard_negatives: int = 64
    svm_positive_weight: float = 2.0
    svm_l2: float = 1e-4
    box_reg_iou_thresh: float = 0.6
    box_reg_l2: float = 1e-3
    dtype: Any = jnp.float32
    axis_name: str | None = None

    def _crop(self):
        c = self.crop_size
        return (int(c), int(c)) if isinstance(c, int) else tuple(int(v) for v in c)

    def _make_backbone(self):
        if self.backbone == "alexnet":
            if self.backbone_widths is not None:
                raise ValueError(f"backbone_widths: expected None for 'alexnet', got "
                                 f"{self.backbone_widths}")
            from jaxvision.models.alexnet import AlexNet

            return AlexNet(num_classes=None, dtype=self.dtype, name="backbone")
        if self.backbone in BACKBONES:
            from jaxvision.models.backbones import make_backbone

            return make_backbone(self.backbone, self.backbone_widths, False, self.dtype,
                                 self.axis_name)
        raise ValueError(f"backbone: expected one of {BACKBONES}, got {self.backbone!r}")

    def _fc(self, layers, pool5, deterministic):
        x = pool5
        for layer in layers:
            x = nn.Dropout(self.dropout_rate, deterministic=deterministic)(x)
            x = nn.relu(layer(x))
        return x.astype(jnp.float32)

    @nn.compact
    def __call__(self, images, train: bool, targets=None, proposals=None, proposals_valid=None,
                 image_sizes=None):
        if self.svm_features not in ("fc7", "pool5"):
            raise ValueError(f"svm_features: expected 'fc7' or 'pool5', got "
                             f"{self.svm_features!r}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes: expected >= 2 (background + 1), got "
                             f"{self.num_classes}")
        images = jnp.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images: expected [B, H, W, 3], got shape {images.shape}")
        b, h, w, _ = images.shape
        if proposals is None and targets is not None and "proposals" in targets:
            proposals, proposals_valid = targets["proposals"], targets.get("proposals_valid")
        proposals, proposals_valid = check_proposals(proposals, proposals_valid, b, "rcnn")
        if image_sizes is None:
            image_sizes = jnp.tile(jnp.array([[h, w]], jnp.float32), (b, 1))
        image_sizes = jnp.asarray(image_sizes, jnp.float32)

        if train:
            if targets is None:
                raise ValueError("targets: expected {'boxes', 'labels', 'boxes_valid'} in "
                                 "train mode, got None")
            gt_boxes = jnp.asarray(targets["boxes"], jnp.float32)
            gt_labels = jnp.asarray(targets["labels"], jnp.int32)
            gt_valid = jnp.asarray(targets.get("boxes_valid", gt_labels > 0), bool)
            if self.train_proposals is not None and self.train_proposals < proposals.shape[1]:
                keys = jax.random.split(self.make_rng("sample"), b)
                proposals, proposals_valid = jax.vmap(functools.partial(
                    sample_proposals, count=self.train_proposals,
                    fg_fraction=self.finetune_fg_fraction, fg_iou_thresh=self.fg_iou_thresh))(
                    keys, proposals, proposals_valid, gt_boxes, gt_valid)
            regions = jnp.concatenate([gt_boxes, proposals], axis=1)
            regions_valid = jnp.concatenate([gt_valid, proposals_valid], axis=1)
        else:
            regions, regions_valid = proposals, proposals_valid
        r = regions.shape[1]
        k = self.num_classes

        # the CNN, once per region: [B * R, crop, crop, 3] -> pool5 -> fc6 -> fc7
        crops = warp_regions(images, regions.reshape(-1, 4), jnp.repeat(jnp.arange(b), r),
                             self._crop(), self.context_padding)
        _, feats = self._make_backbone()(crops, train=train)
        pool5 = feats["pool5"].reshape(b * r, -1).astype(jnp.float32)
        fcs = [nn.Dense(self.fc_dim, dtype=self.dtype, name=n) for n in ("fc6", "fc7")]
        fc7 = self._fc(fcs, pool5, deterministic=not train)
        clean = self._fc(fcs, pool5, deterministic=True) if train else fc7
        cls_logits = nn.Dense(k, dtype=self.dtype, name="cls_score")(fc7).astype(jnp.float32)

        svm_in = jax.lax.stop_gradient(clean if self.svm_features == "fc7" else pool5)
        svm_w = self.param("svm_kernel", nn.initializers.zeros, (svm_in.shape[-1], k))
        svm_b = self.param("svm_bias", nn.initializers.zeros, (k,))
        svm_scores = svm_in @ svm_w + svm_b  # [B * R, K]
        reg_in = jax.lax.stop_gradient(pool5)
        reg_w = self.param("bbox_reg_kernel", nn.initializers.zeros, (reg_in.shape[-1], 4 * k))
        reg_b = self.param("bbox_reg_bias", nn.initializers.zeros, (4 * k,))
        deltas = (reg_in @ reg_w + reg_b).reshape(b, r, k, 4)

        if not train:
            boxes, scores, labels, valid = _postprocess(
                svm_scores.reshape(b, r, k), deltas, proposals, proposals_valid, image_sizes,
                self.score_thresh, self.nms_thresh, self.detections_per_img)
            return dict(boxes=boxes, scores=scores, labels=labels, valid=valid,
                        proposals=proposals, proposals_valid=proposals_valid)

        tg = jax.vmap(functools.partial(
            training_targets, num_classes=k, fg_iou_thresh=self.fg_iou_thresh,
            svm_neg_thresh=self.svm_neg_thresh, box_reg_iou_thresh=self.box_reg_iou_thresh))(
            regions, regions_valid, gt_boxes, gt_labels, gt_valid)

        # (1) fine-tuning: softmax CE on a 32 fg / 96 bg sample of the batch's regions
        pos, neg = sample_balanced(self.make_rng("sample"), tg["finetune_state"].reshape(-1),
                                   self.finetune_samples, self.finetune_fg_fraction)
        chosen = pos | neg
        ft_target = tg["finetune_labels"].reshape(-1)
        ce = -jnp.take_along_axis(jax.nn.log_softmax(cls_logits), ft_target[:, None], axis=1)[:, 0]
        finetune = jnp.sum(jnp.where(chosen, ce, 0.0)) / jnp.maximum(jnp.sum(chosen), 1)

        # (2) SVMs: GT boxes positive, IoU < 0.3 negative, hard negatives mined per class
        hinge, _ = svm_hinge_loss(svm_scores, tg["svm_labels"].reshape(b * r, k),
                                  self.svm_hard_negatives, self.svm_positive_weight)
        svm = hinge + 0.5 * self.svm_l2 * jnp.sum(svm_w[:, 1:] ** 2)

        # (3) box regression: proposals with IoU >= 0.6, their best box's class-specific deltas
        sel = tg["box_reg_mask"]
        pred = jnp.take_along_axis(deltas, tg["box_reg_labels"][..., None, None], axis=2)[:, :, 0]
        sq = jnp.sum((pred - tg["box_reg_targets"]) ** 2, axis=-1)
        box_reg = (jnp.sum(jnp.where(sel, sq, 0.0)) / jnp.maximum(jnp.sum(sel), 1)
                   + self.box_reg_l2 * jnp.sum(reg_w ** 2))
        return {"losses": {"finetune": finetune, "svm": svm, "box_reg": box_reg}}


def sample_proposals(key, proposals, proposals_valid, gt_boxes, gt_valid, *, count,
                     fg_fraction=0.25, fg_iou_thresh=0.5):
    """One image's training windows: `count` of its valid proposals [P, 4], at most
    `fg_fraction` of them foreground (IoU >= fg_iou_thresh with a valid ground-truth box of
    gt_boxes [G, 4] / gt_valid [G]), the rest background, drawn uniformly (`sample_balanced`).
    Returns (proposals [count, 4], valid [count]); fewer valid proposals leave padding rows."""
    if not 1 <= count <= proposals.shape[0]:
        raise ValueError(f"train_proposals: expected 1..{proposals.shape[0]} (the proposals "
                         f"per image), got {count}")
    ious = jnp.where(gt_valid[None, :], box_iou(proposals, gt_boxes), -1.0)
    best = jnp.max(ious, axis=-1, initial=-1.0)
    state = jnp.where(proposals_valid, jnp.where(best >= fg_iou_thresh, POSITIVE, NEGATIVE), -1)
    pos, neg = sample_balanced(key, state, count, fg_fraction)
    chosen = pos | neg
    index = jnp.argsort(~chosen, stable=True)[:count]  # the chosen first, in proposal order
    return proposals[index], chosen[index]


def training_targets(regions, regions_valid, gt_boxes, gt_labels, gt_valid, *, num_classes,
                     fg_iou_thresh=0.5, svm_neg_thresh=0.3, box_reg_iou_thresh=0.6):
    """One image's R-CNN training labels for its regions: the G (padded) ground-truth boxes
    first, then the proposals.

    regions: [R, 4] xyxy, R = G + P; regions_valid: [R]; gt_boxes: [G, 4]; gt_labels: [G] int;
    gt_valid: [G]. With `best` a region's highest IoU with a valid ground-truth box (-1 with
    none) and `matched` that box (the first of ties):
    'finetune_state' [R] int32: 1 (foreground) if best >= fg_iou_thresh, 0 (background) if
    below, -1 for invalid regions; 'finetune_labels' [R]: matched box's class for foreground,
    else 0; 'svm_labels' [R, K] (`losses.svm.svm_labels`: ground-truth regions positive for
    their class, IoU < svm_neg_thresh with every box of a class negative for it);
    'box_reg_mask' [R]: valid proposals (not the ground-truth regions) with best >=
    box_reg_iou_thresh; 'box_reg_labels' [R]: matched box's class; 'box_reg_targets' [R, 4]:
    `regression_targets(matched box, region)` where the mask is set, else 0.
    """
    g = gt_boxes.shape[0]
    r = regions.shape[0]
    ious = jnp.where(gt_valid[None, :], box_iou(regions, gt_boxes), -1.0)  # [R, G]
    best = jnp.max(ious, axis=-1, initial=-1.0)
    matched = jnp.argmax(ious, axis=-1)
    matched_labels = gt_labels[matched]
    fg = regions_valid & (best >= fg_iou_thresh)
    bg = regions_valid & (best < fg_iou_thresh)
    region_gt_labels = jnp.concatenate(
        [jnp.where(gt_valid, gt_labels, 0), jnp.zeros((r - g,), gt_labels.dtype)])
    sel = regions_valid & (jnp.arange(r) >= g) & (best >= box_reg_iou_thresh)
    t = regression_targets(gt_boxes[matched], regions)
    return {
        "finetune_state": jnp.where(fg, POSITIVE, jnp.where(bg, NEGATIVE, -1)).astype(jnp.int32),
        "finetune_labels": jnp.where(fg, matched_labels, 0).astype(jnp.int32),
        "svm_labels": svm_labels(jnp.maximum(ious, 0.0), region_gt_labels, gt_labels, gt_valid,
                                 regions_valid, num_classes, svm_neg_thresh),
        "box_reg_mask": sel,
        "box_reg_labels": matched_labels.astype(jnp.int32),
        "box_reg_targets": jnp.where(sel[:, None], t, 0.0),
    }


def regression_targets(gt_boxes, proposals):
    """R-CNN's box regression targets (appendix C) of `gt_boxes` from `proposals`, both
    [..., 4] xyxy: tx = (Gx - Px) / Pw, ty = (Gy - Py) / Ph, tw = log(Gw / Pw),
    th = log(Gh / Ph) (centres and sizes without +1). Returns [..., 4]."""
    return encode_boxes(gt_boxes, proposals)


def _postprocess(scores, deltas, proposals, proposals_valid, image_sizes, score_thresh,
                 nms_thresh, detections_per_img):
    """Per image: decode each class's box, clip, drop background, keep SVM score >
    score_thresh, per-class NMS, the best `detections_per_img`.

    scores: [B, P, K]; deltas: [B, P, K, 4]; proposals: [B, P, 4]; proposals_valid: [B, P];
    image_sizes: [B, 2]. Returns boxes [B, D, 4], scores [B, D], labels [B, D] int32, valid.
    """
    k = scores.shape[-1]

    def one(s, d, props, pvalid, size):
        p = s.shape[0]
        boxes = decode_boxes(d, props[:, None, :])  # [P, K, 4]
        hw = jnp.stack([size[1], size[0], size[1], size[0]])
        boxes = jnp.clip(boxes, 0.0, hw)[:, 1:].reshape(-1, 4)
        s = s[:, 1:].reshape(-1)
        labels = jnp.tile(jnp.arange(1, k, dtype=jnp.int32), p)
        ok = jnp.repeat(pvalid, k - 1)
        keep, valid = batched_nms(boxes, jnp.where(ok, s, -jnp.inf), labels, nms_thresh,
                                  detections_per_img, score_threshold=score_thresh)
        return (jnp.where(valid[:, None], boxes[keep], 0.0), jnp.where(valid, s[keep], 0.0),
                jnp.where(valid, labels[keep], 0), valid)

    return jax.vmap(one)(scores, deltas, proposals, proposals_valid, image_sizes)


def rcnn(**kwargs) -> RCNN:
    """R-CNN. kwargs: num_classes=21, backbone='alexnet' | 'vgg11'..'vgg19' (backbone_widths),
    crop_size=227, context_padding=16, fc_dim=4096, svm_features='fc7', detections_per_img=100,
    nms_thresh=0.3, score_thresh=-1.0 (SVM scores), axis_name, dtype; training thresholds
    fg_iou_thresh=0.5, svm_neg_thresh=0.3, box_reg_iou_thresh=0.6 and sampling sizes
    (train_proposals=None: every proposal; finetune_samples, finetune_fg_fraction; RCNN)."""
    return RCNN(**kwargs)
