"""Darknet's letterbox (YOLO inference): the image resized to fit a `size` x `size` input with
its aspect ratio kept, centred on a grey canvas (0.5 in Darknet's [0, 1] input, 127.5 here).

Sizes as Darknet's `letterbox_image`: when W > H the width fills the input and
h = floor(H * size / W), else the height does and w = floor(W * size / H); the content sits at
((size - h) // 2, (size - w) // 2). The resampling is the pipeline's bilinear
(`transforms.resize`, half-pixel centres), not Darknet's own `resize_image`.
"""

from __future__ import annotations

import numpy as np

from jaxvision.data import transforms

GREY = 127.5


def letterbox_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) of an H x W image letterboxed into size x size."""
    if width > height:  # Darknet: size / W < size / H
        return height * size // width, size
    return size, width * size // height


def embed(example: dict[str, np.ndarray], size: int) -> tuple[dict[str, np.ndarray],
                                                                np.ndarray]:
    """An example already resized to `letterbox_size` -> (the example centred on a grey
    size x size canvas (boxes shifted), image_origin int32 [2] (top, left) of its pixel (0, 0))."""
    h, w = example["image"].shape[:2]
    top, left = (size - h) // 2, (size - w) // 2
    out = transforms.place(example, (size, size), top, left, fill=GREY)
    return out, np.asarray((top, left), np.int32)


def letterbox(example: dict[str, np.ndarray], size: int) -> tuple[dict[str, np.ndarray],
                                                                   np.ndarray]:
    """Resize (aspect kept) + `embed`: (example with image float32 [size, size, 3] in 0..255,
    image_origin [2])."""
    h, w = example["image"].shape[:2]
    return embed(transforms.resize(example, letterbox_size(h, w, size)), size)
