"""Anchor generator (torchvision's AnchorGenerator) over a list of feature maps."""

from __future__ import annotations

import jax.numpy as jnp

from jaxvision.ops import grid_anchors


def level_strides(feature_shapes, image_shape):
    """Per level (sy, sx) = (H // fh, W // fw), torchvision's integer strides of the padded
    image; e.g. a 320x416 image's 5x7 FPN 'pool' map has stride (64, 59)."""
    h, w = image_shape
    return [(h // fh, w // fw) for fh, fw in feature_shapes]


def generate_anchors(feature_shapes, image_shape, sizes, aspect_ratios, strides=None,
                     dtype=jnp.float32):
    """Anchors of every level, concatenated level by level.

    feature_shapes: [(fh, fw), ...]; image_shape: (H, W) of the (padded) batch; sizes and
    aspect_ratios: one tuple per level; strides: per level (sy, sx), None for torchvision's
    `level_strides` (a 600x800 image's 38x50 VGG map would get stride 15 rows).
    Returns ([A, 4] xyxy in `dtype`, [A] int32 level index, [n_0, n_1, ...] anchors per level).
    """
    if len(sizes) != len(feature_shapes) or len(aspect_ratios) != len(feature_shapes):
        raise ValueError(
            f"anchor sizes/aspect_ratios: expected one tuple per feature map "
            f"({len(feature_shapes)}), got {len(sizes)} and {len(aspect_ratios)}")
    out, levels, counts = [], [], []
    if strides is None:
        strides = level_strides(feature_shapes, image_shape)
    for i, (fs, st) in enumerate(zip(feature_shapes, strides, strict=True)):
        a = grid_anchors(fs, st, sizes[i], aspect_ratios[i], dtype)
        out.append(a)
        levels.append(jnp.full((a.shape[0],), i, jnp.int32))
        counts.append(int(a.shape[0]))
    return jnp.concatenate(out), jnp.concatenate(levels), counts
