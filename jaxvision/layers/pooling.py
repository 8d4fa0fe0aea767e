"""Pooling helpers with torchvision's semantics, on NHWC maps."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np


def _adaptive_matrix(n_in: int, n_out: int) -> np.ndarray:
    """`[n_out, n_in]` averaging weights: bin i covers [floor(i*n/m), ceil((i+1)*n/m))."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = math.ceil((i + 1) * n_in / n_out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool(x, output_size: tuple[int, int]):
    """torch.nn.AdaptiveAvgPool2d on NHWC: `x: [B, H, W, C] -> [B, oh, ow, C]`.

    Bins may overlap (when H is not a multiple of oh) exactly as in torch; the identity when the
    map already has the output size (the standard 224 input for AlexNet/VGG).
    """
    oh, ow = output_size
    h, w = x.shape[1:3]
    if (h, w) == (oh, ow):
        return x
    ph = jnp.asarray(_adaptive_matrix(h, oh), x.dtype)
    pw = jnp.asarray(_adaptive_matrix(w, ow), x.dtype)
    return jnp.einsum("ih,bhwc,jw->bijc", ph, x, pw)


def global_avg_pool(x):
    """`[B, H, W, C] -> [B, C]` mean over the spatial axes."""
    return jnp.mean(x, axis=(1, 2))
