"""Issue 19's acceptance run: a COCO folder of real photographs (non-contiguous category ids,
more instances than `max_boxes`, a crowd region, images of different sizes and modes) trained
briefly with Mask R-CNN and evaluated; its results file scored by pycocotools against the
folder's own `instances_val.json` equals the logged `bbox/*` and `segm/*` metrics. Box-only
training never decodes a polygon."""

import importlib
import json
import os

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from jaxvision.data import load_splits
from jaxvision.metrics.coco import STAT_NAMES
from jaxvision.train import train_and_evaluate
from tests.data.coco_photos import CATEGORIES, write_coco_photos
from tests.train.conftest import records
from tests.train.test_detector_configs import DETECTORS


def _config(name: str, root, data_dir: str):
    config = importlib.import_module(f"configs.{name}").get_config()
    config.unlock()
    config.model_kwargs.update(DETECTORS[name][0])
    config.model_kwargs.box_score_thresh = 0.0  # untrained: keep detections to score
    config.dataset = f"coco:{root}"
    config.data.update(dict(data_dir=data_dir, max_boxes=4, min_size=96, max_size=128))
    config.train.update(dict(steps=2, batch_size=8, eval_batch_size=8, log_every=1,
                             eval_every=100, checkpoint_every=100))
    config.optimizer.warmup_steps = 1
    return config


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos") / "coco"
    return root, write_coco_photos(str(root), degenerate=True)


@pytest.mark.slow
def test_mask_rcnn_run_rescored_against_the_users_file(folder, tmp_path, data_dir):
    root, data = folder
    user_file = os.path.join(root, "annotations", "instances_val.json")
    # the degenerate polygon (train annotation 99) stops a run that decodes masks, by name
    with pytest.raises(ValueError, match="annotation id 99: polygon with 2 points, expected >= 3"):
        load_splits(f"coco:{root}", _config("mask_rcnn", root, data_dir).data)
    del data["train"]["annotations"][-1]
    with open(os.path.join(root, "annotations", "instances_train.json"), "w") as f:
        json.dump(data["train"], f)
    final = train_and_evaluate(_config("mask_rcnn", root, data_dir), str(tmp_path))
    eval_dir = tmp_path / "eval" / "2"
    with open(eval_dir / "coco_gt.json") as f:
        assert json.load(f) == data["val"]  # every instance, the crowd region, the file's ids
    with open(eval_dir / "coco_instances_results.json") as f:
        results = json.load(f)
    sizes = {img["id"]: [img["height"], img["width"]] for img in data["val"]["images"]}
    assert {r["image_id"] for r in results} == set(sizes)
    assert {r["category_id"] for r in results} <= {c["id"] for c in CATEGORIES}
    assert all(r["segmentation"]["size"] == sizes[r["image_id"]] for r in results)
    gt = COCO(user_file)
    for iou_type in ("bbox", "segm"):
        dt = gt.loadRes([{k: v for k, v in r.items() if k != "bbox" or iou_type == "bbox"}
                         for r in results])
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        for name, value in zip(STAT_NAMES, ev.stats, strict=True):
            assert final[f"{iou_type}/{name}"] == value, (iou_type, name)
    logged = [r for r in records(str(tmp_path)) if r["split"] == "test"][-1]
    assert logged["eval/gt_instances"] == 12 and logged["eval/images"] == 4


@pytest.mark.slow
def test_box_only_training_never_decodes_polygons(folder, tmp_path, data_dir):
    root, _ = folder
    write_coco_photos(str(root), degenerate=True)
    final = train_and_evaluate(_config("faster_rcnn", root, data_dir), str(tmp_path))
    assert "bbox/AP" in final and "segm/AP" not in final
