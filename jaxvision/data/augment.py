"""Random augmentations of one example (numpy), each drawing from a generator it is given.

SSD's (Liu et al. 2016, Sec. 2.2 "Data augmentation", as torchvision's detection references do
it): photometric distortion, zoom-out ("expand") and the min-IoU random crop. ImageNet's
random-resized crop (torchvision RandomResizedCrop) and its eval resize + centre crop.
"""

from __future__ import annotations

import math

import numpy as np

from jaxvision.data import transforms

# RandomIoUCrop defaults (torchvision.transforms.v2 / references/detection)
IOU_OPTIONS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """boxes1 [N, 4], boxes2 [M, 4] xyxy -> IoU float64 [N, M] (0 for empty unions)."""
    b1, b2 = boxes1.astype(np.float64)[:, None], boxes2.astype(np.float64)[None]
    iw = np.clip(np.minimum(b1[..., 2], b2[..., 2]) - np.maximum(b1[..., 0], b2[..., 0]), 0, None)
    ih = np.clip(np.minimum(b1[..., 3], b2[..., 3]) - np.maximum(b1[..., 1], b2[..., 1]), 0, None)
    inter = iw * ih
    area1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])
    area2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])
    union = area1 + area2 - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


# ---------------------------------------------------------------------------------------------
# photometric distortion (torchvision.transforms.v2.RandomPhotometricDistort)


def _grayscale(x: np.ndarray) -> np.ndarray:
    """[H, W, 3] in 0..1 -> [H, W, 1] luma (ITU-R 601-2: 0.2989 R + 0.587 G + 0.114 B)."""
    return (x[..., 0:1] * 0.2989 + x[..., 1:2] * 0.587 + x[..., 2:3] * 0.114).astype(np.float32)


def adjust_brightness(x: np.ndarray, factor: float) -> np.ndarray:
    """x [H, W, 3] float in 0..1 -> clip(x * factor, 0, 1)."""
    return np.clip(x * np.float32(factor), 0, 1)


