"""Pasting box-relative instance masks into the image (Mask R-CNN inference).

Same numbers as `torchvision.models.detection.roi_heads.paste_masks_in_image`: the M x M mask is
padded by one zero pixel on each side and its box scaled by (M + 2) / M about its centre
(expand_masks / expand_boxes), the box is truncated to integers, the padded mask is resized to
the box's (h, w) = (y2 - y1 + 1, x2 - x1 + 1) pixels with `F.interpolate(mode='bilinear',
align_corners=False)` and pasted into the image, clipped. torchvision resizes then pastes, which
needs a box-sized array; here every image pixel computes its own source position in the padded
mask (static [H, W] shapes under jit) with the resize's float32 arithmetic (source index
ratio * (i + 0.5) - 0.5 clamped at 0, ratio = in / out), x-interpolation inside the y one as
torch's CPU kernel nests them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxvision.ops._checks import check_last_dim, check_rank
from jaxvision.ops.roi import true_div


def _resize_taps(start, size, length, in_size, dt=jnp.float32):
    """One axis of the resize + paste: for image pixels 0..length-1 and boxes [..] starting at
    integer `start` with `size` pixels, the two source indices and weights into a padded mask
    of `in_size` pixels and whether the pixel lies in the pasted (clipped) box.

    Returns i0, i1 [..., length] int32, l0, l1 [..., length] in `dt` (torch's opmath type:
    float32, or float64 for double masks), inside [..., length].
    """
    pix = jnp.arange(length, dtype=jnp.int32)
    local = pix - start[..., None]  # pixel index inside the resized box
    inside = (local >= 0) & (local < size[..., None])
    ratio = true_div(jnp.full(size.shape, in_size, dt), size.astype(dt))
    src = ratio[..., None] * (local.astype(dt) + 0.5) - 0.5
    src = jnp.maximum(src, 0)
    i0 = jnp.clip(src.astype(jnp.int32), 0, in_size - 1)  # src >= 0: truncation is floor
    i1 = jnp.where(i0 < in_size - 1, i0 + 1, i0)
    l1 = src - i0.astype(dt)  # in [0, 1): src < in_size - 1/2
    return i0, i1, 1 - l1, l1, inside


def paste_masks_in_image(masks, boxes, height, width):
    """Pastes each detection's mask into a [height, width] image.

    masks: [B, D, M, M] float (box-relative, e.g. Mask R-CNN's 28 x 28 probabilities);
    boxes: [B, D, 4] xyxy absolute pixels; height, width: the image size (static ints).
    Returns [B, D, height, width] in the masks' dtype (0 outside the pasted box).
    """
    check_rank(masks, "masks", 4, "[B, D, M, M]")
    check_last_dim(boxes, "boxes")
    masks = jnp.asarray(masks)
    boxes = jnp.asarray(boxes)
    if boxes.shape != (*masks.shape[:2], 4):
        raise ValueError(f"boxes: expected shape {(*masks.shape[:2], 4)}, got {boxes.shape}")
    if masks.shape[2] != masks.shape[3]:
        raise ValueError(f"masks: expected square [B, D, M, M], got {masks.shape}")
    for name, v in (("height", height), ("width", width)):
        if int(v) != v or v <= 0:
            raise ValueError(f"{name}: expected a positive int, got {v!r}")
    return _paste(masks, boxes, int(height), int(width))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _paste(masks, boxes, height, width):
    m = masks.shape[-1]
    dt = jnp.promote_types(masks.dtype, jnp.float32)
    padded = jnp.pad(masks.astype(dt), ((0, 0), (0, 0), (1, 1), (1, 1)))  # [B, D, M+2, M+2]
    scale = (m + 2) / m
    b = boxes.astype(dt)  # torchvision expands the boxes in their own dtype
    w_half = (b[..., 2] - b[..., 0]) * 0.5 * scale
    h_half = (b[..., 3] - b[..., 1]) * 0.5 * scale
    x_c = (b[..., 2] + b[..., 0]) * 0.5
    y_c = (b[..., 3] + b[..., 1]) * 0.5
    x0 = (x_c - w_half).astype(jnp.int32)  # truncation toward zero, as .to(torch.int64)
    x1 = (x_c + w_half).astype(jnp.int32)
    y0 = (y_c - h_half).astype(jnp.int32)
    y1 = (y_c + h_half).astype(jnp.int32)
    w = jnp.maximum(x1 - x0 + 1, 1)
    h = jnp.maximum(y1 - y0 + 1, 1)
    # torchvision pastes rows max(y0, 0) .. min(y1 + 1, H) - 1 (likewise columns): the image
    # rows whose index in the resized box lies in [0, h), and none for an inverted box
    yi0, yi1, ly0, ly1, yin = _resize_taps(y0, h, height, m + 2, dt)
    xi0, xi1, lx0, lx1, xin = _resize_taps(x0, w, width, m + 2, dt)
    yin = yin & (y1 >= y0)[..., None]
    xin = xin & (x1 >= x0)[..., None]
    take_cols = jax.vmap(jax.vmap(lambda a, i: a[:, i]))  # [M+2, M+2], [W] -> [M+2, W]
    rows = lx0[..., None, :] * take_cols(padded, xi0) + lx1[..., None, :] * take_cols(padded, xi1)
    take_rows = jax.vmap(jax.vmap(lambda a, i: a[i]))  # [M+2, W], [H] -> [H, W]
    out = ly0[..., None] * take_rows(rows, yi0) + ly1[..., None] * take_rows(rows, yi1)
    out = jnp.where(yin[..., :, None] & xin[..., None, :], out, 0)
    return out.astype(masks.dtype)
