"""Numpy rendering of one synthetic `shapes` example: textured background, circles, squares and
triangles, with semantic mask, instance masks, tight xyxy boxes and labels.

Pure numpy and deterministic from the generator it is given, so the TFDS builder and the tests
share it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

CLASS_NAMES = ("circle", "square", "triangle")


@dataclasses.dataclass(frozen=True)
class RenderSpec:
    """What one image looks like: size in pixels, shapes per image, shape size as image fraction."""

    image_size: int = 64
    min_shapes: int = 1
    max_shapes: int = 3
    min_extent: float = 0.2  # shape diameter / image size
    max_extent: float = 0.45


def _shape_mask(kind: int, cx: float, cy: float, r: float, size: int) -> np.ndarray:
    """Boolean [size, size] mask of a shape of half-extent r centred at (cx, cy), tested at
    pixel centres (+0.5)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    if kind == 0:  # circle
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
    if kind == 1:  # axis-aligned square of side 2r
        return (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
    # upright triangle: apex (cx, cy - r), base from (cx - r, cy + r) to (cx + r, cy + r)
    depth = yy - (cy - r)
    return (depth >= 0) & (yy <= cy + r) & (np.abs(xx - cx) <= depth / 2)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Float [size, size, 3] texture in [0, 1]: a base colour, smooth blotches and stripes."""
    base = rng.uniform(0.2, 0.8, size=3)
    coarse = rng.normal(0.0, 0.12, size=(5, 5, 3))
    idx = np.linspace(0, 4, size)
    i0 = np.floor(idx).astype(int).clip(0, 3)
    t = (idx - i0)[:, None, None]
    rows = coarse[i0] * (1 - t) + coarse[i0 + 1] * t  # [size, 5, 3]
    blotches = rows[:, i0] * (1 - t.transpose(1, 0, 2)) + rows[:, i0 + 1] * t.transpose(1, 0, 2)
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 9)
    stripes = 0.06 * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    grain = rng.normal(0.0, 0.03, size=(size, size, 3))
    return np.clip(base + blotches + stripes[..., None] + grain, 0.0, 1.0)


def render_example(spec: RenderSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draws one image. Shapes never overlap, so each instance mask is the whole shape.

    Returns image uint8 [S,S,3], segmentation uint8 [S,S] (0 background, 1+class), masks uint8
    [N,S,S], boxes float32 [N,4] xyxy (tight around the mask pixels), labels int64 [N] in 0..2,
    label int64 (class of the largest shape, for classification).
    """
    size = spec.image_size
    image = _background(rng, size)
    segmentation = np.zeros((size, size), np.uint8)
    target = rng.integers(spec.min_shapes, spec.max_shapes + 1)
    masks, boxes, labels = [], [], []
    for _ in range(20 * spec.max_shapes):
        if len(labels) == target:
            break
        kind = int(rng.integers(0, 3))
        r = rng.uniform(spec.min_extent, spec.max_extent) * size / 2
        cx, cy = rng.uniform(r, size - r, size=2)
        mask = _shape_mask(kind, cx, cy, r, size)
        grown = _shape_mask(kind, cx, cy, r + 2, size)  # keep a 2-pixel gap between shapes
        if mask.sum() < 16 or (grown & (segmentation > 0)).any():
            continue
        colour = rng.uniform(0, 1, size=3)
        while np.abs(colour - image[mask].mean(0)).sum() < 0.6:
            colour = rng.uniform(0, 1, size=3)
        shade = rng.normal(0.0, 0.04, size=(size, size, 3))
        image = np.where(mask[..., None], np.clip(colour + shade, 0, 1), image)
        segmentation[mask] = kind + 1
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        masks.append(mask)
        labels.append(kind)
    areas = [m.sum() for m in masks]
    return {
        "image": np.round(image * 255).astype(np.uint8),
        "segmentation": segmentation,
        "masks": np.asarray(masks, np.uint8).reshape(-1, size, size),
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "labels": np.asarray(labels, np.int64),
        "label": np.int64(labels[int(np.argmax(areas))]),
    }
