"""Squeeze-and-excitation (Hu et al., 2018) as torchvision's `SqueezeExcitation`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.layers.conv_bn import conv_init
from jaxvision.layers.cpu_conv import Conv


class SqueezeExcite(nn.Module):
    """`[B, H, W, C] -> [B, H, W, C]`: x * sigmoid(fc2(act(fc1(mean_hw(x))))).

    `fc1`/`fc2` are 1x1 convolutions with bias (`squeeze_channels` wide in between), so their
    weights import one to one from torchvision.
    """

    squeeze_channels: int
    activation: Callable = nn.silu
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = Conv(self.squeeze_channels, (1, 1), kernel_init=conv_init, dtype=self.dtype,
                    name="fc1")(s)
        s = self.activation(s)
        s = Conv(x.shape[-1], (1, 1), kernel_init=conv_init, dtype=self.dtype, name="fc2")(s)
        return x * nn.sigmoid(s)
