"""Convolution + BatchNorm (+ activation), the unit every backbone is built from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

# conv_init: torchvision's kaiming_normal_(mode="fan_out", nonlinearity="relu") for convs.
from jaxvision.layers.cpu_conv import Conv
from jaxvision.layers.depthwise import DepthwiseConv, conv_init


def torch_padding(kernel_size: int, dilation: int = 1) -> tuple[tuple[int, int], tuple[int, int]]:
    """Symmetric padding `(k - 1) // 2 * dilation` on both sides, as torchvision's convs use.

    'SAME' would pad asymmetrically for strided convs with even inputs and give other numbers.
    """
    p = (kernel_size - 1) // 2 * dilation
    return ((p, p), (p, p))


def batch_norm(train: bool, *, momentum: float = 0.9, epsilon: float = 1e-5, dtype: Any,
               axis_name: str | None, name: str | None = None) -> nn.BatchNorm:
    """`nn.BatchNorm` with torchvision's defaults (torch momentum 0.1 == flax momentum 0.9).

    Statistics live in the `batch_stats` collection; `axis_name` averages them across devices
    under `pmap`/`shard_map`.
    """
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon,
                        dtype=dtype, axis_name=axis_name, name=name)


class ConvBN(nn.Module):
    """`[B, H, W, Cin] -> [B, H', W', features]`: conv (no bias), BatchNorm, optional activation.

    Mirrors torchvision's `Conv2dNormActivation` (children `conv`, `bn` = torch `.0`, `.1`).
    `groups == Cin > 1` gives a depthwise convolution (`DepthwiseConv`, fast on CPU); other
    convs run through `cpu_conv.Conv` (1x1 as a matmul and faster strided backward on CPU).
    """

    features: int
    kernel_size: int = 3
    strides: int = 1
    groups: int = 1
    activation: Callable | None = nn.relu
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool):
        k = self.kernel_size
        if self.groups > 1 and self.groups == x.shape[-1] == self.features:
            x = DepthwiseConv(k, self.strides, dtype=self.dtype, name="conv")(x)
        else:
            x = Conv(self.features, (k, k), strides=(self.strides, self.strides),
                        padding=torch_padding(k), feature_group_count=self.groups,
                        use_bias=False, kernel_init=conv_init, dtype=self.dtype, name="conv")(x)
        x = batch_norm(train, momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                       dtype=self.dtype, axis_name=self.axis_name, name="bn")(x)
        if self.activation is not None:
            x = self.activation(x)
        return x
