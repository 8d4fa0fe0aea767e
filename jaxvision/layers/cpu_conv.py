"""Convolution forms that XLA:CPU runs faster, behind `lax.conv_general_dilated`'s signature.

Measured on the 2-core dev CPU (batch 16, forward+backward, quiet machine): a 1x1 conv at
56x56x256 -> 64 took 108 ms through `lax.conv_general_dilated` and 34 ms as a `dot_general`
over channels; the strided 1x1 downsample 56x56x256 -> 512 205 ms vs 66 ms as strided slice +
`dot_general`. For strided kxk convs XLA's input gradient (a convolution of the zero-dilated
output gradient) is the slow part; `strided_conv` keeps XLA's forward and weight gradient and
computes the input gradient as s*s stride-1 convolutions, one per stride phase, interleaved.
With convolutions on XLA's Eigen kernels (jaxvision.xla_cpu_flags, jaxlib 0.10; measured
2026-12, `benchmarks/layer_ops.py`): 1x1 reduce 54 -> 51 ms, 1x1 /2 downsample 98 -> 85,
3x3 /2 82 -> 52 ms, but a 1x1 expand (Cin < Cout) 53 -> 68 ms: expanding 1x1 convs stay
convolutions (see `conv_general_dilated`).

`conv_general_dilated` is a drop-in for `flax.linen.Conv(conv_general_dilated=...)` (see
`Conv`): on the CPU backend it picks these forms where they apply; elsewhere, and for every
case they do not cover, it calls `lax.conv_general_dilated` unchanged. Same parameters, same
numbers up to float32 summation order. `IMPL` ('auto' | 'cpu' | 'plain') overrides the choice
at trace time (tests compare the two).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

IMPL = "auto"
_NHWC = ("NHWC", "HWIO", "NHWC")


def use_cpu_forms() -> bool:
    """True when the CPU forms are selected (`IMPL`, or 'auto' on the CPU backend)."""
    if IMPL not in ("auto", "cpu", "plain"):
        raise ValueError(f"cpu_conv.IMPL: expected 'auto', 'cpu' or 'plain', got {IMPL!r}")
    return IMPL == "cpu" or (IMPL == "auto" and jax.default_backend() == "cpu")


def conv1x1_dot(x, kernel, strides=(1, 1), precision=None, preferred_element_type=None):
    """`x: [B, H, W, Cin]`, `kernel: [1, 1, Cin, Cout]` -> `[B, ceil(H/sh), ceil(W/sw), Cout]`,
    no padding: a strided slice then a `dot_general` over channels."""
    sh, sw = strides
    if (sh, sw) != (1, 1):
        x = x[:, ::sh, ::sw, :]
    return lax.dot_general(x, kernel[0, 0], (((3,), (0,)), ((), ())), precision=precision,
                           preferred_element_type=preferred_element_type)


def _conv(x, w, strides, padding, precision):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC,
                                    precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def strided_conv(x, kernel, strides, padding, precision=None):
    """`lax.conv_general_dilated` (NHWC/HWIO, explicit `padding` pairs, groups 1) whose input
    gradient is computed per stride phase with stride-1 convolutions."""
    return _conv(x, kernel, strides, padding, precision)


def _strided_fwd(x, kernel, strides, padding, precision):
    return _conv(x, kernel, strides, padding, precision), (x, kernel)


def _strided_bwd(strides, padding, precision, res, g):
    """Padded input row P = s*o + i (kernel row i) lies in phase a = P % s at q = P // s, with
    i = a + s*t and o = q - t: each phase's gradient is a full stride-1 correlation of g with
    the flipped sub-kernel `kernel[a::s, b::s]`."""
    x, kernel = res
    b, h, w, c = x.shape
    kh, kw = kernel.shape[:2]
    (sh, sw), ((pt, pb), (pl, pr)) = strides, padding
    oh, ow = g.shape[1:3]
    hp, wp = h + pt + pb, w + pl + pr
    qh, qw = -(-hp // sh), -(-wp // sw)
    (dw,) = jax.vjp(lambda k: _conv(x, k, strides, padding, precision), kernel)[1](g)
    zero = jnp.zeros((b, qh, qw, c), g.dtype)
    rows = []
    for a in range(sh):
        cols = []
        for bb in range(sw):
            sub = kernel[a::sh, bb::sw]
            ka, kb = sub.shape[:2]
            if ka == 0 or kb == 0:
                cols.append(zero)
                continue
            gp = jnp.pad(g, ((0, 0), (ka - 1, max(0, qh - oh)), (kb - 1, max(0, qw - ow)),
                             (0, 0)))
            flipped = jnp.swapaxes(sub[::-1, ::-1], 2, 3).astype(g.dtype)
            cols.append(_conv(gp, flipped, (1, 1), "VALID", precision)[:, :qh, :qw])
        rows.append(jnp.stack(cols, axis=3))
    dxp = jnp.stack(rows, axis=2).reshape(b, qh * sh, qw * sw, c)
    return dxp[:, pt:pt + h, pl:pl + w].astype(x.dtype), dw


strided_conv.defvjp(_strided_fwd, _strided_bwd)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None,
                         preferred_element_type=None, **kwargs):
    """`lax.conv_general_dilated` with the CPU forms above where they apply (NHWC/HWIO, no
    dilation, one group): 1x1 with zero padding, strided or reducing channels (Cin > Cout) ->
    `conv1x1_dot`; stride > 1 -> `strided_conv`. A stride-1 1x1 conv with Cin <= Cout stays a
    convolution: as a dot its weight gradient transposes the wider output gradient, and a
    ResNet-50 expand unit (conv + BN + ReLU, 64 -> 256 at 56x56, batch 16) took 248 ms against
    118 ms as XLA's (Eigen) convolution and torch's 160 ms."""
    def plain():
        return lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count, precision=precision,
            preferred_element_type=preferred_element_type, **kwargs)

    if not use_cpu_forms() or lhs.ndim != 4 or kwargs or feature_group_count != 1:
        return plain()
    if lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != \
            lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC):
        return plain()
    if any(d != 1 for d in (lhs_dilation or (1, 1))) or \
            any(d != 1 for d in (rhs_dilation or (1, 1))):
        return plain()
    strides = tuple(int(s) for s in window_strides)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    if rhs.shape[:2] == (1, 1) and padding == ((0, 0), (0, 0)) and \
            (strides != (1, 1) or rhs.shape[2] > rhs.shape[3]):
        return conv1x1_dot(lhs, rhs, strides, precision, preferred_element_type)
    if strides != (1, 1) and preferred_element_type is None:
        return strided_conv(lhs, rhs, strides, padding, precision)
    return plain()


class Conv(nn.Conv):
    """`flax.linen.Conv` (same parameters and names) that runs `conv_general_dilated` above."""

    conv_general_dilated: object = conv_general_dilated
