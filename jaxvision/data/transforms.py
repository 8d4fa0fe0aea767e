"""Per-example host transforms (numpy), driven by each field's KIND.

Field kinds (`KINDS`): `image` [H, W, C] (uint8 or float32 in 0..255), `mask` (semantic
segmentation [H, W], 255 = ignore), `boxes` [N, 4] xyxy absolute pixels, `box_field` (one value
per box: `labels`, `iscrowd`, `difficult`), `instance_masks` [N, H, W] (`masks`, also per box) and
`scalar` (`label`, `image_id`, `orig_size`, ...: passed through). `proposals` [P, 4] (external
region proposals, R-CNN / Fast R-CNN) are boxes too, with their own rows: `proposals_valid` [P]
marks the real ones. A geometric transform moves every spatial field of an example together; a
box-dropping one drops the same rows of every per-box field (never proposals).

Coordinates: pixel (0, 0) is the top-left corner, a pixel's centre is at +0.5 (DESIGN.md).
"""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255
IGNORE = 255  # segmentation value the losses and metrics skip (fills padded mask pixels)

KINDS = {"image": "image", "segmentation": "mask", "boxes": "boxes", "masks": "instance_masks",
         "labels": "box_field", "iscrowd": "box_field", "difficult": "box_field",
         "label": "scalar", "image_id": "scalar", "orig_size": "scalar", "proposals": "boxes",
         "proposals_valid": "scalar"}
PER_BOX = ("boxes", "labels", "iscrowd", "difficult", "masks")
BOX_SETS = tuple(k for k, kind in KINDS.items() if kind == "boxes")  # moved like boxes


