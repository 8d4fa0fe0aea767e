"""Greedy non-maximum suppression with fixed-size outputs, in a tiled (blockwise) formulation.

Boxes are sorted by descending score (stable: equal scores keep index order, as torchvision's
CPU kernel). The sorted list is cut into tiles of `tile` boxes, visited in order by a
`while_loop`. A tile is first suppressed by every box kept in earlier tiles (one [tile, tile]
IoU block per earlier tile), then resolved inside itself by iterating
`keep = alive & ~any(keep_i & iou_ij > t, i < j)` to its fixed point, which is exactly the
greedy answer (entry j depends only on entries < j, so after at most `tile` rounds it is exact
and stays). Work is O(N^2 / 2) IoUs in large vector ops,
and the loop stops as soon as `max_output_size` boxes are kept.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.ops._checks import check_last_dim
from jaxvision.ops.boxes import box_iou

_TILE = 256


def nms(boxes, scores, iou_threshold, max_output_size: int, score_threshold=-jnp.inf):
    """Greedy NMS: keeps boxes in descending score order, dropping any box whose IoU with an
    already kept box is > `iou_threshold`.

    boxes: [N, 4] xyxy; scores: [N]; max_output_size: static int.
    Boxes with score <= `score_threshold` (or NaN) are ignored.
    Returns (indices int32 [max_output_size], valid bool [max_output_size]): the kept indices into
    `boxes` in the order torchvision.ops.nms returns them; padding slots hold 0 and valid=False.
    """
    return _nms(boxes, scores, None, iou_threshold, max_output_size, score_threshold)


def batched_nms(boxes, scores, classes, iou_threshold, max_output_size: int,
                score_threshold=-jnp.inf):
    """Class-aware NMS: boxes only suppress boxes of the same class (torchvision.ops.batched_nms).

    boxes: [N, 4] xyxy; scores: [N]; classes: [N] int. Returns (indices int32 [max_output_size],
    valid bool [max_output_size]) sorted by descending score, padding slots valid=False.
    """
    classes = jnp.asarray(classes)
    if classes.shape != jnp.shape(scores):
        raise ValueError(
            f"classes: expected shape {jnp.shape(scores)} (one per box), got {classes.shape}"
        )
    return _nms(boxes, scores, classes, iou_threshold, max_output_size, score_threshold)


def _nms(boxes, scores, classes, iou_threshold, max_output_size, score_threshold, tile=_TILE):
    check_last_dim(boxes, "boxes")
    boxes = jnp.asarray(boxes)
    scores = jnp.asarray(scores)
    if boxes.ndim != 2 or scores.shape != boxes.shape[:1]:
        raise ValueError(
            f"boxes/scores: expected shapes [N, 4] and [N], got {boxes.shape} and {scores.shape}"
        )
    if not isinstance(max_output_size, int) or max_output_size <= 0:
        raise ValueError(f"max_output_size: expected a positive int, got {max_output_size!r}")
    if boxes.shape[0] == 0:
        z = jnp.zeros((max_output_size,), jnp.int32)
        return z, jnp.zeros((max_output_size,), bool)
    thr = iou_threshold_as(iou_threshold, jnp.promote_types(boxes.dtype, jnp.float32))
    return _nms_tiled(boxes, scores, classes, thr, score_threshold, max_output_size, tile)


def iou_threshold_as(threshold, dtype):
    """The threshold t in `dtype` such that `iou > t` for IoUs in `dtype` is torchvision's
    kernel test, which compares the IoU with the threshold as a double: a Python number rounds
    down to the largest value <= t (float32(0.3) = 0.30000001 would keep an IoU of 0.30000001,
    which the kernel suppresses); a traced threshold is only cast."""
    if isinstance(threshold, (int, float, np.floating, np.integer)):
        t = np.asarray(threshold, dtype)
        if float(t) > float(threshold):
            t = np.nextafter(t, np.asarray(-np.inf, dtype))
        return jnp.asarray(t, dtype)
    return jnp.asarray(threshold, dtype)


@functools.partial(jax.jit, static_argnums=(5, 6))
def _nms_tiled(boxes, scores, classes, thr, score_threshold, max_output_size, tile):
    n = boxes.shape[0]
    tile = min(tile, n)
    num_tiles = -(-n // tile)
    padded = num_tiles * tile

    order = jnp.argsort(-scores, stable=True).astype(jnp.int32)
    sboxes = boxes[order]
    alive0 = scores[order] > score_threshold
    pad = padded - n
    sboxes = jnp.pad(sboxes, ((0, pad), (0, 0)))
    alive0 = jnp.pad(alive0, (0, pad))
    scls = None if classes is None else jnp.pad(jnp.asarray(classes)[order], (0, pad))
    upper = jnp.triu(jnp.ones((tile, tile), bool), k=1)  # i suppresses j only if i < j

    def over(a_boxes, b_boxes, a_cls, b_cls):
        hit = box_iou(a_boxes, b_boxes) > thr
        if a_cls is not None:
            hit &= a_cls[:, None] == b_cls[None, :]
        return hit

    def body(state):
        t, keep, count = state
        start = t * tile
        tb = jax.lax.dynamic_slice_in_dim(sboxes, start, tile)
        tc = None if scls is None else jax.lax.dynamic_slice_in_dim(scls, start, tile)
        alive = jax.lax.dynamic_slice_in_dim(alive0, start, tile)
        # suppression by the boxes kept in earlier tiles, one [tile, tile] block at a time

        def prev(j, alive):
            pb = jax.lax.dynamic_slice_in_dim(sboxes, j * tile, tile)
            pc = None if scls is None else jax.lax.dynamic_slice_in_dim(scls, j * tile, tile)
            pk = jax.lax.dynamic_slice_in_dim(keep, j * tile, tile)
            return alive & ~jnp.any(over(pb, tb, pc, tc) & pk[:, None], axis=0)

        alive = jax.lax.fori_loop(0, t, prev, alive)
        inside = over(tb, tb, tc, tc) & upper  # [tile, tile]

        def step(s):
            cur, _ = s
            new = alive & ~jnp.any(inside & cur[:, None], axis=0)
            return new, jnp.any(new != cur)

        tile_keep, _ = jax.lax.while_loop(lambda s: s[1], step, (alive, jnp.array(True)))
        keep = jax.lax.dynamic_update_slice_in_dim(keep, tile_keep, start, 0)
        return t + 1, keep, count + jnp.sum(tile_keep, dtype=jnp.int32)

    def cond(state):
        t, _, count = state
        return (t < num_tiles) & (count < max_output_size)

    init = (jnp.int32(0), jnp.zeros((padded,), bool), jnp.int32(0))
    _, keep, count = jax.lax.while_loop(cond, body, init)
    (pos,) = jnp.nonzero(keep, size=max_output_size, fill_value=0)
    valid = jnp.arange(max_output_size, dtype=jnp.int32) < count
    indices = jnp.where(valid, order[jnp.minimum(pos, n - 1)], 0).astype(jnp.int32)
    return indices, valid
