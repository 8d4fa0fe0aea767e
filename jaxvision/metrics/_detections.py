"""Validation of per-image detection dicts (host numpy) shared by the VOC and COCO metrics.

predictions: one dict per image with boxes [N, 4] xyxy absolute, scores [N], labels [N] (and
masks [N, H, W] for segm); ground_truth: one dict per image with boxes [M, 4], labels [M] and
optional per-box flags (difficult [M], iscrowd [M]), masks [M, H, W], height, width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def check_lists(predictions, ground_truth) -> None:
    """Both are sequences of dicts with one entry per image, of the same length."""
    for name, value in (("predictions", predictions), ("ground_truth", ground_truth)):
        if isinstance(value, Mapping) or not isinstance(value, Sequence):
            raise ValueError(f"{name} must be a list with one dict per image, "
                             f"got {type(value).__name__}")
    if len(predictions) != len(ground_truth):
        raise ValueError("predictions and ground_truth must have the same length (one dict per "
                         f"image): got {len(predictions)} and {len(ground_truth)}")


def _where(list_name: str, index: int, key: str) -> str:
    return f"{list_name}[{index}]['{key}']"


def _get(item, list_name: str, index: int, key: str):
    if not isinstance(item, Mapping):
        raise ValueError(f"{list_name}[{index}] must be a dict, got {type(item).__name__}")
    if key not in item:
        raise ValueError(f"{list_name}[{index}] has no '{key}' field "
                         f"(fields given: {sorted(item)})")
    return np.asarray(item[key])


def get_boxes(item, list_name: str, index: int, check_order: bool) -> np.ndarray:
    """boxes [K, 4] float64 xyxy; an empty array of any shape with size 0 reads as [0, 4]."""
    boxes = _get(item, list_name, index, "boxes")
    if boxes.size == 0:
        return np.zeros((0, 4), np.float64)
    where = _where(list_name, index, "boxes")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{where} must have shape [K, 4] (xyxy), got {boxes.shape}")
    if not np.issubdtype(boxes.dtype, np.number) or np.issubdtype(boxes.dtype, np.complexfloating):
        raise ValueError(f"{where} must be real numbers, got dtype {boxes.dtype}")
    boxes = boxes.astype(np.float64)
    if not np.isfinite(boxes).all():
        raise ValueError(f"{where} must be finite, got {boxes[~np.isfinite(boxes).all(1)][0]}")
    if check_order:
        bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if bad.any():
            k = int(np.argmax(bad))
            raise ValueError(f"{where} must satisfy x2 >= x1 and y2 >= y1 (xyxy), "
                             f"got box {k} = {boxes[k].tolist()}")
    return boxes


def get_vector(item, list_name: str, index: int, key: str, count: int, kind: str,
               default=None) -> np.ndarray:
    """A per-box field of shape [count]: kind 'float' (finite), 'int' or 'bool'.

    A missing field gives `default` broadcast to [count] when default is not None.
    """
    if default is not None and isinstance(item, Mapping) and key not in item:
        return np.full((count,), default)
    value = _get(item, list_name, index, key)
    where = _where(list_name, index, key)
    if value.size == 0 and count == 0:
        value = value.reshape(0)
    if value.shape != (count,):
        raise ValueError(f"{where} must have shape [{count}] (one per box of "
                         f"{_where(list_name, index, 'boxes')}), got {value.shape}")
    if value.dtype == np.bool_ or np.issubdtype(value.dtype, np.integer):
        numeric = True
    else:
        numeric = np.issubdtype(value.dtype, np.floating)
    if not numeric:
        raise ValueError(f"{where} must be numeric, got dtype {value.dtype}")
    if kind == "float":
        value = value.astype(np.float64)
        if not np.isfinite(value).all():
            raise ValueError(f"{where} must be finite, got {value[~np.isfinite(value)][0]}")
        return value
    if value.dtype != np.bool_ and not np.issubdtype(value.dtype, np.integer):
        if not (np.isfinite(value).all() and (value == np.round(value)).all()):
            raise ValueError(f"{where} must hold integers, got {value.tolist()}")
    if kind == "bool":
        if not np.isin(value, (0, 1)).all():
            raise ValueError(f"{where} must hold booleans (0 or 1), got {value.tolist()}")
        return value.astype(bool)
    return value.astype(np.int64)


def get_masks(item, list_name: str, index: int, count: int) -> np.ndarray:
    """masks [count, H, W] (any real dtype; H, W of the image)."""
    masks = _get(item, list_name, index, "masks")
    where = _where(list_name, index, "masks")
    if masks.ndim != 3 or masks.shape[0] != count:
        raise ValueError(f"{where} must have shape [{count}, H, W] (one per box of "
                         f"{_where(list_name, index, 'boxes')}), got {masks.shape}")
    if masks.dtype != np.bool_ and not np.issubdtype(masks.dtype, np.number):
        raise ValueError(f"{where} must be numeric or bool, got dtype {masks.dtype}")
    return masks
