"""Detection task: weighted loss terms, predictions, and the evaluator's files re-scored with
pycocotools directly (as anyone re-scoring a run would)."""

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste

from jaxvision.metrics import voc_eval
from jaxvision.tasks import get_task

NAMES = ("circle", "square", "triangle")


class TinyDetector(nn.Module):
    """D learnable boxes with class logits; train mode returns two loss terms."""

    num_classes: int
    detections: int = 5
    axis_name: str | None = None  # the trainer clones models with axis_name=None
    masks: bool = False  # also 28x28 mask probabilities per detection

    @nn.compact
    def __call__(self, images, train: bool, targets=None, image_sizes=None):
        boxes = self.param("boxes", nn.initializers.uniform(10.0), (self.detections, 4))
        boxes = jnp.concatenate([boxes[:, :2], boxes[:, :2] + 1 + jnp.abs(boxes[:, 2:])], -1)
        logits = self.param("logits", nn.initializers.normal(1.0),
                            (self.detections, self.num_classes))
        logits = logits + jnp.mean(images)  # depends on the input
        b = images.shape[0]
        if train:
            first = targets["boxes"][:, 0]
            valid = targets["boxes_valid"][:, 0].astype(jnp.float32)
            box_term = jnp.sum(jnp.mean((boxes[None, 0] - first) ** 2, -1) * valid)
            cls_term = jnp.mean(jax.nn.logsumexp(logits, -1))
            return {"losses": {"box": box_term, "cls": cls_term}}
        probs = jax.nn.softmax(logits[:, 1:], -1)
        sizes = image_sizes.astype(jnp.float32)
        clip = jnp.stack([sizes[:, 1], sizes[:, 0], sizes[:, 1], sizes[:, 0]], -1)
        out = {"boxes": jnp.minimum(boxes[None], clip[:, None]),
               "scores": jnp.broadcast_to(jnp.max(probs, -1), (b, self.detections)),
               "labels": jnp.broadcast_to(jnp.argmax(probs, -1) + 1, (b, self.detections)),
               "valid": jnp.broadcast_to(jnp.arange(self.detections) < 4, (b, self.detections))}
        if self.masks:
            logits = self.param("mask_logits", nn.initializers.normal(3.0), (28, 28))
            out["masks"] = jnp.broadcast_to(jax.nn.sigmoid(logits), (b, self.detections, 28, 28))
        return out


def _batch(rng, b=2, n=3, size=32):
    boxes = rng.uniform(0, 12, (b, n, 4)).astype(np.float32)
    boxes[..., 2:] += boxes[..., :2] + 2
    return {"image": jnp.asarray(rng.normal(size=(b, size, size, 3)), jnp.float32),
            "boxes": jnp.asarray(boxes), "labels": jnp.asarray(rng.integers(1, 4, (b, n))),
            "boxes_valid": jnp.asarray(np.arange(n)[None] < np.array([[2], [0]])),
            "iscrowd": jnp.zeros((b, n), bool), "image_id": jnp.arange(b),
            "image_size": jnp.asarray([[size, size], [size - 4, size]])}


@pytest.mark.slow
def test_loss_weights_terms_and_logs_each():
    task = get_task("detection", NAMES, loss_weights={"box": 2.0})
    assert task.class_names == ("background", *NAMES) and "boxes" in task.fields
    model = TinyDetector(task.num_classes)
    batch = _batch(np.random.default_rng(0))
    variables = task.init(model, jax.random.key(0), batch)
    loss, (metrics, _) = task.loss(model, variables, batch, jax.random.key(1))
    terms = model.apply(variables, batch["image"], train=True, targets=batch)["losses"]
    assert float(terms["box"]) > 0 and float(terms["cls"]) > 0
    np.testing.assert_allclose(loss, 2.0 * terms["box"] + terms["cls"], rtol=1e-6)
    np.testing.assert_allclose(metrics["loss_box"], terms["box"], rtol=1e-6)
    assert set(metrics) == {"loss", "loss_box", "loss_cls"}
    bad = get_task("detection", NAMES, loss_weights={"mask": 1.0})
    with pytest.raises(ValueError, match=r"loss_weights: expected names among .*'box', 'cls'"):
        bad.loss(model, variables, batch, jax.random.key(1))
    with pytest.raises(ValueError, match="loss_weights: expected weights >= 0"):
        get_task("detection", NAMES, loss_weights={"box": -1.0})


def test_predict_clips_to_each_image_size():
    task = get_task("detection", NAMES)
    model = TinyDetector(task.num_classes)
    batch = _batch(np.random.default_rng(1), size=8)
    variables = task.init(model, jax.random.key(0), batch)
    out = task.predict(model, variables, batch)
    assert set(out) == {"boxes", "scores", "labels", "valid"}
    assert float(out["boxes"][1, :, 1::2].max()) <= 4.0  # second image: 4 rows inside padding


class ProposalEcho(nn.Module):
    """Returns the proposals it was given as its detections (a region-based detector's call)."""

    num_classes: int

    @nn.compact
    def __call__(self, images, train: bool, targets=None, proposals=None, proposals_valid=None):
        self.param("unused", nn.initializers.zeros, (1,))
        b, p = proposals.shape[:2]
        return {"boxes": proposals, "scores": jnp.ones((b, p)), "valid": proposals_valid,
                "labels": jnp.ones((b, p), jnp.int32)}


