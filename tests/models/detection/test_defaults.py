"""Every constructor default of the detectors against its reference: torchvision's FasterRCNN,
MaskRCNN and SSD (signatures read with inspect at test time, plus the values their builders put
inside: anchors, RoI pooling, box coder, heads) and Darknet's yolov3.cfg (typed from the cfg);
and the sampled counts in a training forward at those defaults (RPN: at most 128 positives of
256 anchors per image; RoI heads: at most 128 foreground of 512 RoIs)."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.ssd import SSD

from jaxvision.models import get_model
from jaxvision.models.detection.anchors import generate_anchors


def _tv_defaults(cls):
    return {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _tiny_tv(cls):
    """A torchvision detector built with its defaults around a stub backbone, to read the parts
    its constructor builds (anchor generator, RoI pooling, heads)."""
    backbone = torch.nn.Conv2d(3, 8, 1)
    backbone.out_channels = 8
    return cls(backbone, num_classes=5)


@pytest.mark.parametrize("arch,cls", [("faster_rcnn", FasterRCNN), ("mask_rcnn", MaskRCNN)])
def test_rcnn_defaults_are_torchvisions(arch, cls):
    ref = _tv_defaults(cls)
    model = get_model(arch)  # the registry's factory, with its own defaults
    rpn, heads = model.rpn, model.roi_heads
    checked = 0
    for name, value in ref.items():
        if value is None:  # parts (anchor generator, heads, RoI pools): checked below
            continue
        if name.startswith("rpn_") and hasattr(rpn, name[4:]):
            ours = getattr(rpn, name[4:])
        elif name.startswith("box_") and hasattr(heads, name):
            ours = getattr(heads, name)
        else:
            continue
        assert ours == value and type(ours) is type(value), (name, ours, value)
        checked += 1
    # every threshold, count and fraction of the RPN (10) and the box head (7)
    assert checked == 17, checked
    tv = _tiny_tv(cls)
    assert ref["bbox_reg_weights"] is None  # RoIHeads then uses (10, 10, 5, 5)
    assert heads.bbox_reg_weights == tv.roi_heads.box_coder.weights
    assert rpn.anchor_sizes == tv.rpn.anchor_generator.sizes
    assert rpn.aspect_ratios == tv.rpn.anchor_generator.aspect_ratios
    assert (heads.box_output_size,) * 2 == tv.roi_heads.box_roi_pool.output_size
    assert heads.sampling_ratio == tv.roi_heads.box_roi_pool.sampling_ratio
    assert heads.representation_size == tv.roi_heads.box_head.fc6.out_features
    assert heads.box_roi_pool == "align"
    if arch == "mask_rcnn":
        assert (heads.mask_output_size,) * 2 == tv.roi_heads.mask_roi_pool.output_size
        assert heads.sampling_ratio == tv.roi_heads.mask_roi_pool.sampling_ratio
        convs = [m for m in tv.roi_heads.mask_head.modules() if isinstance(m, torch.nn.Conv2d)]
        assert heads.mask_layers == tuple(c.out_channels for c in convs)
        assert heads.mask_dim_reduced == tv.roi_heads.mask_predictor.conv5_mask.out_channels
    else:
        assert not heads.mask
    # torchvision's COCO builders' class count (91 incl. background)
    builder = getattr(torchvision.models.detection, f"{arch.replace('_', '')}_resnet50_fpn")
    tv_coco = builder(weights=None, weights_backbone=None).roi_heads.box_predictor.cls_score
    assert heads.num_classes == tv_coco.out_features == 91


def test_ssd_defaults_are_torchvisions():
    ref = _tv_defaults(SSD)
    model = get_model("ssd300")
    names = ("score_thresh", "nms_thresh", "detections_per_img", "iou_thresh", "topk_candidates",
             "positive_fraction")
    for name in names:
        ours = getattr(model, name)
        assert ours == ref[name] and type(ours) is type(ref[name]), (name, ours, ref[name])
    assert set(names) == {n for n, v in ref.items() if isinstance(v, (int, float))
                          and not isinstance(v, bool)}
    assert model.num_classes == 91
    # ssd300_vgg16 without pretrained weights trains every VGG block
    assert model.trainable_layers == 5


# Darknet's cfg/yolov3.cfg, typed from the cfg: the three [yolo] layers' `anchors`, `mask`
# (anchor indices used by the stride-32, 16 and 8 layers, in the cfg's order), classes=80, num=9.
CFG_ANCHORS = (10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326)
CFG_MASKS = {32: (6, 7, 8), 16: (3, 4, 5), 8: (0, 1, 2)}
CFG_CLASSES, CFG_NUM = 80, 9


def test_yolov3_defaults_are_darknets_cfg():
    model = get_model("yolov3")
    assert model.num_classes == CFG_CLASSES + 1  # + background (label 0)
    assert len(model.strides) * model.anchors_per_cell == CFG_NUM
    assert model.strides == (32, 16, 8)  # the cfg's [yolo] layers, coarsest first
    pairs = np.asarray(CFG_ANCHORS, np.float32).reshape(-1, 2)
    table = model.anchor_table()
    for s, mask in CFG_MASKS.items():
        np.testing.assert_array_equal(table[s], pairs[list(mask)])
    # The paper (Sec. 2.1) ignores predictions overlapping a ground truth above .5; the cfg
    # trains with ignore_thresh = .7. We keep the paper's value.
    assert model.ignore_thresh == 0.5
    # Darknet's mAP evaluation settings (detector.c validate_detector: thresh .005, nms .45)
    assert model.score_thresh == 0.005 and model.nms_thresh == 0.45


def _sampled_counts(module, variables, *args, **kwargs):
    _, state = module.apply(variables, *args, train=True, rngs={"sample": jax.random.key(0)},
                            mutable=["intermediates"], **kwargs)
    return {k: np.asarray(v[0]) for k, v in state["intermediates"].items()}


@pytest.mark.slow
def test_sampled_counts_in_a_training_forward():
    """The registry's Faster R-CNN RPN and RoI heads (Mask R-CNN's are the same modules), at
    their defaults, trained on two 256x256 images with 64 ground-truth boxes each: enough
    positives that the fractions bind (a fraction of 0.25 in the RPN or 0.5 in the RoI heads
    would give 64 or 256)."""
    model = get_model("faster_rcnn", num_classes=5)
    rpn, heads = model.rpn.clone(parent=None), model.roi_heads.clone(parent=None)
    h = w = 256
    c = 8  # feature channels: the sampling does not depend on them
    rng = np.random.default_rng(0)
    maps = [jnp.asarray(rng.normal(size=(2, h // s, w // s, c)), jnp.float32)
            for s in (4, 8, 16, 32, 64)]
    # ground truth: 64 of the 32x32 and 64x64 anchors themselves, so each has IoU 1 with one
    # anchor and >= 0.7 with its neighbours (well over 128 positive anchors)
    anchors, _, _ = generate_anchors([m.shape[1:3] for m in maps], (h, w), rpn.anchor_sizes,
                                     rpn.aspect_ratios)
    anchors = np.asarray(anchors)
    inside = (anchors[:, :2] >= 0).all(1) & (anchors[:, 2:] <= h).all(1)
    square = np.isclose(anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1])
    pool = anchors[inside & square & (anchors[:, 2] - anchors[:, 0] <= 64)]
    gt = np.stack([pool[rng.choice(len(pool), 64, replace=False)] for _ in range(2)])
    sizes = jnp.full((2, 2), h, jnp.int32)
    targets = {"boxes": jnp.asarray(gt), "labels": jnp.ones((2, 64), jnp.int32),
               "boxes_valid": jnp.ones((2, 64), bool)}
    rv = rpn.init({"params": jax.random.key(1)}, maps, (h, w), sizes, False)
    got = _sampled_counts(rpn, rv, maps, (h, w), sizes, targets=targets)
    assert (got["sampled_positive"] == 128).all() and (got["sampled_negative"] == 128).all()
    # proposals: 300 copies of ground-truth boxes shifted by a pixel (foreground, IoU >= 0.5)
    # and 500 of the whole image (background, IoU < 0.1)
    fg = gt[:, rng.integers(0, 64, 300)] + rng.integers(-1, 2, (2, 300, 4))
    bg = np.tile(np.array([0.0, 0.0, w, h]), (2, 500, 1))
    props = jnp.asarray(np.concatenate([fg, bg], 1), jnp.float32)
    pvalid = jnp.ones((2, 800), bool)
    hv = heads.init({"params": jax.random.key(2)}, maps[:4], (h, w), sizes, props, pvalid, False)
    got = _sampled_counts(heads, hv, maps[:4], (h, w), sizes, props, pvalid, targets=targets)
    assert (got["sampled_positive"] == 128).all() and (got["sampled_negative"] == 384).all()
