"""U-Net's elastic deformation (Ronneberger et al. 2015, section 3.1), in numpy / scipy.

Random displacement vectors on a coarse `grid` x `grid` lattice spanning the image (corners
included), drawn from N(0, sigma^2) pixels, interpolated bicubically to one displacement per
pixel; the image is resampled at `x + d(x)` (bilinear) and the
labels with nearest neighbours, so they stay class indices. Beyond the border the image is
mirrored with its edge pixel repeated (scipy 'reflect', numpy 'symmetric'), as `tiles`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

CUBIC_A = -0.75  # Keys' cubic convolution parameter of OpenCV's and PyTorch's 'bicubic'


def _cubic_weights(size: int, points: int) -> np.ndarray:
    """float64 [size, points]: row i interpolates `points` lattice values at pixel i (lattice
    point j sits at pixel j * (size - 1) / (points - 1), out-of-range taps clamped)."""
    weights = np.zeros((size, points))
    t = np.arange(size) * ((points - 1) / max(size - 1, 1))
    base = np.floor(t).astype(int)
    frac = t - base
    for k in range(-1, 3):  # taps base-1 .. base+2
        x = np.abs(frac - k)
        a = CUBIC_A
        w = np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                     np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))
        np.add.at(weights, (np.arange(size), np.clip(base + k, 0, points - 1)), w)
    return weights


def upsample_bicubic(coarse: np.ndarray, height: int, width: int) -> np.ndarray:
    """[..., g, g] lattice values -> float64 [..., height, width], bicubic with the lattice's
    corners on the image's corner pixels (torch `interpolate(mode='bicubic',
    align_corners=True)`)."""
    coarse = np.asarray(coarse, np.float64)
    rows = _cubic_weights(height, coarse.shape[-2])
    cols = _cubic_weights(width, coarse.shape[-1])
    return rows @ coarse @ cols.T


def elastic_field(rng: np.random.Generator, height: int, width: int, sigma: float,
                  grid: int = 3) -> np.ndarray:
    """float64 [2, height, width] per-pixel (dy, dx) displacements from `grid` x `grid`
    lattice vectors drawn from N(0, sigma^2)."""
    if grid < 2:
        raise ValueError(f"data.elastic.grid: expected at least 2 lattice points, got {grid}")
    return upsample_bicubic(rng.normal(0.0, sigma, (2, grid, grid)), height, width)


def warp(array: np.ndarray, field: np.ndarray, order: int) -> np.ndarray:
    """`array` [H, W] or [H, W, C] resampled at (y + dy, x + dx) with spline `order` (1:
    bilinear, 0: nearest), mirrored beyond the border (edge repeated); same dtype (rounded
    for integers)."""
    height, width = array.shape[:2]
    yy, xx = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    coords = np.stack([yy + field[0], xx + field[1]])
    channels = array.reshape(height, width, -1).astype(np.float64)
    out = np.stack([ndimage.map_coordinates(channels[..., c], coords, order=order,
                                            mode="reflect") for c in range(channels.shape[-1])],
                   axis=-1).reshape(array.shape)
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(array.dtype)


def elastic_deform(example: dict, field: np.ndarray) -> dict:
    """The example's `image` (bilinear) and `segmentation` (nearest) moved by `field`."""
    out = dict(example)
    out["image"] = warp(example["image"], field, order=1)
    if "segmentation" in example:
        out["segmentation"] = warp(example["segmentation"], field, order=0)
    return out
