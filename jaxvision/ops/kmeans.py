"""Anchor priors by k-means on box sizes with the 1 - IoU distance (YOLOv2, section "Dimension
Clusters"; YOLOv3 takes 9 such clusters)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _wh_iou(wh, centroids):
    inter = (jnp.minimum(wh[:, None, 0], centroids[None, :, 0])
             * jnp.minimum(wh[:, None, 1], centroids[None, :, 1]))
    union = (wh[:, 0] * wh[:, 1])[:, None] + (centroids[:, 0] * centroids[:, 1])[None] - inter
    return inter / union


def kmeans_anchors(boxes_wh, k: int, *, max_iters: int = 300, seed: int = 0, init=None):
    """k anchor sizes clustering `boxes_wh` under d(box, centroid) = 1 - IoU(box, centroid),
    the two boxes sharing a centre.

    boxes_wh: [N, 2] positive (w, h); k: clusters (N >= k). Lloyd iterations: each box joins the
    centroid of highest IoU (ties: the lowest index), each centroid becomes the mean (w, h) of its
    boxes (a centroid left without boxes stays where it is), until the assignment stops changing
    or `max_iters`. Initial centroids: `init` [k, 2] if given, else k-means++ seeding under the
    same distance from `jax.random.key(seed)` (deterministic per seed): the first a uniformly
    drawn box, each next a box drawn with probability proportional to its squared distance to
    the nearest centroid chosen so far.
    Returns [k, 2] float32 centroids sorted by area (ascending), the order YOLOv3 deals them out
    to its strides (smallest to the finest).
    """
    wh = jnp.asarray(boxes_wh, jnp.float32)
    if wh.ndim != 2 or wh.shape[1] != 2:
        raise ValueError(f"boxes_wh: expected shape [N, 2], got {wh.shape}")
    if not isinstance(k, int) or k < 1 or k > wh.shape[0]:
        raise ValueError(f"k: expected an int in [1, N={wh.shape[0]}], got {k!r}")
    if init is None:
        centroids = _kmeans_pp(wh, k, jax.random.key(seed))
    else:
        centroids = jnp.asarray(init, jnp.float32)
        if centroids.shape != (k, 2):
            raise ValueError(f"init: expected shape {(k, 2)}, got {centroids.shape}")
    return _lloyd(wh, centroids, max_iters)


@functools.partial(jax.jit, static_argnums=1)
def _kmeans_pp(wh, k, key):
    keys = jax.random.split(key, k)
    n = wh.shape[0]
    first = wh[jax.random.randint(keys[0], (), 0, n)]
    centroids = jnp.zeros((k, 2), jnp.float32).at[0].set(first)
    dist = 1.0 - _wh_iou(wh, first[None])[:, 0]

    def body(i, state):
        centroids, dist = state
        p = dist * dist
        total = jnp.sum(p)
        # every box already coincides with a centroid: fall back to uniform
        p = jnp.where(total > 0, p / jnp.where(total > 0, total, 1.0), 1.0 / n)
        c = wh[jax.random.choice(keys[i], n, p=p)]
        return centroids.at[i].set(c), jnp.minimum(dist, 1.0 - _wh_iou(wh, c[None])[:, 0])

    return jax.lax.fori_loop(1, k, body, (centroids, dist))[0]


def _lloyd_step(wh, centroids):
    assign = jnp.argmax(_wh_iou(wh, centroids), axis=1).astype(jnp.int32)  # x64 too
    onehot = jax.nn.one_hot(assign, centroids.shape[0], dtype=jnp.float32)  # [N, k]
    count = onehot.sum(0)
    mean = (onehot.T @ wh) / jnp.maximum(count, 1)[:, None]
    return assign, jnp.where(count[:, None] > 0, mean, centroids)


@functools.partial(jax.jit, static_argnums=2)
def _lloyd(wh, centroids, max_iters):
    def cond(state):
        it, _, _, changed = state
        return (it < max_iters) & changed

    def body(state):
        it, c, assign, _ = state
        new_assign, new_c = _lloyd_step(wh, c)
        return it + 1, new_c, new_assign, jnp.any(new_assign != assign)

    init_assign = jnp.full((wh.shape[0],), -1, jnp.int32)
    _, c, _, _ = jax.lax.while_loop(cond, body, (0, centroids, init_assign, True))
    return c[jnp.argsort(c[:, 0] * c[:, 1], stable=True)]