def normalise(image: np.ndarray) -> np.ndarray:
    """uint8 (or float 0..255) [H, W, 3] -> float32 [H, W, 3] with ImageNet mean and std."""
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
    for key in BOX_SETS & example.keys():
        boxes = example[key]
        out[key] = np.stack(
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


# ---------------------------------------------------------------------------------------------
# resampling


def _bilinear_axis(x: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """Linear resampling along `axis` with half-pixel centres (torch `interpolate(mode=
    'bilinear', align_corners=False)`, no antialias): src = (dst + 0.5) * in / out - 0.5,
    clamped at 0; neighbours clamped at the last pixel."""
    size = x.shape[axis]
    scale = np.float32(size) / np.float32(out_size)
    src = np.maximum((np.arange(out_size, dtype=np.float32) + 0.5) * scale - 0.5, 0)
    lo = np.minimum(np.floor(src).astype(np.int64), size - 1)
    hi = np.minimum(lo + 1, size - 1)
    w = (src - lo).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = out_size
    w = w.reshape(shape)
    return np.take(x, lo, axis) * (1 - w) + np.take(x, hi, axis) * w


def _nearest_index(size: int, out_size: int) -> np.ndarray:
    """torch `interpolate(mode='nearest')`: src = min(floor(dst * in / out), in - 1), float32."""
    scale = np.float32(size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, size - 1)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """image [H, W, C] -> float32 [h, w, C], bilinear with half-pixel centres (no antialias)."""
    h, w = size
    x = _bilinear_axis(image.astype(np.float32), h, 0)
    return _bilinear_axis(x, w, 1).astype(np.float32)


def resize_nearest(x: np.ndarray, size: tuple[int, int], axis: int) -> np.ndarray:
    """Nearest resampling of the two spatial axes `axis, axis + 1` to `size` (h, w)."""
    rows = _nearest_index(x.shape[axis], size[0])
    cols = _nearest_index(x.shape[axis + 1], size[1])
    return np.take(np.take(x, rows, axis), cols, axis + 1)


def resize(example: dict[str, np.ndarray], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Resizes every spatial field to `size` (h, w): image bilinear (float32 out), segmentation
    and instance masks nearest, boxes scaled by (w / W, h / H) per coordinate (torchvision's
    `resize_boxes`)."""
    height, width = example["image"].shape[:2]
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"resize size: expected positive (height, width), got {size}")
    out = dict(example)
    out["image"] = resize_image(example["image"], (h, w))
    if "segmentation" in example:
        out["segmentation"] = resize_nearest(example["segmentation"], (h, w), 0)
    if "masks" in example:
        out["masks"] = resize_nearest(example["masks"], (h, w), 1)
    ratio = np.array([w / width, h / height, w / width, h / height], np.float32)
    for key in BOX_SETS & example.keys():
        out[key] = (example[key].astype(np.float32) * ratio).astype(np.float32)
    return out


def min_max_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """torchvision GeneralizedRCNNTransform's size: scale = min(min_size / min(H, W),
    max_size / max(H, W)); (floor(H * scale), floor(W * scale))."""
    scale = min(float(min_size) / min(height, width), float(max_size) / max(height, width))
    return int(np.floor(height * scale)), int(np.floor(width * scale))


def static_pad_size(max_size: int, size_divisible: int) -> int:
    """Side of the square every min/max-resized image fits in: ceil(max_size / d) * d."""
    return -(-max_size // size_divisible) * size_divisible


# ---------------------------------------------------------------------------------------------
# placement, crops and box bookkeeping


def place(example: dict[str, np.ndarray], canvas: tuple[int, int], top: int, left: int,
          fill=0.0) -> dict[str, np.ndarray]:
    """Puts the example on a `canvas` (h, w) with its top-left corner at (top, left): image
    filled with `fill` (a scalar or per channel), segmentation with IGNORE, instance masks with 0;
    boxes shifted by (left, top). Used for zoom-out and for padding to a static size."""
    height, width = example["image"].shape[:2]
    ch, cw = canvas
    if top < 0 or left < 0 or top + height > ch or left + width > cw:
        raise ValueError(f"pad size: expected a canvas holding the {height}x{width} image at "
                         f"({top}, {left}), got {ch}x{cw}")
    out = dict(example)
    image = example["image"]
    canvas_image = np.empty((ch, cw, image.shape[2]), image.dtype)
    canvas_image[...] = np.asarray(fill, np.float32).astype(image.dtype)
    canvas_image[top:top + height, left:left + width] = image
    out["image"] = canvas_image
    if "segmentation" in example:
        seg = np.full((ch, cw), IGNORE, example["segmentation"].dtype)
        seg[top:top + height, left:left + width] = example["segmentation"]
        out["segmentation"] = seg
    if "masks" in example:
        masks = np.zeros((len(example["masks"]), ch, cw), example["masks"].dtype)
        masks[:, top:top + height, left:left + width] = example["masks"]
        out["masks"] = masks
    for key in BOX_SETS & example.keys():
        out[key] = (example[key] + np.array([left, top, left, top], np.float32)
                    ).astype(np.float32)
    return out


def select_boxes(example: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    """Keeps the rows `keep` (bool [N] or indices) of every per-box field."""
    out = dict(example)
    for key in PER_BOX:
        if key in example:
            out[key] = example[key][keep]
    return out


def crop(example: dict[str, np.ndarray], top: int, left: int, height: int, width: int
         ) -> dict[str, np.ndarray]:
    """The window [top, top + height) x [left, left + width) of every spatial field; boxes are
    shifted into it and clipped to it (boxes left with no area are dropped by `drop_empty`)."""
    out = dict(example)
    out["image"] = example["image"][top:top + height, left:left + width]
    if "segmentation" in example:
        out["segmentation"] = example["segmentation"][top:top + height, left:left + width]
    if "masks" in example:
        out["masks"] = example["masks"][:, top:top + height, left:left + width]
    for key in BOX_SETS & example.keys():
        boxes = example[key] - np.array([left, top, left, top], np.float32)
        out[key] = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    return out


def drop_empty(example: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Drops boxes with no area (x2 <= x1 or y2 <= y1); returns (example, number dropped)."""
    boxes = example["boxes"]
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return select_boxes(example, keep), int((~keep).sum())


def finish_proposals(example: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Marks proposals a crop left with no area invalid and zeroes every invalid row:
    proposals float32 [P, 4], proposals_valid bool [P]."""
    boxes = example["proposals"].astype(np.float32)
    valid = (np.asarray(example.get("proposals_valid", np.ones(len(boxes))), bool)
             & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
    return {**example, "proposals": np.where(valid[:, None], boxes, 0.0).astype(np.float32),
            "proposals_valid": valid}


def pad_instances(example: dict[str, np.ndarray], max_boxes: int) -> dict[str, np.ndarray]:
    """Pads (or truncates to the first `max_boxes`) boxes [N,4], labels [N], iscrowd,
    difficult and masks [N,H,W] to `max_boxes` rows.

    Adds `boxes_valid` bool [max_boxes]. Box labels are shifted by one: 0 is background.
    """
    out = dict(example)
    n = min(len(example["boxes"]), max_boxes)
    boxes = np.zeros((max_boxes, 4), np.float32)
    boxes[:n] = example["boxes"][:n]
    labels = np.zeros((max_boxes,), np.int32)
    labels[:n] = example["labels"][:n] + 1
    out.update(boxes=boxes, labels=labels, boxes_valid=np.arange(max_boxes) < n)
    for key in ("iscrowd", "difficult"):
        if key in example:
            flags = np.zeros((max_boxes,), bool)
            flags[:n] = example[key][:n]
            out[key] = flags
    if "masks" in example:
        masks = np.zeros((max_boxes, *example["masks"].shape[1:]), np.uint8)
        masks[:n] = example["masks"][:n]
        out["masks"] = masks
    return out
