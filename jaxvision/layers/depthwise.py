"""Depthwise convolution written as a sum of shifted, per-channel scaled slices.

XLA's CPU backend runs grouped convolutions (`feature_group_count == C`) through a slow generic
path; k*k strided slices times a per-channel weight fuse into one elementwise loop instead
(measured on 2 cores, batch 16: 4-10x faster forward, 4-12x forward+backward, identical
numbers). Other backends use the library convolution (cuDNN / TPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# torchvision's kaiming_normal_(mode="fan_out"): fan_out of a [C, 1, k, k] weight is C*k*k.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def depthwise_conv_shifted(x, kernel, strides: int, padding: int):
    """`x: [B, H, W, C]`, `kernel: [k, k, 1, C]` (HWIO, torch's `[C, 1, k, k]` transposed)
    -> `[B, H', W', C]`, symmetric zero `padding`, `H' = (H + 2p - k) // strides + 1`."""
    k, s, p = kernel.shape[0], strides, padding
    b, h, w, c = x.shape
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    acc_dtype = jnp.promote_types(x.dtype, jnp.float32)
    out = None
    for i in range(k):
        for j in range(k):
            window = jax.lax.slice(xp, (0, i, j, 0), (b, i + (ho - 1) * s + 1,
                                                      j + (wo - 1) * s + 1, c), (1, s, s, 1))
            term = window.astype(acc_dtype) * kernel[i, j, 0].astype(acc_dtype)
            out = term if out is None else out + term
    return out.astype(x.dtype)


class DepthwiseConv(nn.Module):
    """`[B, H, W, C] -> [B, H/s, W/s, C]` kxk depthwise conv, no bias, padding (k-1)//2.

    Same parameter (`kernel [k, k, 1, C]`) as `nn.Conv(C, feature_group_count=C)`. `impl`:
    'shifted' (sum of slices), 'conv' (lax grouped conv) or 'auto' (shifted on CPU).
    """

    kernel_size: int
    strides: int = 1
    impl: str = "auto"
    kernel_init: Callable = conv_init
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, c = self.kernel_size, x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (k, k, 1, c), jnp.float32)
        x, kernel = jnp.asarray(x, self.dtype), jnp.asarray(kernel, self.dtype)
        p = (k - 1) // 2
        impl = self.impl
        if impl == "auto":
            impl = "shifted" if jax.default_backend() == "cpu" else "conv"
        if impl == "shifted":
            return depthwise_conv_shifted(x, kernel, self.strides, p)
        if impl != "conv":
            raise ValueError(f"depthwise impl: expected 'auto', 'shifted' or 'conv', got {impl!r}")
        return jax.lax.conv_general_dilated(
            x, kernel, (self.strides, self.strides), ((p, p), (p, p)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c)
