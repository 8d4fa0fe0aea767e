"""A tiny ISBI 2012 folder as the challenge distributes it: train-volume.tif, train-labels.tif
and test-volume.tif, multi-page 8-bit TIFFs written with PIL from scikit-image's coins."""

from __future__ import annotations

import os

import numpy as np
import skimage.data
from PIL import Image
from scipy import ndimage


def coins_slices(count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (images, labels) [count, size, size]: crops of the coins photograph stepping
    right, labels 255 on the coins (the 'cells', above the mean of the smoothed photo) and 0
    between them (the 'membrane')."""
    coins = skimage.data.coins()  # 303 x 384 grayscale
    smooth = ndimage.gaussian_filter(coins.astype(np.float64), 2)
    mask = np.where(smooth > smooth.mean() + 10, 255, 0).astype(np.uint8)
    images, labels = [], []
    for k in range(count):
        top, left = k * 7 % (coins.shape[0] - size + 1), k * 13 % (coins.shape[1] - size + 1)
        images.append(coins[top:top + size, left:left + size])
        labels.append(mask[top:top + size, left:left + size])
    return np.stack(images), np.stack(labels)


def save_stack(stack: np.ndarray, path: str) -> str:
    """A multi-page TIFF of the uint8 [N, H, W] `stack` (one page per slice)."""
    pages = [Image.fromarray(page) for page in stack]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


def write_isbi(root: str, count: int = 4, size: int = 128, test_count: int = 2) -> dict:
    """The three challenge files under `root`; returns {'images', 'labels'} (the train stacks)."""
    os.makedirs(root, exist_ok=True)
    images, labels = coins_slices(count + test_count, size)
    save_stack(images[:count], os.path.join(root, "train-volume.tif"))
    save_stack(labels[:count], os.path.join(root, "train-labels.tif"))
    save_stack(images[count:], os.path.join(root, "test-volume.tif"))
    return {"images": images[:count], "labels": labels[:count]}
