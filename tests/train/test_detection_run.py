"""The trainer on detection data: a tiny learnable detector trained and evaluated end to end,
under jit-mesh and pmap, its COCO files checked against the dataset and re-scored with
pycocotools."""

import json
import os

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from configs.detection_shapes import detection_shapes
from jaxvision import models
from jaxvision.data import load_splits
from jaxvision.train import loop, train_and_evaluate
from jaxvision.train.config import base_config
from tests.tasks.test_detection import TinyDetector
from tests.train.conftest import records


def tiny_detection_config(data_dir: str, parallel: str, masks: bool = False):
    config = base_config()
    config.model, config.task, config.parallel = "tiny_detector", "detection", parallel
    config.task_kwargs.masks = masks
    detection_shapes(config, recipe="rcnn")
    config.data.update(dict(data_dir=data_dir, image_size=32, min_size=32, max_size=32))
    config.data.builders.shapes.update(dict(num_train=16, num_test=10))
    config.train.update(dict(steps=2, batch_size=8, eval_batch_size=8, log_every=1,
                             eval_every=100, checkpoint_every=100))
    config.optimizer.warmup_steps = 1
    return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    patch = pytest.MonkeyPatch()
    patch.setattr(loop, "get_model", lambda name, num_classes, **kw: TinyDetector(
        num_classes, masks=masks))
    known = models.list_models()
    patch.setattr(models, "list_models", lambda: [*known, "tiny_detector"])  # validate_config
    out = {}
    try:
        for name, parallel, masks in (("jit", "jit", False), ("pmap", "pmap", False),
                                      ("masks", "jit", True)):
            workdir = str(tmp_path_factory.mktemp(name))
            config = tiny_detection_config(data_dir, parallel, masks)
            out[name] = (config, workdir, train_and_evaluate(config, workdir))
    finally:
        patch.undo()
    return out


@pytest.mark.slow
def test_metrics_logged_and_equal_under_jit_and_pmap(runs):
    config, workdir, final = runs["jit"]
    names = {f"bbox/{k}" for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10",
                                   "AR100", "ARs", "ARm", "ARl")} | {"voc07/mAP", "voc/mAP"}
    assert names <= set(final)
    train = [r for r in records(workdir) if r["split"] == "train"]
    assert {"loss", "loss_box", "loss_cls", "dropped_boxes"} <= set(train[-1])
    pmap_final = runs["pmap"][2]
    for name in names:  # NaN (no class qualifies) must match NaN too
        np.testing.assert_allclose(pmap_final[name], final[name], rtol=1e-6, atol=1e-7)


def test_ground_truth_file_holds_the_test_split_and_rescores(runs):
    config, workdir, final = runs["jit"]
    eval_dir = os.path.join(workdir, "eval", "2")
    gt = COCO(os.path.join(eval_dir, "coco_gt.json"))
    test = load_splits(config.dataset, config.data).test
    assert sorted(gt.getImgIds()) == list(range(len(test)))  # padding rows dropped
    for i in range(len(test)):
        boxes = np.asarray(test[i]["boxes"], np.float32)
        labels = np.asarray(test[i]["labels"]) + 1
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[i]))
        xywh = np.array([a["bbox"] for a in anns]).reshape(-1, 4)
        np.testing.assert_allclose(xywh[:, :2], boxes[:, :2], atol=1e-4)
        np.testing.assert_allclose(xywh[:, 2:], boxes[:, 2:] - boxes[:, :2], atol=1e-4)
        assert [a["category_id"] for a in anns] == labels.tolist()
    assert {c["name"] for c in gt.loadCats(gt.getCatIds())} <= {"circle", "square", "triangle"}
    with open(os.path.join(eval_dir, "coco_instances_results.json")) as f:
        results = json.load(f)
    assert results and {r["image_id"] for r in results} == set(range(len(test)))
    ev = COCOeval(gt, gt.loadRes(results), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    logged = [r for r in records(workdir) if r["split"] == "test"][-1]
    assert logged["bbox/AP"] == pytest.approx(ev.stats[0], abs=1e-12)
    assert logged["bbox/AR100"] == pytest.approx(ev.stats[8], abs=1e-12)


def test_instance_masks_are_pasted_written_and_scored(runs):
    config, workdir, final = runs["masks"]
    assert {"segm/AP", "segm/AP50", "bbox/AP"} <= set(final)
    eval_dir = os.path.join(workdir, "eval", "2")
    gt = COCO(os.path.join(eval_dir, "coco_gt.json"))
    with open(os.path.join(eval_dir, "coco_instances_results.json")) as f:
        results = json.load(f)
    assert all(r["segmentation"]["size"] == [32, 32] for r in results)
    assert all("segmentation" in a for a in gt.loadAnns(gt.getAnnIds()))
    segm = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    ev = COCOeval(gt, gt.loadRes(segm), "segm")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert final["segm/AP"] == pytest.approx(ev.stats[0], abs=1e-12)
