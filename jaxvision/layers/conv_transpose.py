"""`flax.linen.ConvTranspose` whose non-overlapping case (kernel == stride) is one matmul.

A transposed conv with kernel k and stride k writes each input pixel into its own k x k output
block: `y[n, k*i + a, k*j + b] = x[n, i, j] @ W[k-1-a, k-1-b] + bias` (flax's kernel is not
flipped, `transpose_kernel=False`). `lax.conv_transpose` computes it as a convolution of the
zero-dilated input, and its kernel gradient as a convolution with a dilated map-sized window,
which XLA:CPU ran at 114 ms of the 240 ms U-Net step (configs/unet.py, batch 16). As a
`dot_general` over channels plus a reshape it is a few ms. Same parameters, same numbers up to
float32 summation order; every other case (overlapping kernels, dilation, masks,
`transpose_kernel`, 'CIRCULAR' padding) runs flax's own code.
"""

from __future__ import annotations

import flax.linen as nn

from jaxvision.ops.upsample import block_upsample


def _pairs(v, n=2):
    return (v,) * n if isinstance(v, int) else tuple(v)


class ConvTranspose(nn.ConvTranspose):
    """`nn.ConvTranspose` (same fields, parameters and names) with the kernel == stride case
    of a `[B, H, W, Cin]` input computed as `[B, H, W, Cin] @ [Cin, k*k*Cout]`."""

    @nn.compact
    def __call__(self, inputs):
        k = _pairs(self.kernel_size)
        if not (inputs.ndim == 4 and len(k) == 2 and _pairs(self.strides or 1) == k
                and _pairs(self.kernel_dilation or 1) == (1, 1) and self.mask is None
                and not self.transpose_kernel and self.padding in ("SAME", "VALID")):
            return super().__call__(inputs)
        kernel = self.param("kernel", self.kernel_init, (*k, inputs.shape[-1], self.features),
                            self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        x, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        # flax's unflipped kernel: block offset (a, b) takes kernel[k-1-a, k-1-b]
        y = block_upsample(x, kernel[::-1, ::-1], self.precision, self.preferred_element_type)
        return y if bias is None else y + bias
