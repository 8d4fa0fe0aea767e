"""Two-stage detector parts against torchvision: VGG-16 anchors (38x50, 17,100), RPN anchor
labelling and sampling, the loss definitions (rpn, fastrcnn_loss, maskrcnn_loss), and train
mode on bad input (no boxes, a zero-width box, a box outside the image) staying finite."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import fastrcnn_loss, maskrcnn_loss

from jaxvision.losses.rcnn import fast_rcnn_losses, mask_rcnn_loss, rpn_losses
from jaxvision.models import get_model
from jaxvision.models.backbones import build_backbone
from jaxvision.models.detection.anchors import generate_anchors
from jaxvision.models.detection.roi_heads import mask_targets
from jaxvision.models.detection.rpn import anchor_targets
from tests import torchvision_ops

torchvision_ops.register()


def _vgg_anchors():
    backbone, spec = build_backbone("vgg16")
    shape = jax.eval_shape(lambda: backbone.init_with_output(
        jax.random.key(0), jnp.zeros((1, 600, 800, 3)), train=False)[0][1]["conv5"]).shape
    anchors, _, counts = generate_anchors([shape[1:3]], (600, 800), ((128, 256, 512),),
                                          ((0.5, 1.0, 2.0),), spec.strides)
    return shape, anchors, counts


def test_vgg16_600x800_gives_38x50_map_and_17100_anchors():
    shape, anchors, counts = _vgg_anchors()
    assert shape == (1, 38, 50, 512) and counts == [17100] and anchors.shape == (17100, 4)
    gen = AnchorGenerator(((128, 256, 512),), ((0.5, 1.0, 2.0),))
    # stride 16 (torchvision would take 600 // 38 = 15 for the rows; 608 // 38 = 16)
    ref = gen(ImageList(torch.zeros(1, 3, 608, 800), [(608, 800)]),
              [torch.zeros(1, 1, 38, 50)])[0].numpy()
    np.testing.assert_array_equal(np.asarray(anchors), ref)


@pytest.mark.slow
def test_rpn_sampling_follows_torchvision_labels():
    _, anchors, _ = _vgg_anchors()
    gt = np.array([[100, 120, 300, 260], [400, 300, 420, 500], [50, 50, 50, 90]], np.float32)
    valid = np.array([True, True, False])
    matcher = det_utils.Matcher(0.7, 0.3, allow_low_quality_matches=True)
    anchors_t = torch.from_numpy(np.array(anchors))
    iou = torchvision.ops.box_iou(torch.from_numpy(gt[valid]), anchors_t)
    m = matcher(iou).numpy()
    ref_pos, ref_neg = m >= 0, m == matcher.BELOW_LOW_THRESHOLD
    pos, neg, tgt = anchor_targets(jax.random.key(0), anchors, jnp.asarray(gt)[None],
                                   jnp.asarray(valid)[None])
    pos, neg, tgt = np.asarray(pos[0]), np.asarray(neg[0]), np.asarray(tgt[0])
    n_pos = min(ref_pos.sum(), 128)
    assert 0 < ref_pos.sum() and pos.sum() == n_pos and neg.sum() == 256 - n_pos
    assert not (pos & ~ref_pos).any() and not (neg & ~ref_neg).any()
    coder = det_utils.BoxCoder((1.0, 1.0, 1.0, 1.0))
    ref_tgt = coder.encode_single(torch.from_numpy(gt[valid][np.maximum(m, 0)]),
                                  anchors_t).numpy()
    np.testing.assert_allclose(tgt[pos], ref_tgt[pos], atol=1e-5)
    assert (tgt[~pos] == tgt[~pos]).all()  # finite elsewhere (the zero-width gt is padding)


def test_loss_definitions_match_torchvision():
    rng = np.random.default_rng(0)
    b, s, k = 2, 12, 4
    logits = rng.normal(size=(b, s, k)).astype(np.float32)
    reg = rng.normal(size=(b, s, 4 * k)).astype(np.float32)
    labels = rng.integers(0, k, size=(b, s)).astype(np.int32)
    tgt = (rng.normal(size=(b, s, 4)) * 0.2).astype(np.float32)
    tgt[0, 0] = reg[0, 0, 4 * labels[0, 0]:4 * labels[0, 0] + 4] + 1 / 9  # |d| == beta
    sampled = np.ones((b, s), bool)
    sampled[1, 8:] = False  # padding slots
    cls, box = fast_rcnn_losses(jnp.asarray(logits), jnp.asarray(reg), jnp.asarray(labels),
                                jnp.asarray(tgt), jnp.asarray(sampled))
    sel = sampled.reshape(-1)
    rc, rb = fastrcnn_loss(torch.from_numpy(logits.reshape(-1, k)[sel]),
                           torch.from_numpy(reg.reshape(-1, 4 * k)[sel]),
                           [torch.from_numpy(labels.reshape(-1)[sel]).long()],
                           [torch.from_numpy(tgt.reshape(-1, 4)[sel])])
    np.testing.assert_allclose([cls, box], [rc.item(), rb.item()], rtol=1e-5)

    # RPN: BCE mean over sampled anchors, smooth L1 (beta 1/9) over positives / sampled
    obj = rng.normal(size=(b, 50)).astype(np.float32)
    deltas = rng.normal(size=(b, 50, 4)).astype(np.float32)
    targets = rng.normal(size=(b, 50, 4)).astype(np.float32)
    pos = rng.random((b, 50)) < 0.2
    neg = ~pos & (rng.random((b, 50)) < 0.5)
    targets[~pos] = np.inf  # never read: a zero-width box's log(0) outside the positives
    o, bx = rpn_losses(jnp.asarray(obj), jnp.asarray(deltas), jnp.asarray(targets),
                       jnp.asarray(pos), jnp.asarray(neg))
    smp = pos | neg
    ro = F.binary_cross_entropy_with_logits(torch.from_numpy(obj[smp]),
                                            torch.from_numpy(pos[smp].astype(np.float32)))
    rb = F.smooth_l1_loss(torch.from_numpy(deltas[pos]), torch.from_numpy(targets[pos]),
                          beta=1 / 9, reduction="sum") / smp.sum()
    np.testing.assert_allclose([o, bx], [ro.item(), rb.item()], rtol=1e-5)
    grad = jax.grad(lambda d: rpn_losses(jnp.asarray(obj), d, jnp.asarray(targets),
                                         jnp.asarray(pos), jnp.asarray(neg))[1])(
        jnp.asarray(deltas))
    assert bool(jnp.isfinite(grad).all()) and not bool(grad[~pos].any())


def test_mask_loss_and_targets_match_torchvision():
    rng = np.random.default_rng(1)
    m, k, g, h, w = 28, 3, 2, 40, 48
    gt_masks = (rng.random((1, g, h, w)) < 0.5).astype(np.uint8)
    boxes = np.array([[[2.5, 3.0, 30.2, 35.7], [10.0, 1.0, 47.0, 20.0], [5.0, 5.0, 9.0, 30.0],
                       [0.0, 0.0, 0.0, 0.0]]], np.float32)
    matched = np.array([[1, 0, 1, 0]], np.int32)
    labels = np.array([[2, 1, 2, 0]], np.int32)
    positive = np.array([[True, True, True, False]])
    logits = rng.normal(size=(1, 4, m, m, k)).astype(np.float32)
    tgt = mask_targets(jnp.asarray(gt_masks), jnp.asarray(boxes), jnp.asarray(matched), m)
    loss = mask_rcnn_loss(jnp.asarray(logits), jnp.asarray(labels), tgt, jnp.asarray(positive))
    ref = maskrcnn_loss(torch.from_numpy(logits[0, :3].transpose(0, 3, 1, 2)),
                        [torch.from_numpy(boxes[0, :3])], [torch.from_numpy(gt_masks[0])],
                        [torch.tensor([1, 2])],  # per gt box: gt_labels[matched] == labels
                        [torch.from_numpy(matched[0, :3]).long()])
    np.testing.assert_allclose(float(loss), ref.item(), rtol=1e-5)


@pytest.fixture(scope="module")
def tiny_mask_rcnn():
    model = get_model("mask_rcnn", num_classes=3, backbone="vgg16",
                      backbone_kwargs={"widths": (4, 4, 8, 8, 8)}, anchor_sizes=((16, 32),),
                      aspect_ratios=((0.5, 1.0, 2.0),), representation_size=16,
                      mask_layers=(4, 4), mask_dim_reduced=4, rpn_pre_nms_top_n_train=50,
                      rpn_post_nms_top_n_train=20, rpn_pre_nms_top_n_test=50,
                      rpn_post_nms_top_n_test=20, box_batch_size_per_image=16,
                      rpn_batch_size_per_image=32, box_detections_per_img=5)
    images = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
    sizes = jnp.array([[64, 64], [48, 64]])
    # one compilation gives the variables and the eval outputs
    out, variables = jax.jit(lambda x, s: model.init_with_output(
        jax.random.key(1), x, image_sizes=s))(images, sizes)
    return model, variables, images, out


@pytest.mark.slow
def test_train_mode_losses_finite_on_bad_input(tiny_mask_rcnn):
    model, variables, images, out = tiny_mask_rcnn
    assert out["boxes"].shape == (2, 5, 4) and out["masks"].shape == (2, 5, 28, 28)
    assert out["labels"].dtype == jnp.int32 and out["proposals"].shape == (2, 20, 4)
    assert float(out["boxes"][1, :, 1::2].max()) <= 48  # clipped to the real content height
    assert float(out["proposals"][1, :, 1::2].max()) <= 48
    assert int(out["proposals_valid"].sum()) > 0
    # image 0: a normal box, a zero-width box, a box outside the image; image 1: no boxes
    boxes = jnp.array([[[8, 10, 40, 50], [20, 5, 20, 40], [70, 70, 90, 95]],
                       [[0, 0, 0, 0]] * 3], jnp.float32)
    masks = jnp.zeros((2, 3, 64, 64), jnp.uint8).at[0, 0, 10:50, 8:40].set(1)
    targets = dict(boxes=boxes, labels=jnp.array([[1, 2, 1], [0, 0, 0]], jnp.int32),
                   boxes_valid=jnp.array([[True, True, True], [False] * 3]), masks=masks)

    def loss(params):
        out = model.apply({**variables, "params": params}, images, train=True, targets=targets,
                          image_sizes=jnp.array([[64, 64], [48, 64]]),
                          rngs={"sample": jax.random.key(2), "dropout": jax.random.key(3)})
        return sum(out["losses"].values()), out["losses"]

    (total, terms), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
    assert set(terms) == {"rpn_objectness", "rpn_box", "classifier", "box_reg", "mask"}
    assert all(np.isfinite(float(v)) and float(v) >= 0 for v in terms.values())
    assert float(terms["classifier"]) > 0 and float(terms["rpn_objectness"]) > 0
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
    for part in ("backbone", "rpn", "roi_heads"):
        assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads[part])), part


@pytest.mark.slow
def test_bad_calls_raise_naming_the_field(tiny_mask_rcnn):
    model, variables, images, _ = tiny_mask_rcnn
    with pytest.raises(ValueError, match="targets"):
        model.apply(variables, images, train=True, rngs={"sample": jax.random.key(0)})
    with pytest.raises(ValueError, match="image_sizes"):
        model.apply(variables, images, image_sizes=jnp.zeros((3, 2), jnp.int32))


def test_bad_model_arguments_raise_naming_the_field():
    with pytest.raises(ValueError, match="num_classes"):
        get_model("faster_rcnn", num_classes=1)
    with pytest.raises(ValueError, match="backbone"):
        get_model("faster_rcnn", num_classes=3, backbone="vgg19_fpn")
    with pytest.raises(ValueError, match="unexpected"):
        get_model("faster_rcnn", num_classes=3, rpn_nms_treshold=0.5)


@pytest.mark.slow
def test_fast_rcnn_on_given_proposals_with_none_valid_in_one_image():
    model = get_model("fast_rcnn", num_classes=3, backbone_kwargs={"widths": (4, 4, 8, 8, 8)},
                      representation_size=16, box_batch_size_per_image=8,
                      box_detections_per_img=4, box_score_thresh=0.0)
    images = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
    props = jnp.array([[[0, 0, 30, 30], [10, 10, 50, 60], [8, 10, 40, 52]]] * 2, jnp.float32)
    props_valid = jnp.array([[True, True, True], [False, False, False]])
    out, variables = jax.jit(lambda x: model.init_with_output(
        jax.random.key(1), x, proposals=props, proposals_valid=props_valid))(images)
    assert int(out["valid"][0].sum()) > 0 and not bool(out["valid"][1].any())
    assert "rpn" not in variables["params"]
    targets = dict(boxes=jnp.array([[[8, 10, 40, 50]], [[0, 0, 0, 0]]], jnp.float32),
                   labels=jnp.array([[1], [0]], jnp.int32),
                   boxes_valid=jnp.array([[True], [False]]))
    losses = jax.jit(lambda v: model.apply(
        v, images, train=True, targets=targets, proposals=props, proposals_valid=props_valid,
        rngs={"sample": jax.random.key(2)})["losses"])(variables)
    assert set(losses) == {"classifier", "box_reg"}
    assert all(np.isfinite(float(v)) for v in losses.values())
    assert float(losses["box_reg"]) > 0  # proposals at IoU >= 0.5 with the box are positives
    with pytest.raises(ValueError, match="proposals"):
        model.apply(variables, images)


@pytest.mark.slow
def test_postprocess_matches_torchvision_with_a_score_exactly_at_the_threshold():
    from torchvision.models.detection.roi_heads import RoIHeads as TVRoIHeads

    from jaxvision.models.detection.roi_heads import postprocess_detections

    rng = np.random.default_rng(3)
    p, k = 40, 4
    xy = rng.uniform(0, 80, (p, 2))
    props = np.concatenate([xy, xy + rng.uniform(2, 40, (p, 2))], 1).astype(np.float32)
    logits = (rng.normal(size=(p, k)) * 2).astype(np.float32)
    reg = rng.normal(size=(p, 4 * k)).astype(np.float32)
    logits[0] = [0, 5, 0, 0]  # proposal 0, class 1: the best score, but its width
    reg[0, 4:8] = [0, 0, -60, 0]  # exp(-60 / 5) * w < 1e-2: removed as small
    scores = torch.softmax(torch.from_numpy(logits), -1).numpy()
    thresh = float(np.sort(scores[:, 1:].ravel())[p])  # one score equals it: strict > drops it
    tv = TVRoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, None, thresh, 0.5, 200)
    boxes, sc, lab = tv.postprocess_detections(torch.from_numpy(logits), torch.from_numpy(reg),
                                               [torch.from_numpy(props)], [(90, 100)])
    out = postprocess_detections(jnp.asarray(logits)[None], jnp.asarray(reg)[None],
                                 jnp.asarray(props)[None], jnp.ones((1, p), bool),
                                 jnp.array([[90, 100]]), score_thresh=thresh, nms_thresh=0.5,
                                 detections_per_img=200)
    n = int(out[3][0].sum())
    assert n == len(boxes[0]) > 20
    np.testing.assert_allclose(np.asarray(out[0][0, :n]), boxes[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(np.asarray(out[1][0, :n]), sc[0].numpy(), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out[2][0, :n]), lab[0].numpy())
