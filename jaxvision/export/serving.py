"""The serving function of a run: uint8 images [B, H, W, 3] at the run's eval input size in, the
task's predictions in those pixels out, everything in between traced (normalisation, padding to
the network's static size, model, postprocessing, Mask R-CNN's mask paste).

Outputs (DESIGN.md, "Export"): classification `probabilities [B, K]` float32; segmentation
`labels [B, H, W]` int32 (-1 where a valid-padding model predicts nothing); detection `boxes
[B, D, 4]` float32 xyxy input pixels, `scores [B, D]` float32, `labels [B, D]` int32 (dataset
category ids), `valid [B, D]` bool, and `masks [B, D, H, W]` uint8 for instance segmentation.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.data import transforms
from jaxvision.ops.masks import paste_masks_in_image


@contextlib.contextmanager
def traced_as(platform: str):
    """While tracing, `jax.default_backend()` answers `platform`: jaxvision's layers and ops pick
    their CPU-only forms (1x1 convs as matmuls, shifted depthwise convs, gather RoI pooling)
    when it says 'cpu' and the library forms otherwise ('gpu', 'tpu')."""
    original = jax.default_backend
    jax.default_backend = lambda: platform
    try:
        yield
    finally:
        jax.default_backend = original


def input_size(config) -> tuple[int, int]:
    """(H, W) of the images the serving function takes: the size the run's eval transform
    leaves unchanged. 'fixed' resize: fixed_size square; 'min_max': (min_size, max_size), the
    widest landscape image the rule keeps as is (min_size <= max_size); otherwise image_size
    square (with crop 'random_resized', the centre crop itself: resize and crop beforehand)."""
    data = config.data
    if data.resize == "fixed":
        return data.fixed_size, data.fixed_size
    if data.resize == "min_max":
        if data.min_size > data.max_size:
            raise ValueError(f"config.data.min_size: expected at most max_size "
                             f"({data.max_size}) for export, got {data.min_size}")
        return data.min_size, data.max_size
    return data.image_size, data.image_size


def category_ids(task, label_map) -> np.ndarray:
    """int32 [K]: the dataset id of each of the task's class indices (detection: 0 for the
    background, then `label_map` (dataset.json) when the run has one; otherwise the index)."""
    count = len(task.class_names)
    if label_map and len(label_map) == count - 1:
        return np.asarray([0, *label_map], np.int32)
    if label_map:
        raise ValueError(f"dataset.json label_map: expected {count - 1} ids (one per class "
                         f"after the background), got {len(label_map)}")
    return np.arange(count, dtype=np.int32)


def serving_function(config, task, model, ids: np.ndarray):
    """`serve(variables, images)`: uint8 images [B, H, W, 3] (H, W = `input_size(config)`) ->
    the output dict (module docstring), for one trace (under `traced_as` to pick the
    platform's forms); `ids` [K] int32, the dataset id of each class index."""
    from jaxvision.data import make_transforms

    model = model.clone(axis_name=None) if hasattr(model, "axis_name") else model
    height, width = input_size(config)
    padded = make_transforms(config, task.fields)[1].static_size or (height, width)
    mean, std = (jnp.asarray(v, jnp.float32) for v in (transforms.IMAGENET_MEAN,
                                                       transforms.IMAGENET_STD))

    def serve(variables, images):
        x = (images.astype(jnp.float32) - mean) / std
        x = jnp.pad(x, ((0, 0), (0, padded[0] - height), (0, padded[1] - width), (0, 0)))
        sizes = jnp.broadcast_to(jnp.asarray([height, width], jnp.int32), (x.shape[0], 2))
        out = task.predict(model, variables, {"image": x, "image_size": sizes})
        if "logits" in out:
            return {"probabilities": jax.nn.softmax(out["logits"].astype(jnp.float32), -1)}
        if "classes" in out:
            return {"labels": _frame(out["classes"], padded)[:, :height, :width]}
        result = {"boxes": out["boxes"].astype(jnp.float32),
                  "scores": out["scores"].astype(jnp.float32),
                  "labels": jnp.asarray(ids)[out["labels"]], "valid": out["valid"].astype(bool)}
        if "masks" in out:
            pasted = paste_masks_in_image(out["masks"].astype(jnp.float32), result["boxes"],
                                          height, width)
            result["masks"] = (pasted > task.mask_threshold).astype(jnp.uint8)
        return result

    return serve


def _frame(classes, size):
    """classes [B, h, w] centred in a -1 frame [B, *size] (a valid-padding model's output)."""
    top, left = (size[0] - classes.shape[1]) // 2, (size[1] - classes.shape[2]) // 2
    if (top, left) == (0, 0) and classes.shape[1:] == tuple(size):
        return classes
    frame = jnp.full((classes.shape[0], *size), -1, jnp.int32)
    return jax.lax.dynamic_update_slice(frame, classes.astype(jnp.int32), (0, top, left))