def test_region_detectors_receive_the_batch_proposals_and_no_image_sizes():
    task = get_task("detection", NAMES)
    model = ProposalEcho(task.num_classes)
    batch = _batch(np.random.default_rng(3))
    batch["proposals"] = jnp.asarray(np.random.default_rng(4).uniform(0, 9, (2, 6, 4)))
    batch["proposals_valid"] = jnp.asarray(np.arange(6)[None] < np.array([[6], [2]]))
    variables = task.init(model, jax.random.key(0), batch)
    out = task.predict(model, variables, batch)
    np.testing.assert_array_equal(out["boxes"], batch["proposals"])
    np.testing.assert_array_equal(out["valid"], batch["proposals_valid"])


def _random_detections(rng, n_images=5, d=6, n=4, size=40, masks=False):
    """Two padded batches of predictions and ground truth, plus the same data unpadded."""
    preds, gts, plain_p, plain_g = [], [], [], []
    for start in (0, 3):
        count = min(3, n_images - start)
        boxes = rng.uniform(0, 25, (count, d, 4)).astype(np.float32)
        boxes[..., 2:] += boxes[..., :2] + rng.uniform(2, 12, (count, d, 2))
        gt = boxes[:, :n].copy() + rng.normal(0, 1.5, (count, n, 4)).astype(np.float32)
        gt[..., 2:] = np.maximum(gt[..., 2:], gt[..., :2] + 1)
        p = {"boxes": boxes, "scores": rng.random((count, d)).astype(np.float32),
             "labels": rng.integers(1, 4, (count, d)).astype(np.int32),
             "valid": rng.random((count, d)) < 0.8}
        g = {"boxes": gt, "labels": p["labels"][:, :n].copy(),
             "boxes_valid": rng.random((count, n)) < 0.75, "iscrowd": rng.random((count, n)) < 0.1,
             "image_id": np.arange(start, start + count) * 7 + 1,
             "image_size": np.tile([size - 8, size], (count, 1))}
        if masks:  # box-relative predicted masks; ground truth: the first n pasted (torchvision)
            p["masks"] = rng.random((count, d, 7, 7)).astype(np.float32)
            pasted = np.stack([tv_paste(torch.tensor(p["masks"][j, :n, None]),
                                        torch.tensor(boxes[j, :n]), (size - 8, size))[:, 0].numpy()
                               for j in range(count)])
            flip = rng.random((count, n, size - 8, size)) < 0.1
            g["masks"] = np.zeros((count, n, size, size), np.uint8)  # padded below the image
            g["masks"][:, :, :size - 8] = (pasted > 0.5) ^ flip
        preds.append(p)
        gts.append(g)
        for i in range(count):
            keep, real = p["valid"][i], g["boxes_valid"][i]
            plain_p.append({k: p[k][i][keep] for k in ("boxes", "scores", "labels")})
            plain_g.append({"boxes": g["boxes"][i][real], "labels": g["labels"][i][real],
                            "difficult": g["iscrowd"][i][real]})
    return preds, gts, plain_p, plain_g


@pytest.mark.parametrize("masks", [False, True])
def test_evaluator_files_rescore_with_pycocotools(tmp_path, masks):
    task = get_task("detection", NAMES, masks=masks)
    preds, gts, plain_p, plain_g = _random_detections(np.random.default_rng(2), masks=masks)
    evaluator = task.evaluator(str(tmp_path))
    for p, g in zip(preds, gts, strict=True):
        evaluator.update(p, g)
    metrics = evaluator.result()
    gt = COCO(str(tmp_path / "coco_gt.json"))
    assert {c["id"]: c["name"] for c in gt.loadCats(gt.getCatIds())} == {1: "circle",
                                                                         2: "square",
                                                                         3: "triangle"}
    assert sorted(gt.getImgIds()) == [1, 8, 15, 22, 29]
    assert gt.imgs[8]["height"] == 32 and gt.imgs[8]["width"] == 40
    with open(tmp_path / "coco_instances_results.json") as f:
        results = json.load(f)
    assert len(results) == sum(len(p["boxes"]) for p in plain_p)
    for iou_type in ("bbox", "segm") if masks else ("bbox",):
        dt = gt.loadRes([{k: v for k, v in r.items() if k != "bbox" or iou_type == "bbox"}
                         for r in results])
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        assert metrics[f"{iou_type}/AP"] == pytest.approx(ev.stats[0], abs=1e-12)
        assert metrics[f"{iou_type}/AP50"] == pytest.approx(ev.stats[1], abs=1e-12)
        assert metrics[f"{iou_type}/AR100"] == pytest.approx(ev.stats[8], abs=1e-12)
        assert 0.0 < metrics[f"{iou_type}/AP50"] < 1.0
    assert metrics["voc07/mAP"] == voc_eval(plain_p, plain_g, use_07_metric=True)["map"]
    assert metrics["voc/mAP"] == voc_eval(plain_p, plain_g)["map"]
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
