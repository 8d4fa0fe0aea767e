"""R-CNN (Girshick et al. 2014): training labels (fine-tuning IoU >= 0.5, SVM positives = ground
truth and negatives IoU < 0.3, regression IoU >= 0.6), hard negative mining and the hinge loss
against float64 references written from the paper; regression targets from the paper's
formulas; the eval contract (SVM scores, score threshold, NMS 0.3, decoding, clipping); train
mode staying finite with no boxes and no valid proposals; the CNN run once per region."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.losses.svm import hard_negatives, svm_hinge_loss, svm_labels
from jaxvision.models import get_model
from jaxvision.models.rcnn import regression_targets, sample_proposals, training_targets

K = 3  # background + 2 classes


def iou_np(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def targets_np(regions, regions_valid, gt_boxes, gt_labels, gt_valid, num_classes):
    """The paper's rules, one region at a time, in float64."""
    g = len(gt_boxes)
    out = {"finetune_state": [], "finetune_labels": [], "svm_labels": [], "box_reg_mask": [],
           "box_reg_labels": [], "box_reg_targets": []}
    for r, (box, valid) in enumerate(zip(regions, regions_valid, strict=True)):
        ious = [iou_np(box, gb) if gv else -1.0 for gb, gv in zip(gt_boxes, gt_valid, strict=True)]
        best = max(ious, default=-1.0)
        j = int(np.argmax(ious)) if ious else 0
        fg = valid and best >= 0.5
        out["finetune_state"].append(1 if fg else (0 if valid else -1))
        out["finetune_labels"].append(gt_labels[j] if fg else 0)
        row = [0] * num_classes
        for c in range(1, num_classes):
            if not valid:
                continue
            if r < g and gt_valid[r] and gt_labels[r] == c:
                row[c] = 1
                continue
            m = max([iou_np(box, gb) for gb, gl, gv in zip(gt_boxes, gt_labels, gt_valid,
                                                           strict=True) if gv and gl == c],
                    default=0.0)
            row[c] = -1 if m < 0.3 else 0
        out["svm_labels"].append(row)
        sel = valid and r >= g and best >= 0.6
        out["box_reg_mask"].append(sel)
        out["box_reg_labels"].append(gt_labels[j])
        out["box_reg_targets"].append(paper_targets(gt_boxes[j], box) if sel else [0.0] * 4)
    return {k: np.asarray(v) for k, v in out.items()}


def paper_targets(g, p):
    """Appendix C: P and G as centre, width, height; t = ((Gx - Px) / Pw, (Gy - Py) / Ph,
    log(Gw / Pw), log(Gh / Ph))."""
    g, p = np.asarray(g, np.float64), np.asarray(p, np.float64)
    pw, ph = p[2] - p[0], p[3] - p[1]
    px, py = p[0] + pw / 2, p[1] + ph / 2
    gw, gh = g[2] - g[0], g[3] - g[1]
    gx, gy = g[0] + gw / 2, g[1] + gh / 2
    return [(gx - px) / pw, (gy - py) / ph, np.log(gw / pw), np.log(gh / ph)]


GT = np.array([[0, 0, 10, 1], [20, 0, 22, 1], [40, 0, 44, 1]], np.float32)
GT_LABELS = np.array([1, 2, 1], np.int32)
GT_VALID = np.array([True, True, False])
PROPOSALS = np.array([
    [0, 0, 3, 1],      # IoU 0.3 with gt 0 (class 1): not an SVM negative for class 1
    [0, 0, 2.9, 1],    # 0.29: negative
    [0, 0, 5, 1],      # 0.5: fine-tuning foreground
    [0, 0, 4.9, 1],    # 0.49: background
    [0, 0, 6, 1],      # 0.6: regression pair
    [0, 0, 5.9, 1],    # 0.59: not a regression pair
    [20, 0, 21, 1],    # 0.5 with gt 1 (class 2)
    [20, 0, 22, 1],    # = gt 1 as a proposal: IoU 1 but not an SVM positive
    [0, 0, 10, 1],     # invalid proposal
    [40, 0, 44, 1],    # = the invalid (padding) gt box: negative everywhere
    [1, 0.2, 9, 0.9],  # inside gt 0, 0.56
], np.float32)
P_VALID = np.array([True] * 8 + [False, True, True])


