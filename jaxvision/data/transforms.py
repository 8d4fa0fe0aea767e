"""Per-example host transforms (numpy): normalise, horizontal flip, pad-and-crop, pad boxes."""

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


def pad_and_crop(example: dict[str, np.ndarray], padding: int, offset: tuple[int, int]
                 ) -> dict[str, np.ndarray]:
    """Zero-pads image [H,W,C] (and segmentation [H,W], masks [N,H,W]) by `padding` pixels on
    every side, then crops the original H x W window whose top-left corner is `offset` (dy, dx),
    each in [0, 2 * padding]. `offset == (padding, padding)` returns the example unchanged.
    Other fields (e.g. `label`) pass through; boxes are not supported.
    """
    if "boxes" in example:
        raise ValueError("random_crop_padding: expected an example without boxes (supported: "
                         f"image, segmentation, masks, label), got fields {sorted(example)}")
    dy, dx = offset
    if not (0 <= dy <= 2 * padding and 0 <= dx <= 2 * padding):
        raise ValueError(f"pad_and_crop offset: expected each in [0, {2 * padding}], got {offset}")
    out = dict(example)
    height, width = example["image"].shape[:2]

    def crop(x, spatial_axis):
        pad = [(0, 0)] * x.ndim
        pad[spatial_axis] = pad[spatial_axis + 1] = (padding, padding)
        x = np.pad(x, pad)
        index = [slice(None)] * x.ndim
        index[spatial_axis] = slice(dy, dy + height)
        index[spatial_axis + 1] = slice(dx, dx + width)
        return x[tuple(index)]

    out["image"] = crop(example["image"], 0)
    if "segmentation" in example:
        out["segmentation"] = crop(example["segmentation"], 0)
    if "masks" in example:
        out["masks"] = crop(example["masks"], 1)
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
