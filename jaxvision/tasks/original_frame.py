"""Detections mapped back from the network input to each image's original pixels (host numpy).

The inverse of the eval transform, as torchvision's `GeneralizedRCNNTransform.postprocess` does
it: boxes scaled per axis by original / resized size (float32, no clipping afterwards; the
detector clipped them to the resized image), then Mask R-CNN's box-relative masks pasted at the
original resolution with those boxes. The padding the transform adds (bottom/right) needs no
inverse; a letterbox's (all sides) is undone with the batch's `image_origin`. SSD / YOLO's
fixed resize is the same scaling with a square resized size.
"""

from __future__ import annotations

import numpy as np


def boxes_to_original(boxes, image_size, orig_size, origin=(0, 0)) -> np.ndarray:
    """boxes [N, 4] xyxy in the resized image (`image_size` (h, w) before padding, its pixel
    (0, 0) at `origin` (top, left) of the input: Darknet's letterbox centres it) -> float32
    [N, 4] xyxy in the original (`orig_size` (H, W)) image."""
    (h, w), (oh, ow) = (np.asarray(s, np.float32) for s in (image_size, orig_size))
    ratio = np.array([ow / w, oh / h, ow / w, oh / h], np.float32)
    top, left = (np.float32(v) for v in origin)
    shift = np.array([left, top, left, top], np.float32)
    return (np.asarray(boxes, np.float32).reshape(-1, 4) - shift) * ratio


def _taps(start: int, size: int, lo: int, hi: int, in_size: int):
    """Image pixels lo..hi-1 of a box starting at `start` with `size` pixels: the two source
    indices into a padded mask of `in_size` pixels and their weights (torch's bilinear
    resize, align_corners=False, float32)."""
    local = np.arange(lo, hi, dtype=np.int32) - np.int32(start)
    ratio = np.float32(in_size) / np.float32(size)
    src = np.maximum(ratio * (local.astype(np.float32) + np.float32(0.5)) - np.float32(0.5),
                     np.float32(0))
    i0 = np.clip(src.astype(np.int32), 0, in_size - 1)
    i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
    l1 = src - i0.astype(np.float32)
    return i0, i1, np.float32(1) - l1, l1


def paste_mask(mask, box, height: int, width: int) -> np.ndarray:
    """One box-relative mask [M, M] (probabilities) pasted into a float32 [height, width]
    image at `box` [4] xyxy: `jaxvision.ops.paste_masks_in_image` (torchvision's
    `paste_masks_in_image`) for one detection, computed only over the box's pixels."""
    mask = np.asarray(mask, np.float32)
    m = mask.shape[-1]
    padded = np.pad(mask, 1)
    scale = (m + 2) / m
    b = np.asarray(box, np.float32)
    w_half = (b[2] - b[0]) * np.float32(0.5) * np.float32(scale)
    h_half = (b[3] - b[1]) * np.float32(0.5) * np.float32(scale)
    x_c = (b[2] + b[0]) * np.float32(0.5)
    y_c = (b[3] + b[1]) * np.float32(0.5)
    x0, x1 = int(np.float32(x_c - w_half)), int(np.float32(x_c + w_half))  # toward zero
    y0, y1 = int(np.float32(y_c - h_half)), int(np.float32(y_c + h_half))
    out = np.zeros((height, width), np.float32)
    if x1 < x0 or y1 < y0:
        return out
    w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
    top, bottom = max(y0, 0), min(y0 + h, height)
    left, right = max(x0, 0), min(x0 + w, width)
    if top >= bottom or left >= right:
        return out
    yi0, yi1, ly0, ly1 = _taps(y0, h, top, bottom, m + 2)
    xi0, xi1, lx0, lx1 = _taps(x0, w, left, right, m + 2)
    rows = lx0 * padded[:, xi0] + lx1 * padded[:, xi1]  # [M + 2, box width]
    out[top:bottom, left:right] = ly0[:, None] * rows[yi0] + ly1[:, None] * rows[yi1]
    return out


def paste_masks(masks, boxes, height: int, width: int) -> np.ndarray:
    """masks [N, M, M], boxes [N, 4] xyxy (original pixels) -> float32 [N, height, width]."""
    out = np.zeros((len(boxes), height, width), np.float32)
    for k, (mask, box) in enumerate(zip(masks, boxes, strict=True)):
        out[k] = paste_mask(mask, box, height, width)
    return out
