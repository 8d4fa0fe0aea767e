"""U-Net's overlap-tile input (Ronneberger et al. 2015, Fig. 2): a valid-padding network
predicts an output window of `size` from an input `margin` pixels larger on every side, the
context beyond the image extrapolated by mirroring."""

from __future__ import annotations

import numpy as np

TILED = ("image", "segmentation", "weights")


def mirror_window(array: np.ndarray, top: int, left: int, height: int, width: int
                  ) -> np.ndarray:
    """Rows top..top+height-1, columns left..left+width-1 of `array` [H, W, ...], the
    positions outside it mirrored back in (numpy 'symmetric': the edge pixel repeats)."""
    h, w = array.shape[:2]
    rows = _mirror(np.arange(top, top + height), h)
    cols = _mirror(np.arange(left, left + width), w)
    return array[rows[:, None], cols[None, :]]


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    period = np.mod(index, 2 * n)
    return np.where(period < n, period, 2 * n - 1 - period)


def eval_tile_size(height: int, width: int, size: int, step: int) -> int:
    """The smallest output window `size + k * step` (k >= 0) covering a height x width image."""
    return size + step * max(0, -(-(max(height, width) - size) // step))


def tile_example(example: dict, top: int, left: int, size: int, margin: int) -> dict:
    """The example's image, segmentation and weights cut to the input of the output window
    [top, top + size) x [left, left + size): `size + 2 margin` square, mirrored beyond the
    image. Adds `image_origin` int32 [2], where the image's pixel (0, 0) sits in the tile."""
    out = dict(example)
    for key in TILED:
        if key in example:
            out[key] = mirror_window(example[key], top - margin, left - margin,
                                     size + 2 * margin, size + 2 * margin)
    out["image_origin"] = np.asarray((margin - top, margin - left), np.int32)
    return out


def random_tile(example: dict, rng: np.random.Generator, size: int, margin: int) -> dict:
    """`tile_example` at a uniformly random output window inside the image (or, for an image
    smaller than the window, one covering it)."""
    height, width = example["image"].shape[:2]
    top, left = (int(rng.integers(min(0, n - size), max(0, n - size) + 1))
                 for n in (height, width))
    return tile_example(example, top, left, size, margin)
