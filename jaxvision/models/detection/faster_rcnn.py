"""Factories: the choice of parts and their defaults (torchvision's names and values)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from jaxvision.models.backbones import build_backbone
from jaxvision.models.detection.generalized_rcnn import GeneralizedRCNN
from jaxvision.models.detection.roi_heads import BOX_WEIGHTS, RoIHeads
from jaxvision.models.detection.rpn import RegionProposalNetwork

FPN_ANCHOR_SIZES = ((32,), (64,), (128,), (256,), (512,))
VGG_ANCHOR_SIZES = ((128, 256, 512),)  # Ren et al.: 3 scales x 3 ratios on conv5


def _build(name, *, num_classes, backbone, backbone_kwargs, rpn, mask, box_roi_pool,
           anchor_sizes, aspect_ratios, representation_size, bbox_reg_weights, dtype, kw):
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes: expected an int >= 2 (background included), got "
                         f"{num_classes!r}")
    module, spec = build_backbone(backbone, dtype=dtype, **(backbone_kwargs or {}))
    fpn = len(spec.roi_levels) > 1
    if box_roi_pool is None:
        box_roi_pool = "align" if fpn or mask else "pool"
    rpn_module = None
    if rpn:
        if anchor_sizes is None:
            anchor_sizes = FPN_ANCHOR_SIZES if fpn else VGG_ANCHOR_SIZES
        if aspect_ratios is None:
            aspect_ratios = ((0.5, 1.0, 2.0),) * len(spec.rpn_levels)
        if len(anchor_sizes) != len(spec.rpn_levels):
            raise ValueError(f"anchor_sizes: expected one tuple per RPN level "
                             f"{spec.rpn_levels}, got {anchor_sizes}")
        known = {f"rpn_{f.name}" for f in dataclasses.fields(RegionProposalNetwork)} - {
            "rpn_anchor_sizes", "rpn_aspect_ratios", "rpn_anchor_strides", "rpn_dtype",
            "rpn_parent", "rpn_name"}
        rpn_kw = {k[len("rpn_"):]: kw.pop(k) for k in list(kw) if k in known}
        rpn_module = RegionProposalNetwork(anchor_sizes=tuple(anchor_sizes),
                                           aspect_ratios=tuple(aspect_ratios),
                                           anchor_strides=spec.strides, dtype=dtype,
                                           **rpn_kw)
    known = {f.name for f in dataclasses.fields(RoIHeads)} - {
        "num_classes", "box_roi_pool", "representation_size", "mask", "bbox_reg_weights", "dtype",
        "parent", "name"}
    box_kw = {k: kw.pop(k) for k in list(kw) if k in known}
    axis_name = kw.pop("axis_name", None)
    if kw:
        raise ValueError(f"{name} keyword arguments: unexpected {sorted(kw)}")
    heads = RoIHeads(num_classes=num_classes, box_roi_pool=box_roi_pool,
                     representation_size=representation_size, mask=mask,
                     bbox_reg_weights=tuple(bbox_reg_weights), dtype=dtype, **box_kw)
    return GeneralizedRCNN(backbone=module, rpn=rpn_module, roi_heads=heads,
                           rpn_levels=spec.rpn_levels, roi_levels=spec.roi_levels, arch=name,
                           dtype=dtype, axis_name=axis_name)


_KWARGS_DOC = """
    kwargs, torchvision's names and defaults: rpn_pre_nms_top_n_train=2000,
    rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_train=2000, rpn_post_nms_top_n_test=1000,
    rpn_nms_thresh=0.7, rpn_fg_iou_thresh=0.7, rpn_bg_iou_thresh=0.3,
    rpn_batch_size_per_image=256, rpn_positive_fraction=0.5, rpn_score_thresh=0.0,
    box_score_thresh=0.05, box_nms_thresh=0.5, box_detections_per_img=100,
    box_fg_iou_thresh=0.5, box_bg_iou_thresh=0.5, box_batch_size_per_image=512,
    box_positive_fraction=0.25; box_output_size=7 (RoI grid), sampling_ratio=2;
    Mask R-CNN: mask_output_size=14, mask_layers=(256,) * 4, mask_dim_reduced=256.
"""


def faster_rcnn(num_classes: int = 91, backbone: str = "resnet50_fpn", *,
                backbone_kwargs: dict | None = None, anchor_sizes=None, aspect_ratios=None,
                box_roi_pool: str | None = None, representation_size: int = 1024,
                bbox_reg_weights=BOX_WEIGHTS, dtype: Any = jnp.float32,
                **kwargs) -> GeneralizedRCNN:
    """Faster R-CNN (Ren et al. 2015), torchvision's FasterRCNN.

    backbone: 'resnet50_fpn' (or resnet18/34/101/152_fpn; anchors 32..512, one size per level,
    RoI Align 7x7 over p2..p5) or 'vgg16' (conv5 at stride 16, anchors 128/256/512 x
    0.5/1/2 = 9 per position, RoI Pool 7x7); backbone_kwargs: e.g. {'trainable_layers': 3,
    'frozen_bn': True} (FPN) or {'widths': (...)} (VGG); box_roi_pool: 'align' | 'pool'.
    """
    return _build("faster_rcnn", num_classes=num_classes, backbone=backbone,
                  backbone_kwargs=backbone_kwargs, rpn=True, mask=False,
                  box_roi_pool=box_roi_pool, anchor_sizes=anchor_sizes,
                  aspect_ratios=aspect_ratios, representation_size=representation_size,
                  bbox_reg_weights=bbox_reg_weights, dtype=dtype, kw=dict(kwargs))


def mask_rcnn(num_classes: int = 91, backbone: str = "resnet50_fpn", *,
              backbone_kwargs: dict | None = None, anchor_sizes=None, aspect_ratios=None,
              representation_size: int = 1024, bbox_reg_weights=BOX_WEIGHTS,
              dtype: Any = jnp.float32, **kwargs) -> GeneralizedRCNN:
    """Mask R-CNN (He et al. 2017), torchvision's MaskRCNN: Faster R-CNN + RoI Align 14x14 mask
    branch giving out['masks'] [B, D, 28, 28] (probabilities of each detection's class)."""
    return _build("mask_rcnn", num_classes=num_classes, backbone=backbone,
                  backbone_kwargs=backbone_kwargs, rpn=True, mask=True, box_roi_pool="align",
                  anchor_sizes=anchor_sizes, aspect_ratios=aspect_ratios,
                  representation_size=representation_size, bbox_reg_weights=bbox_reg_weights,
                  dtype=dtype, kw=dict(kwargs))


def fast_rcnn(num_classes: int = 21, backbone: str = "vgg16", *,
              backbone_kwargs: dict | None = None, box_roi_pool: str = "pool",
              representation_size: int = 1024, bbox_reg_weights=BOX_WEIGHTS,
              dtype: Any = jnp.float32, **kwargs) -> GeneralizedRCNN:
    """Fast R-CNN (Girshick 2015): the RoI head (RoI Pool 7x7 on VGG-16 conv5 by default) on
    given proposals: `model.apply(v, images, proposals=[B, P, 4], proposals_valid=[B, P])`."""
    return _build("fast_rcnn", num_classes=num_classes, backbone=backbone,
                  backbone_kwargs=backbone_kwargs, rpn=False, mask=False,
                  box_roi_pool=box_roi_pool, anchor_sizes=None, aspect_ratios=None,
                  representation_size=representation_size, bbox_reg_weights=bbox_reg_weights,
                  dtype=dtype, kw=dict(kwargs))


for _f in (faster_rcnn, mask_rcnn, fast_rcnn):
    _f.__doc__ += _KWARGS_DOC
