"""Faster R-CNN on aspect-ratio buckets: the non-square padded shapes (a landscape and a portrait
analogue of COCO's 800 x 1,344 and 1,344 x 800 at min/max 64 / 107) give the square's detections
in the original frame, and the train step compiles once per bucket.

Padding is exactly inert only where no feature sees it: a backbone whose every receptive field
is its own 16-pixel cell (VGG convs reduced to their centre tap, no biases) and anchors too small
to reach the content from a padded cell (squares of 6 and 8 px, 4 px or more below it: their
clipped boxes are empty). Then any
confusion of height and width in anchors, clipping, RoI scales or the rescale to the original
frame shows as a difference. (With a full receptive field the features near the content's edge
see the padding, here as in torchvision's batches padded to their largest image.)"""

import chex
import jax
import numpy as np
import pytest
import skimage.data
from flax import traverse_util
from scipy.optimize import linear_sum_assignment

from configs import faster_rcnn
from jaxvision.data import buckets, make_transforms
from jaxvision.models import get_model
from jaxvision.tasks import get_task
from jaxvision.tasks.original_frame import boxes_to_original
from jaxvision.train.loop import blank_example
from jaxvision.train.optim import build_optimizer
from jaxvision.train.state import create_train_state
from jaxvision.train.step import make_train_step


def _setup():
    config = faster_rcnn.get_config()
    config.unlock()
    config.model_kwargs.update(dict(backbone_kwargs=dict(widths=(8, 8, 16, 16, 32)),
                                    box_score_thresh=0.0, anchor_sizes=((6, 8),),
                                    aspect_ratios=((1.0,),)))
    config.data.update(dict(resize="min_max", min_size=64, max_size=107, pad_size=0,
                            aspect_buckets=(1.0,)))
    task = get_task("detection", ("background", "cat", "face"))
    model = get_model(config.model, num_classes=3, **config.model_kwargs)
    return config, task, model


def _inert_backbone(variables):
    """Backbone kernels cut to their centre tap (x3), biases zero."""
    def inert(path, value):
        value = np.asarray(value)
        if path[0] != "backbone":
            return value
        out = np.zeros_like(value)
        if path[-1] == "kernel":
            out[1, 1] = 3 * value[1, 1]
        return out
    flat = traverse_util.flatten_dict(variables["params"])
    return {**variables, "params": traverse_util.unflatten_dict(
        {k: inert(k, v) for k, v in flat.items()})}


def _example(config, image):
    example = blank_example(config, image)
    h, w = image.shape[:2]
    example.update(boxes=np.array([[0.1 * w, 0.2 * h, 0.7 * w, 0.9 * h]], np.float32),
                   labels=np.array([0]), iscrowd=np.zeros(1, bool))
    return example


def _batch(example):
    return {k: np.asarray(v)[None] for k, v in example.items()}


def _detections(out, example, image):
    """[D, 6] valid detections: xyxy in the original frame, score, label (scaled to count in a
    max-difference); those tied with the lowest score (at detections_per_img's cut) left out."""
    valid = out["valid"][0]
    boxes = boxes_to_original(out["boxes"][0][valid], example["image_size"],
                              example["orig_size"])
    assert (boxes[:, 2] <= image.shape[1] + 1e-3).all() and (
        boxes[:, 3] <= image.shape[0] + 1e-3).all()
    scores = out["scores"][0][valid]
    keep = scores > scores.min() + 1e-5
    return np.concatenate([boxes, scores[:, None] * 1e3, out["labels"][0][valid, None] * 1e3],
                          1)[keep]


@pytest.mark.slow
def test_buckets_train_and_give_the_squares_detections():
    """Landscape image: the same detections (one-to-one, within 2e-3 px and 2e-6 in score) from
    its 64 x 128 bucket as from the 128 x 128 square. The train step, traced at most once per
    bucket, runs on the landscape and the portrait bucket (128 x 64)."""
    config, task, model = _setup()
    train_t, eval_t = make_transforms(config, task.fields)
    cat = skimage.data.chelsea()  # 300 x 451: 64 x 96 content
    example = _example(config, cat)
    square = eval_t(example, 0)
    landscape_t = buckets.bucket_transforms(eval_t, config.data.aspect_buckets)[1]
    bucketed = landscape_t(example, 0)
    assert square["image"].shape[:2] == (128, 128)
    assert bucketed["image"].shape[:2] == (64, 128)
    variables = _inert_backbone(jax.jit(lambda b: task.init(model, jax.random.key(0), b))(
        _batch(square)))
    predict = jax.jit(lambda v, b: task.predict(model, v, b))
    found = [_detections(jax.device_get(predict(variables, _batch(ex))), ex, cat)
             for ex in (square, bucketed)]
    assert len(found[0]) == len(found[1]) >= 10
    cost = np.abs(found[0][:, None] - found[1][None]).max(-1)
    rows, cols = linear_sum_assignment(cost)
    assert cost[rows, cols].max() < 2e-3, cost[rows, cols].max()

    train_bucket = buckets.bucket_transforms(train_t, config.data.aspect_buckets)
    portrait = np.ascontiguousarray(cat.swapaxes(0, 1))
    tx = build_optimizer(config.optimizer, config.train.steps)
    step = jax.jit(chex.assert_max_traces(make_train_step(model, task, tx), n=2))
    state = create_train_state(variables, tx)
    for k, (image, bucket) in enumerate(((cat, 1), (portrait, 0), (cat, 1))):
        batch = _batch(train_bucket[bucket](_example(config, image), k))
        assert batch["image"].shape[1:3] == [(128, 64), (64, 128)][bucket]
        state, metrics = step(state, batch, jax.random.key(1))
        assert np.isfinite(float(metrics["loss"]))
    chex.clear_trace_counter()
