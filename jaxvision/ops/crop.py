"""Centre cropping of NHWC maps (valid-padding U-Net skips and labels)."""

from __future__ import annotations


def center_crop(x, height: int, width: int):
    """Crops the centre `[B, height, width, C]` out of `x: [B, H, W, C]` (the extra row or
    column of an odd difference is dropped at the bottom/right)."""
    if height > x.shape[1] or width > x.shape[2]:
        raise ValueError(f"center_crop size: expected at most {tuple(x.shape[1:3])}, got "
                         f"{(height, width)}")
    top = (x.shape[1] - height) // 2
    left = (x.shape[2] - width) // 2
    return x[:, top:top + height, left:left + width]