def test_training_targets_match_paper_rules_at_the_thresholds():
    regions = np.concatenate([GT, PROPOSALS])
    valid = np.concatenate([GT_VALID, P_VALID])
    got = jax.jit(functools.partial(training_targets, num_classes=K))(
        regions, valid, GT, GT_LABELS, GT_VALID)
    want = targets_np(regions, valid, GT, GT_LABELS, GT_VALID, K)
    for key in want:
        if key == "box_reg_targets":
            np.testing.assert_allclose(got[key], want[key], atol=1e-6)
        else:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # the boundary cases pinned by hand as well
    assert want["svm_labels"][3 + 0, 1] == 0 and want["svm_labels"][3 + 1, 1] == -1
    assert want["finetune_state"][3 + 2] == 1 and want["finetune_state"][3 + 3] == 0
    assert want["box_reg_mask"][3 + 4] and not want["box_reg_mask"][3 + 5]
    assert want["svm_labels"][0, 1] == 1 and want["svm_labels"][3 + 7, 2] == 0


def test_svm_labels_on_hand_built_ious():
    rng = np.random.default_rng(0)
    ious = rng.choice(np.float32([0.0, 0.1, 0.2999, 0.3, 0.3001, 0.5, 0.7, 1.0]), size=(9, 4))
    region_gt = np.array([1, 0, 2, 0, 0, 0, 0, 1, 0], np.int32)
    gt_labels = np.array([1, 2, 1, 2], np.int32)
    gt_valid = np.array([True, True, True, False])
    rvalid = np.array([True] * 8 + [False])
    ious[1, [0, 2]] = [0.3, 0.1]  # region 1's best class-1 IoU is exactly 0.3: ignored
    ious[3, [0, 2]] = [0.0, np.float32(0.3) - np.float32(1e-7)]  # just below: negative
    got = np.asarray(svm_labels(ious, region_gt, gt_labels, gt_valid, rvalid, K))
    for r in range(9):
        for c in range(K):
            m = max([ious[r, j] for j in range(4) if gt_valid[j] and gt_labels[j] == c],
                    default=0.0)
            want = (0 if c == 0 or not rvalid[r] else 1 if region_gt[r] == c
                    else -1 if m < 0.3 else 0)
            assert got[r, c] == want, (r, c, m)


def hard_np(scores, labels, k):
    out = np.zeros(scores.shape, bool)
    for c in range(scores.shape[1]):
        cand = [i for i in range(len(scores)) if labels[i, c] == -1 and scores[i, c] > -1]
        cand.sort(key=lambda i: -float(scores[i, c]))  # stable: ties keep the lower index
        out[cand[:k], c] = True
    return out


def test_hard_negatives_and_hinge_match_reference():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(14, K)).astype(np.float32) * 1.5
    scores[2, 1] = scores[5, 1] = 0.25   # a tie
    scores[7, :] = -1.0                  # exactly on the margin: not violated
    labels = rng.choice([-1, -1, 0, 1], size=(14, K)).astype(np.int32)
    labels[[2, 5, 7], 1] = -1
    for k in (1, 3, 20):
        np.testing.assert_array_equal(hard_negatives(scores, labels, k), hard_np(scores, labels, k))
    loss, hard = svm_hinge_loss(scores, labels, 3, positive_weight=2.0)
    h = hard_np(scores, labels, 3)
    s = scores.astype(np.float64)
    pos = labels == 1
    want = (2.0 * np.maximum(0, 1 - s)[pos].sum() + np.maximum(0, 1 + s)[h].sum()) / (
        pos.sum() + h.sum())
    np.testing.assert_array_equal(hard, h)
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    empty, _ = svm_hinge_loss(scores, np.zeros_like(labels), 3)
    assert float(empty) == 0.0


def test_regression_targets_are_the_papers():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 50, size=(2, 20, 2))
    wh = rng.uniform(1, 30, size=(2, 20, 2))
    p, g = (np.concatenate([xy[i], xy[i] + wh[i]], -1).astype(np.float32) for i in range(2))
    want = np.array([paper_targets(a, b) for a, b in zip(g, p, strict=True)])
    np.testing.assert_allclose(regression_targets(g, p), want, rtol=1e-5, atol=1e-5)


FG_ROWS = {2, 4, 5, 6, 7, 10}  # IoU >= 0.5 with a valid box (row 2 exactly 0.5, row 3 0.49)
BG_ROWS = {0, 1, 3, 9}          # row 8 is invalid


@pytest.mark.parametrize("count, fraction, n_fg, n_bg", [
    (6, 1.0, 6, 0), (6, 0.5, 3, 3), (4, 0.25, 1, 3), (10, 0.25, 2, 4)])
