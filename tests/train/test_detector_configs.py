"""Every detector config runs through the trainer: two steps on tiny shapes detection data
with its real model (narrowed), a finite multitask loss with each term logged, and a detection
evaluation with the COCO/VOC metric names, then predictions on a photograph from the workdir
alone. R-CNN and Fast R-CNN get selective-search proposals from the data, and the predict CLI
computes them for a new image."""

import importlib
import math

import numpy as np
import pytest

from jaxvision.train import train_and_evaluate
from tests.train.conftest import records

# config -> (model_kwargs overrides that shrink it, the loss terms it logs)
RCNN_TERMS = {"rpn_objectness", "rpn_box", "classifier", "box_reg"}
DETECTORS = {
    "faster_rcnn": (dict(backbone_kwargs=dict(widths=(8, 8, 16, 16, 32))), RCNN_TERMS),
    "mask_rcnn": (dict(backbone_kwargs=dict(widths=(8, 8, 16, 16, 32)), mask_layers=(16,) * 4,
                       mask_dim_reduced=16), RCNN_TERMS | {"mask"}),
    "fast_rcnn": (dict(backbone_kwargs=dict(widths=(8, 8, 16, 16, 32))),
                  {"classifier", "box_reg"}),
    "rcnn": (dict(backbone_widths=(8, 8, 8, 8, 8), crop_size=32, fc_dim=16),
             {"finetune", "svm", "box_reg"}),
    "ssd300": (dict(width=0.125), {"bbox_regression", "classification"}),
    "yolov3": (dict(width=0.125, depths=(1, 1, 1, 1, 1)),
               {"xy", "wh", "objectness", "classification"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_config_trains_and_evaluates(name, tmp_path, data_dir):
    config = importlib.import_module(f"configs.{name}").get_config()
    shrink, terms = DETECTORS[name]
    config.unlock()
    config.model_kwargs.update(shrink)
    config.data.data_dir = data_dir
    config.data.builders.shapes.update(dict(num_train=8, num_test=4))
    config.train.update(dict(steps=2, batch_size=8, eval_batch_size=8, log_every=1,
                             eval_every=100, checkpoint_every=100))
    config.optimizer.warmup_steps = 1
    config.data.proposals.update(dict(max_proposals=24, ks=(100,)))
    final = train_and_evaluate(config, str(tmp_path))
    train = [r for r in records(str(tmp_path)) if r["split"] == "train"]
    assert {f"loss_{t}" for t in terms} <= set(train[-1])
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in train)
    assert {"bbox/AP", "bbox/AP50", "voc07/mAP", "voc/mAP"} <= set(final)
    assert ("segm/AP" in final) == config.task_kwargs.get("masks", False)
    _predict_on_a_photograph(config, str(tmp_path))


def _predict_on_a_photograph(config, workdir):
    """The run reopened from its workdir alone predicts on a grayscale photograph of another
    size: detections in its own pixels (masks at its size), R-CNN proposals computed for it."""
    import skimage.data

    from jaxvision.predict import load_run, predict_image

    trainer, state = load_run(workdir)
    assert trainer.splits is None  # no dataset opened
    image = np.repeat(skimage.data.coins()[::3, ::2, None], 3, axis=2)  # 101 x 192
    out = predict_image(trainer, state, image)
    d = config.model_kwargs.get("box_detections_per_img", out["boxes"].shape[0])
    assert out["boxes"].shape == (d, 4) and np.isfinite(out["boxes"]).all()
    valid = out["boxes"][out["valid"]]
    assert (valid >= 0).all() and (valid[:, [0, 2]] <= 192 + 1e-3).all()
    assert (valid[:, [1, 3]] <= 101 + 1e-3).all()
    if config.task_kwargs.get("masks", False):
        assert out["masks"].shape == (d, 101, 192) and out["masks"].dtype == bool
