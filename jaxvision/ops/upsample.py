"""Upsampling ops on NHWC maps: nearest unpooling, max pooling with switches and max unpooling,
and the bilinear kernel that initialises FCN's transposed convolutions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.ops._checks import check_pair, check_rank


def nearest_upsample(x, factor=2):
    """Nearest-neighbour unpooling: each pixel becomes a factor x factor block.

    x: [N, H, W, C] -> [N, H * fh, W * fw, C].
    """
    check_rank(x, "x", 4, "[N, H, W, C] (NHWC)")
    fh, fw = check_pair(factor, "factor")
    return jnp.repeat(jnp.repeat(jnp.asarray(x), fh, axis=1), fw, axis=2)


def block_upsample(x, w, precision=None, preferred_element_type=None):
    """A transposed conv whose stride equals its kernel, as one matmul: every input pixel
    writes its own kh x kw output block, `y[n, kh*i + a, kw*j + b] = x[n, i, j] @ w[a, b]`.

    x: [N, H, W, Cin], w: [kh, kw, Cin, Cout] -> [N, H * kh, W * kw, Cout].
    """
    y = jax.lax.dot_general(x, w, (((3,), (2,)), ((), ())), precision=precision,
                            preferred_element_type=preferred_element_type)
    n, h, wd, kh, kw, c = y.shape
    return jnp.transpose(y, (0, 1, 3, 2, 4, 5)).reshape(n, h * kh, wd * kw, c)


def max_pool_with_argmax(x, window=2, strides=None):
    """Max pooling ('VALID') that also returns the switches (DeconvNet).

    x: [N, H, W, C]; window, strides: int or (h, w) (strides default to the window).
    Returns (y [N, oh, ow, C], switches int32 [N, oh, ow, C]): the flat index h * W + w of the
    maximum inside each window, first one on ties (torch.nn.MaxPool2d(return_indices=True)).
    Gradients flow through y to the chosen positions.
    """
    check_rank(x, "x", 4, "[N, H, W, C] (NHWC)")
    wh, ww = check_pair(window, "window")
    sh, sw = check_pair(strides if strides is not None else (wh, ww), "strides")
    x = jnp.asarray(x)
    n, h, w, c = x.shape
    if h < wh or w < ww:
        raise ValueError(f"x: expected spatial size >= window {(wh, ww)}, got {(h, w)}")
    flat = jnp.broadcast_to(jnp.arange(h * w, dtype=jnp.int32).reshape(1, h, w, 1), x.shape)

    def pick(a, b):
        av, ai = a
        bv, bi = b
        take_b = (bv > av) | ((bv == av) & (bi < ai)) | jnp.isnan(bv)
        return jnp.where(take_b, bv, av), jnp.where(take_b, bi, ai)

    xs = jax.lax.stop_gradient(x)
    _, switches = jax.lax.reduce_window(
        (xs, flat), (jnp.array(-jnp.inf, x.dtype), jnp.array(h * w, jnp.int32)), pick,
        (1, wh, ww, 1), (1, sh, sw, 1), "VALID")
    oh, ow = switches.shape[1:3]
    y = jnp.take_along_axis(x.reshape(n, h * w, c), switches.reshape(n, oh * ow, c), axis=1)
    return y.reshape(n, oh, ow, c), switches


def max_unpool(y, switches, output_shape):
    """Puts each value of `y` back at its switch position; every other position is 0.

    y, switches: [N, oh, ow, C] (from `max_pool_with_argmax`); output_shape: (H, W) or
    (N, H, W, C). Returns [N, H, W, C]. E.g. the 2x2 window [1, 3; 5, 2] pools to 5 with switch
    2 (row 1, column 0) and unpools to [0, 0; 5, 0].
    """
    check_rank(y, "y", 4, "[N, oh, ow, C] (NHWC)")
    y = jnp.asarray(y)
    switches = jnp.asarray(switches)
    if switches.shape != y.shape:
        raise ValueError(f"switches: expected shape {y.shape} (as y), got {switches.shape}")
    shape = tuple(int(s) for s in output_shape)
    if len(shape) == 4:
        if shape[0] != y.shape[0] or shape[3] != y.shape[3]:
            raise ValueError(f"output_shape: expected [{y.shape[0]}, H, W, {y.shape[3]}], "
                             f"got {shape}")
        shape = shape[1:3]
    if len(shape) != 2:
        raise ValueError(f"output_shape: expected (H, W) or (N, H, W, C), got {output_shape}")
    h, w = shape
    n, oh, ow, c = y.shape
    out = jnp.zeros((n, h * w, c), y.dtype)
    bi = jnp.arange(n)[:, None, None]
    ci = jnp.arange(c)[None, None, :]
    out = out.at[bi, switches.reshape(n, oh * ow, c), ci].set(y.reshape(n, oh * ow, c))
    return out.reshape(n, h, w, c)


def bilinear_kernel(kernel_size: int, channels: int, dtype=jnp.float32):
    """FCN's bilinear upsampling filter for a transposed conv, channel to same channel.

    Returns [k, k, channels, channels] (HWIO) with f(i, j) = (1 - |i - c| / s)(1 - |j - c| / s),
    s = ceil(k / 2), c = s - 1 (k odd) or s - 0.5 (k even), on the diagonal in -> out.
    """
    if kernel_size <= 0 or channels <= 0:
        raise ValueError(
            f"kernel_size/channels: expected positive ints, got {kernel_size} and {channels}"
        )
    s = (kernel_size + 1) // 2
    centre = s - 1 if kernel_size % 2 == 1 else s - 0.5
    og = np.arange(kernel_size)
    f1 = 1 - np.abs(og - centre) / s
    filt = np.outer(f1, f1)
    w = np.zeros((kernel_size, kernel_size, channels, channels), np.float64)
    w[:, :, np.arange(channels), np.arange(channels)] = filt[:, :, None]
    return jnp.asarray(w, dtype)


def bilinear_init(key, shape, dtype=jnp.float32):
    """Flax kernel initialiser giving `bilinear_kernel` for a square HWIO shape with I == O."""
    del key
    k, k2, cin, cout = shape
    if k != k2 or cin != cout:
        raise ValueError(f"shape: expected [k, k, C, C] (HWIO, square, in == out), got {shape}")
    return bilinear_kernel(k, cin, dtype)