def test_sample_proposals_draws_balanced_training_windows(count, fraction, n_fg, n_bg):
    seen = set()
    for seed in range(5):
        boxes, valid = sample_proposals(jax.random.key(seed), PROPOSALS, P_VALID, GT, GT_VALID,
                                        count=count, fg_fraction=fraction)
        assert boxes.shape == (count, 4) and valid.shape == (count,)
        np.testing.assert_array_equal(valid, np.arange(count) < n_fg + n_bg)
        rows = [int(np.flatnonzero((PROPOSALS == b).all(1))[0]) for b in np.asarray(boxes)[
            np.asarray(valid)]]
        assert len(set(rows)) == len(rows)  # no proposal twice
        assert len(FG_ROWS & set(rows)) == n_fg and len(BG_ROWS & set(rows)) == n_bg
        seen.add(tuple(sorted(rows)))
    if 0 < n_fg < len(FG_ROWS) or 0 < n_bg < len(BG_ROWS):
        assert len(seen) > 1  # drawn at random
    if (count, fraction) == (6, 1.0):
        assert seen == {tuple(sorted(FG_ROWS))}
    with pytest.raises(ValueError, match=r"train_proposals: expected 1..11 \(the proposals per "
                                         r"image\), got 12"):
        sample_proposals(jax.random.key(0), PROPOSALS, P_VALID, GT, GT_VALID, count=12)


# ---------------------------------------------------------------- the model

B, H, W, P = 2, 40, 48, 5


@pytest.fixture(scope="module")
def model_and_params():
    model = get_model("rcnn", num_classes=K, backbone="vgg11", backbone_widths=(4, 4, 4, 4, 4),
                      crop_size=32, context_padding=4, fc_dim=8, detections_per_img=6)
    props = jnp.zeros((B, P, 4))
    init = jax.jit(functools.partial(model.init, train=False))
    params = init(jax.random.key(0), jnp.zeros((B, H, W, 3)), proposals=props)["params"]
    return model, params


