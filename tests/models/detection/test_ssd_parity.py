"""SSD300 against torchvision's ssd300_vgg16 with the same (imported) weights: default boxes,
detections (boxes, scores, labels, order) and the train-mode loss dict.

The float32 noise, measured the same way (torchvision's float32 run against its float64 run on
the same weights and image, torch 2.13.0): class logits 8.4e-6, detection scores 3.6e-7, boxes
3.9e-5 px, labels identical. test_parity_f64.py holds the same stages at 1e-9 in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection.image_list import ImageList

from jaxvision.models import get_model
from jaxvision.models.ssd import SSD300
from jaxvision.weights import StateDictMismatchError, from_torchvision
from tests import torchvision_ops

torchvision_ops.register()

K = 5


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    tm = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None,
                                                   num_classes=K).eval()
    # the images fed are already normalised: make torchvision's transform the identity
    tm.transform.image_mean = [0.0, 0.0, 0.0]
    tm.transform.image_std = [1.0, 1.0, 1.0]
    with torch.no_grad():  # sharper class scores: many distinct labels and NMS work
        for conv in tm.head.classification_head.module_list:
            conv.weight.mul_(3.0)
    variables = from_torchvision("ssd300_vgg16", tm.state_dict())
    return tm, get_model("ssd300", num_classes=K), variables


@pytest.mark.slow
def test_default_boxes_equal_torchvision(pair):
    tm, model, _ = pair
    ours = np.asarray(model.default_boxes((300, 300)))
    assert ours.shape == (8732, 4)
    maps = [torch.zeros(1, 1, s, s) for s in (38, 19, 10, 5, 3, 1)]
    ref = tm.anchor_generator(ImageList(torch.zeros(1, 3, 300, 300), [(300, 300)]), maps)[0]
    np.testing.assert_allclose(ours, ref.numpy(), rtol=0, atol=1e-4)


def test_parameter_count_and_importer_errors(pair):
    tm, _, variables = pair
    n = sum(np.size(p) for p in jax.tree.leaves(variables["params"]))
    assert n == sum(p.numel() for p in tm.parameters())
    # torchvision's documented size of the 91-class model
    shapes = jax.eval_shape(lambda: get_model("ssd300").init(
        jax.random.key(0), jnp.zeros((1, 300, 300, 3))))
    assert sum(np.prod(p.shape) for p in jax.tree.leaves(shapes)) == 35_641_826
    sd = dict(tm.state_dict())
    sd.pop("backbone.scale_weight")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(StateDictMismatchError, match="backbone.scale_weight"):
        from_torchvision("ssd300_vgg16", sd)


@pytest.mark.slow
def test_detections_equal_torchvision(pair):
    tm, model, variables = pair
    x = torch.randn(1, 3, 300, 300, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feats = list(tm.backbone(x).values())
        head = tm.head(feats)
        anchors = tm.anchor_generator(ImageList(x, [(300, 300)]), feats)
        ref = tm.postprocess_detections(head, anchors, [(300, 300)])[0]
    out = jax.jit(model.apply)(variables, jnp.asarray(x.permute(0, 2, 3, 1).numpy()))
    np.testing.assert_allclose(np.asarray(out["cls_logits"]), head["cls_logits"].numpy(),
                               rtol=0, atol=1e-4)
    n = len(ref["scores"])
    assert n == 200 and bool(out["valid"].all())
    assert len(set(ref["labels"].tolist())) >= 3  # several classes compete
    np.testing.assert_array_equal(np.asarray(out["labels"][0]), ref["labels"].numpy())
    np.testing.assert_allclose(np.asarray(out["scores"][0]), ref["scores"].numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["boxes"][0]), ref["boxes"].numpy(), atol=2e-3)

    # a higher threshold leaves fewer than 200: the rest is padding (same head outputs). It sits
    # midway in a gap of the scores wider than the two frameworks' ~1e-5 differences, so both
    # keep the same detections (the strict `>` at the threshold is pinned in test_ssd_model)
    scores = ref["scores"].numpy()
    k = next(i for i in range(100, 200) if scores[i - 1] - scores[i] > 1e-4)
    thresh = float(scores[k - 1] + scores[k]) / 2
    tm.score_thresh = thresh
    try:
        ref = tm.postprocess_detections(head, anchors, [(300, 300)])[0]
    finally:
        tm.score_thresh = 0.01
    det = model.clone(score_thresh=thresh).apply(
        variables, out["cls_logits"][0], out["bbox_regression"][0],
        jnp.asarray(anchors[0].numpy()), (300, 300), method=SSD300.postprocess)
    n = len(ref["scores"])
    assert 0 < n < 200 and int(det["valid"].sum()) == n and not det["valid"][n:].any()
    assert float(ref["scores"].min()) > thresh
    np.testing.assert_array_equal(np.asarray(det["labels"][:n]), ref["labels"].numpy())
    np.testing.assert_allclose(np.asarray(det["scores"][:n]), ref["scores"].numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(det["boxes"][:n]), ref["boxes"].numpy(), atol=2e-3)
    assert not det["labels"][n:].any() and not det["scores"][n:].any()


@pytest.mark.slow
def test_train_losses_equal_torchvision(pair):
    tm, model, variables = pair
    x = torch.randn(2, 3, 300, 300, generator=torch.Generator().manual_seed(2))
    boxes = torch.tensor([[20.0, 30.0, 120.0, 150.0], [150.0, 40.0, 290.0, 100.0],
                          [100.0, 200.0, 130.0, 215.0]])
    labels = torch.tensor([1, 4, 2])
    tm.train()
    try:
        with torch.no_grad():
            ref = tm(list(x), [{"boxes": boxes, "labels": labels},
                               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=int)}])
    finally:
        tm.eval()
    pad_boxes = np.zeros((2, 4, 4), np.float32)
    pad_boxes[0, :3] = boxes.numpy()
    pad_labels = np.zeros((2, 4), np.int32)
    pad_labels[0, :3] = labels.numpy()
    targets = {"boxes": pad_boxes, "labels": pad_labels, "boxes_valid": pad_labels > 0}
    out = jax.jit(lambda v, im, t: model.apply(
        v, im, train=True, targets=t,
        rngs={"dropout": jax.random.key(1), "sample": jax.random.key(2)}))(
        variables, jnp.asarray(x.permute(0, 2, 3, 1).numpy()), targets)
    assert set(out["losses"]) == {"bbox_regression", "classification"}
    for term, value in out["losses"].items():
        assert value.dtype == jnp.float32 and value.shape == ()
        np.testing.assert_allclose(float(value), float(ref[term]), rtol=1e-4)
