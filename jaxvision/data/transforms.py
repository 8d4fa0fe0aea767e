"""Per-example host transforms (numpy): normalise, horizontal flip, pad boxes to a fixed count."""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def normalise(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] -> float32 [H, W, 3] with ImageNet mean and std."""
    return (image.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD


def hflip(example: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mirrors an example left-right: image [H,W,C], segmentation [H,W], masks [N,H,W] and
    boxes [N,4] xyxy (x -> W - x, so a box keeps its pixels)."""
    out = dict(example)
    width = example["image"].shape[1]
    out["image"] = example["image"][:, ::-1]
    if "segmentation" in example:
        out["segmentation"] = example["segmentation"][:, ::-1]
    if "masks" in example:
        out["masks"] = example["masks"][:, :, ::-1]
    if "boxes" in example:
        boxes = example["boxes"]
        out["boxes"] = np.stack(
            [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=-1
        ).astype(boxes.dtype)
    return out


def pad_instances(example: dict[str, np.ndarray], max_boxes: int) -> dict[str, np.ndarray]:
    """Pads (or truncates) boxes [N,4], labels [N] and masks [N,H,W] to `max_boxes` rows.

    Adds `boxes_valid` bool [max_boxes]. Box labels are shifted by one: 0 is background.
    """
    out = dict(example)
    n = min(len(example["boxes"]), max_boxes)
    boxes = np.zeros((max_boxes, 4), np.float32)
    boxes[:n] = example["boxes"][:n]
    labels = np.zeros((max_boxes,), np.int32)
    labels[:n] = example["labels"][:n] + 1
    out.update(boxes=boxes, labels=labels, boxes_valid=np.arange(max_boxes) < n)
    if "masks" in example:
        masks = np.zeros((max_boxes, *example["masks"].shape[1:]), np.uint8)
        masks[:n] = example["masks"][:n]
        out["masks"] = masks
    return out