def nms_np(boxes, scores, thr):
    """Greedy NMS as torchvision's kernel decides: the IoU of float32 boxes in float32, compared
    with the threshold as a double (so a float32 IoU of 0.3 = 0.30000001 is above 0.3)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(float(np.float32(iou_np(boxes[i], boxes[j]))) <= thr for j in keep):
            keep.append(i)
    return keep


@pytest.mark.slow
def test_eval_contract_svm_scores_threshold_nms_decode_clip(model_and_params):
    model, params = model_and_params
    images = jnp.asarray(np.random.default_rng(3).normal(size=(B, H, W, 3)), jnp.float32)
    props = np.zeros((B, P, 4), np.float32)
    props[0, :4] = [[0, 0, 30, 10], [0, 0, 9, 10],     # IoU 90 / 300: 0.30000001 > 0.3
                    [14, 0, 38, 10], [30, 20, 60, 50]]  # IoU 0.42: suppressed; past the image
    props[1, 0] = [10, 10, 26, 30]
    pvalid = np.array([[1, 1, 1, 1, 0], [1, 0, 0, 0, 0]], bool)
    sizes = np.array([[36, 44], [40, 48]], np.float32)
    # SVM: class 1 scores 0.5 everywhere, class 2 exactly the default score_thresh (-1)
    params = jax.tree.map(jnp.zeros_like, params)  # fc and cnn do not matter with zero SVMs
    params["svm_bias"] = jnp.array([0.0, 0.5, -1.0])
    apply = jax.jit(functools.partial(model.apply, train=False))
    out = apply({"params": params}, images, proposals=props, proposals_valid=pvalid,
                image_sizes=sizes)
    for key, shape, dtype in (("boxes", (B, 6, 4), jnp.float32), ("scores", (B, 6), jnp.float32),
                              ("labels", (B, 6), jnp.int32), ("valid", (B, 6), jnp.bool_)):
        assert out[key].shape == shape and out[key].dtype == dtype, key
    clipped = np.minimum(props[0], [44, 36, 44, 36])
    keep = nms_np([clipped[i] for i in range(4)], [0.5] * 4, 0.3)
    assert keep == [0, 3]
    n = len(keep)
    np.testing.assert_array_equal(out["valid"][0], np.arange(6) < n)
    np.testing.assert_allclose(out["boxes"][0, :n], clipped[keep])
    np.testing.assert_array_equal(out["labels"][0, :n], 1)
    np.testing.assert_allclose(out["scores"][0, :n], 0.5)
    assert not np.any(out["labels"][~np.asarray(out["valid"])])

    # class-specific regression: class 1's deltas move the proposal by the paper's formulas
    d = np.array([0.1, -0.2, np.log(1.5), np.log(0.5)], np.float32)
    params["bbox_reg_bias"] = jnp.zeros((K, 4)).at[1].set(d).at[2].set(-d).reshape(-1)
    out = apply({"params": params}, images, proposals=props, proposals_valid=pvalid,
                image_sizes=sizes)
    p = props[1, 0].astype(np.float64)
    pw, ph = p[2] - p[0], p[3] - p[1]
    cx, cy = p[0] + pw / 2 + pw * d[0], p[1] + ph / 2 + ph * d[1]
    w, h = pw * np.exp(d[2]), ph * np.exp(d[3])
    want = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    np.testing.assert_array_equal(out["valid"][1], np.arange(6) < 1)
    np.testing.assert_allclose(out["boxes"][1, 0], want, rtol=1e-5)
    assert out["labels"][1, 0] == 1


def _count_convs(jaxpr, found):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            found.append(eqn.invars[0].aval.shape)
        for v in eqn.params.values():
            for sub in v if isinstance(v, (list, tuple)) else [v]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _count_convs(inner, found)
    return found


def test_cnn_runs_once_per_region(model_and_params):
    model, params = model_and_params
    images = jnp.zeros((B, H, W, 3))
    props = jnp.zeros((B, P, 4))
    ev = jax.make_jaxpr(lambda p: model.apply({"params": p}, images, train=False,
                                              proposals=props))(params)
    convs = _count_convs(ev.jaxpr, [])
    assert len(convs) == 8  # VGG-11's eight convs, each once
    assert all(s[:3] == (B * P, s[1], s[2]) and s[0] == B * P for s in convs)
    assert convs[0] == (B * P, 32, 32, 3)
    g = 3
    tg = {"boxes": jnp.zeros((B, g, 4)), "labels": jnp.zeros((B, g), jnp.int32),
          "boxes_valid": jnp.zeros((B, g), bool)}
    tr = jax.make_jaxpr(lambda p: model.apply(
        {"params": p}, images, train=True, targets=tg, proposals=props,
        rngs={"dropout": jax.random.key(0), "sample": jax.random.key(1)}))(params)
    convs = _count_convs(tr.jaxpr, [])
    assert len(convs) == 8 and all(s[0] == B * (g + P) for s in convs)
    # train_proposals: the CNN sees the ground truth and a sample of 2 proposals per image
    for n, regions in ((2, g + 2), (P, g + P)):
        tr = jax.make_jaxpr(lambda p, n=n: model.clone(train_proposals=n).apply(
            {"params": p}, images, train=True, targets=tg, proposals=props,
            rngs={"dropout": jax.random.key(0), "sample": jax.random.key(1)}))(params)
        assert all(s[0] == B * regions for s in _count_convs(tr.jaxpr, []))


@pytest.mark.slow
def test_train_losses_finite_without_boxes_or_proposals(model_and_params):
    model, params = model_and_params
    rng = np.random.default_rng(4)
    images = jnp.asarray(rng.normal(size=(B, H, W, 3)), jnp.float32)

    def weighted(p, w, targets, props, pvalid):
        losses = model.apply({"params": p}, images, train=True, targets=targets, proposals=props,
                             proposals_valid=pvalid,
                             rngs={"dropout": jax.random.key(0), "sample": jax.random.key(1)}
                             )["losses"]
        return w[0] * losses["finetune"] + w[1] * losses["svm"] + w[2] * losses["box_reg"], losses

    grad = jax.jit(jax.grad(weighted, has_aux=True))
    props = np.zeros((B, P, 4), np.float32)
    props[:, :3] = [[2, 2, 20, 20], [5, 5, 30, 30], [0, 0, 12, 40]]
    # image 0: no boxes, all proposals invalid; image 1: one box and valid proposals
    tg = {"boxes": np.array([[[0, 0, 0, 0]] * 2, [[3, 3, 20, 21], [0, 0, 0, 0]]], np.float32),
          "labels": np.array([[0, 0], [2, 0]], np.int32),
          "boxes_valid": np.array([[False, False], [True, False]])}
    pvalid = np.array([[False] * P, [True] * 3 + [False] * 2])
    ones = jnp.ones(3)
    keys = jax.random.split(jax.random.key(5), 2)
    params = dict(params)  # non-zero SVM and regressor weights, so features would get gradients
    for key, name in zip(keys, ("svm_kernel", "bbox_reg_kernel"), strict=True):
        params[name] = 0.1 * jax.random.normal(key, params[name].shape)
    g, losses = grad(params, ones, tg, props, pvalid)
    assert set(losses) == {"finetune", "svm", "box_reg"}
    assert all(np.isfinite(float(v)) for v in losses.values())
    assert float(losses["box_reg"]) > 0 and float(losses["svm"]) > 0  # the pair (IoU >= 0.6)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))
    # the SVM and regressor sit on stop-gradient features: the CNN learns from fine-tuning only
    g_heads, _ = grad(params, jnp.array([0.0, 1.0, 1.0]), tg, props, pvalid)
    for name in ("backbone", "fc6", "fc7", "cls_score"):
        assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(g_heads[name])), name
    assert float(jnp.abs(g_heads["svm_kernel"]).max()) > 0
    assert float(jnp.abs(g_heads["bbox_reg_kernel"]).max()) > 0
    # nothing at all: no boxes anywhere, no valid proposal
    empty = {k: np.zeros_like(v) for k, v in tg.items()}
    g, losses = grad(params, ones, empty, props, np.zeros((B, P), bool))
    assert all(np.isfinite(float(v)) for v in losses.values())
    assert float(losses["finetune"]) == 0.0
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))


def test_bad_input_errors(model_and_params):
    model, params = model_and_params
    with pytest.raises(ValueError, match="proposals"):
        model.apply({"params": params}, jnp.zeros((B, H, W, 3)), train=False)
    with pytest.raises(ValueError, match="backbone"):
        get_model("rcnn", backbone="resnet50").init(
            jax.random.key(0), jnp.zeros((1, 64, 64, 3)), train=False,
            proposals=jnp.zeros((1, 1, 4)))


@pytest.mark.slow
def test_finetune_samples_32_fg_96_bg_with_iou_labels(model_and_params):
    # with cls_score's kernel zero every region's logits are its bias, so the mean CE over the
    # sample is (32 * -log p(class 1) + 96 * -log p(background)) / 128 when there are more
    # than 32 foreground (all class 1) and 96 background regions to draw from
    model, params = model_and_params
    params = dict(params)
    params["cls_score"] = {"kernel": jnp.zeros_like(params["cls_score"]["kernel"]),
                           "bias": jnp.array([0.3, -0.7, 1.1])}
    p = 70
    props = np.zeros((B, p, 4), np.float32)
    props[:, :20] = [[0.5 * i, 0, 20, 20] for i in range(20)]          # IoU >= 0.55
    props[:, 20:] = [[24 + 0.2 * i, 22, 40, 38] for i in range(50)]    # IoU 0
    props[:, 19] = [0, 0, 40, 10]                                        # IoU 0.5 / 3 -> bg
    props[:, 18] = [0, 0, 10, 40]                                        # 100 / 800 -> bg
    tg = {"boxes": np.tile(np.array([[[0, 0, 20, 20]]], np.float32), (B, 1, 1)),
          "labels": np.ones((B, 1), np.int32), "boxes_valid": np.ones((B, 1), bool)}
    losses = model.apply({"params": params}, jnp.zeros((B, H, W, 3)), train=True, targets=tg,
                         proposals=props, rngs={"dropout": jax.random.key(0),
                                                "sample": jax.random.key(1)})["losses"]
    logp = np.log(np.exp([0.3, -0.7, 1.1]) / np.exp([0.3, -0.7, 1.1]).sum())
    n_fg = B * (1 + 18)
    n_bg = B * (2 + 50)
    assert n_fg > 32 and n_bg > 96
    np.testing.assert_allclose(losses["finetune"], -(32 * logp[1] + 96 * logp[0]) / 128,
                               rtol=1e-5)


def test_default_model_is_the_papers_alexnet_227():
    model = get_model("rcnn")
    images = jax.ShapeDtypeStruct((1, 256, 320, 3), jnp.float32)
    props = jax.ShapeDtypeStruct((1, 3, 4), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(images.shape),
                                                  train=False, proposals=jnp.zeros(props.shape)))
    prm = variables["params"]
    assert prm["fc6"]["kernel"].shape == (6 * 6 * 256, 4096)   # pool5 of a 227 crop
    assert prm["svm_kernel"].shape == (4096, 21)                 # SVMs on fc7, 20 classes + bg
    assert prm["bbox_reg_kernel"].shape == (6 * 6 * 256, 4 * 21)  # regressor on pool5
    out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros(images.shape), train=False,
                                               proposals=jnp.zeros(props.shape)), variables)
    assert out["boxes"].shape == (1, 100, 4) and out["scores"].shape == (1, 100)
    assert model.nms_thresh == 0.3 and model.context_padding == 16 and model.crop_size == 227