def adjust_contrast(x: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the image's mean grey level: clip(f * x + (1 - f) * mean(gray(x)), 0, 1)."""
    mean = _grayscale(x).mean(dtype=np.float32)
    return np.clip(np.float32(factor) * x + np.float32(1 - factor) * mean, 0, 1)


def adjust_saturation(x: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the per-pixel grey level: clip(f * x + (1 - f) * gray(x), 0, 1)."""
    return np.clip(np.float32(factor) * x + np.float32(1 - factor) * _grayscale(x), 0, 1)


def adjust_hue(x: np.ndarray, factor: float) -> np.ndarray:
    """Rotates the hue by `factor` (in [-0.5, 0.5] turns) through HSV; x [H, W, 3] in 0..1."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    maxc, minc = x.max(-1), x.min(-1)
    v = maxc
    delta = maxc - minc
    s = np.where(maxc > 0, delta / np.where(maxc > 0, maxc, 1), 0)
    safe = np.where(delta > 0, delta, 1)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    h = (h + factor) % 1.0
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros_like(x)
    for k, (rr, gg, bb) in enumerate(choices):
        sel = i == k
        out[..., 0] = np.where(sel, rr, out[..., 0])
        out[..., 1] = np.where(sel, gg, out[..., 1])
        out[..., 2] = np.where(sel, bb, out[..., 2])
    return out.astype(np.float32)


def photometric_params(rng: np.random.Generator, p: float = 0.5) -> dict:
    """RandomPhotometricDistort's draws with its defaults: brightness (0.875, 1.125), contrast
    (0.5, 1.5), saturation (0.5, 1.5), hue (-0.05, 0.05), each applied with probability p;
    contrast before or after saturation/hue with probability 0.5; a channel permutation with
    probability p."""
    def maybe(low, high):
        apply, value = rng.random() < p, rng.uniform(low, high)
        return float(value) if apply else None

    return {"brightness": maybe(0.875, 1.125), "contrast": maybe(0.5, 1.5),
            "saturation": maybe(0.5, 1.5), "hue": maybe(-0.05, 0.05),
            "contrast_before": bool(rng.random() < 0.5),
            "permutation": rng.permutation(3) if rng.random() < p else None}


def photometric_distort(image: np.ndarray, params: dict) -> np.ndarray:
    """image [H, W, 3] (0..255) -> float32 [H, W, 3] (0..255) distorted as `params` say, in
    torchvision's order: brightness, [contrast], saturation, hue, [contrast], permutation."""
    x = image.astype(np.float32) / 255
    if params["brightness"] is not None:
        x = adjust_brightness(x, params["brightness"])
    if params["contrast"] is not None and params["contrast_before"]:
        x = adjust_contrast(x, params["contrast"])
    if params["saturation"] is not None:
        x = adjust_saturation(x, params["saturation"])
    if params["hue"] is not None:
        x = adjust_hue(x, params["hue"])
    if params["contrast"] is not None and not params["contrast_before"]:
        x = adjust_contrast(x, params["contrast"])
    if params["permutation"] is not None:
        x = x[..., params["permutation"]]
    return (x * 255).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# zoom-out and min-IoU crop (SSD)


def zoom_out_params(rng: np.random.Generator, height: int, width: int, max_ratio: float = 4.0,
                    p: float = 0.5) -> tuple[int, int, int, int] | None:
    """torchvision RandomZoomOut: with probability p a canvas r times the image, r ~ U(1,
    max_ratio), the image at a uniform offset. Returns (canvas_h, canvas_w, top, left) or None."""
    if rng.random() >= p:
        return None
    r = 1.0 + rng.random() * (max_ratio - 1.0)
    canvas_w, canvas_h = int(width * r), int(height * r)
    u = rng.random(2)
    left, top = int((canvas_w - width) * u[0]), int((canvas_h - height) * u[1])
    return canvas_h, canvas_w, top, left


def min_iou_crop_params(rng: np.random.Generator, boxes: np.ndarray, height: int, width: int, *,
                        min_scale: float = 0.3, max_scale: float = 1.0,
                        min_aspect: float = 0.5, max_aspect: float = 2.0,
                        options=IOU_OPTIONS, trials: int = 40, max_rounds: int = 50):
    """SSD's min-IoU random crop (torchvision RandomIoUCrop): draw a minimum IoU from `options`
    (1.0: no crop); try `trials` windows with sides in [min_scale, max_scale] of the image's and
    aspect w/h in [min_aspect, max_aspect]; accept the first window holding at least one box
    centre strictly inside it whose best IoU with the window is >= the minimum.

    boxes: [N, 4] xyxy. Returns (top, left, h, w, keep bool [N]: centre inside) or None (no
    crop). torchvision loops until it succeeds; here after `max_rounds` draws (and at once for an
    image with no boxes) the image is kept whole.
    """
    if len(boxes) == 0:
        return None
    cx = 0.5 * (boxes[:, 0] + boxes[:, 2])
    cy = 0.5 * (boxes[:, 1] + boxes[:, 3])
    for _ in range(max_rounds):
        min_iou = options[int(rng.integers(len(options)))]
        if min_iou >= 1.0:
            return None
        for _ in range(trials):
            r = min_scale + (max_scale - min_scale) * rng.random(2)
            new_w, new_h = int(width * r[0]), int(height * r[1])
            if new_h == 0 or not min_aspect <= new_w / new_h <= max_aspect:
                continue
            u = rng.random(2)
            left, top = int((width - new_w) * u[0]), int((height - new_h) * u[1])
            right, bottom = left + new_w, top + new_h
            if left == right or top == bottom:
                continue
            inside = (left < cx) & (cx < right) & (top < cy) & (cy < bottom)
            if not inside.any():
                continue
            window = np.array([[left, top, right, bottom]], np.float64)
            if box_iou(boxes[inside], window).max() < min_iou:
                continue
            return top, left, new_h, new_w, inside
    return None


# ---------------------------------------------------------------------------------------------
# ImageNet crops


def random_resized_crop_params(rng: np.random.Generator, height: int, width: int,
                               scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), tries: int = 10
                               ) -> tuple[int, int, int, int]:
    """torchvision RandomResizedCrop.get_params: (top, left, h, w). `tries` draws of an area
    fraction ~ U(scale) and a log-uniform aspect w/h in `ratio`; the first that fits wins, else
    the centred largest window with the aspect clamped into `ratio`."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(tries):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def center_crop_params(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """torchvision CenterCrop of a size x size window: (top, left, size, size)."""
    return (int(round((height - size) / 2.0)), int(round((width - size) / 2.0)), size, size)


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """torchvision Resize(size) with an int: the shorter side becomes `size`, the longer
    int(size * long / short)."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def resize_pil(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [h, w, 3] with PIL's antialiased bilinear filter (what
    torchvision's Resize does to PIL images)."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize(
        (int(size[1]), int(size[0])), Image.BILINEAR), np.uint8)


def imagenet_train_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """RandomResizedCrop(size): uint8 [H, W, 3] -> uint8 [size, size, 3]."""
    top, left, h, w = random_resized_crop_params(rng, *image.shape[:2])
    return resize_pil(image[top:top + h, left:left + w], (size, size))


def imagenet_eval_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resize(round(size / 0.875)) then CenterCrop(size) (256 -> 224): uint8 [size, size, 3]."""
    short = int(round(size / 0.875))
    image = resize_pil(image, shorter_side_size(*image.shape[:2], short))
    top, left, h, w = center_crop_params(*image.shape[:2], size)
    return image[top:top + h, left:left + w]


def zoom_out(example: dict, params) -> dict:
    """Applies `zoom_out_params`' result: the example on a canvas filled with the ImageNet mean
    (zero after normalisation), instance masks with 0, segmentation with IGNORE."""
    if params is None:
        return example
    canvas_h, canvas_w, top, left = params
    example = {**example, "image": example["image"].astype(np.float32)}  # an exact mean fill
    return transforms.place(example, (canvas_h, canvas_w), top, left,
                            fill=transforms.IMAGENET_MEAN)
