"""ResNet residual blocks (He et al., 2016), torchvision v1.5 layout.

Child names follow torchvision (`conv1`, `bn1`, ..., `downsample_conv`/`downsample_bn` for
`downsample.0`/`.1`) so weights import by name.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.layers.conv_bn import batch_norm, conv_init, torch_padding
from jaxvision.layers.cpu_conv import Conv


class _Block(nn.Module):
    planes: int
    strides: int = 1
    dtype: Any = jnp.float32
    axis_name: str | None = None

    def conv(self, features, k, strides, name):
        return Conv(features, (k, k), strides=(strides, strides), padding=torch_padding(k),
                       use_bias=False, kernel_init=conv_init, dtype=self.dtype, name=name)

    def bn(self, train, name):
        return batch_norm(train, dtype=self.dtype, axis_name=self.axis_name, name=name)

    def shortcut(self, x, out_features, train):
        """Identity, or a 1x1 strided projection + BN when the stride or the width changes."""
        if self.strides != 1 or x.shape[-1] != out_features:
            x = self.conv(out_features, 1, self.strides, "downsample_conv")(x)
            x = self.bn(train, "downsample_bn")(x)
        return x


class BasicBlock(_Block):
    """`[B, H, W, Cin] -> [B, H/s, W/s, planes]`: two 3x3 conv + BN, ReLU after the addition."""

    expansion = 1

    @nn.compact
    def __call__(self, x, train: bool):
        y = nn.relu(self.bn(train, "bn1")(self.conv(self.planes, 3, self.strides, "conv1")(x)))
        y = self.bn(train, "bn2")(self.conv(self.planes, 3, 1, "conv2")(y))
        return nn.relu(y + self.shortcut(x, self.planes, train))


class Bottleneck(_Block):
    """`[B, H, W, Cin] -> [B, H/s, W/s, 4*planes]`: 1x1 reduce, 3x3 (strided), 1x1 expand."""

    expansion = 4

    @nn.compact
    def __call__(self, x, train: bool):
        out = self.planes * self.expansion
        y = nn.relu(self.bn(train, "bn1")(self.conv(self.planes, 1, 1, "conv1")(x)))
        y = nn.relu(self.bn(train, "bn2")(self.conv(self.planes, 3, self.strides, "conv2")(y)))
        y = self.bn(train, "bn3")(self.conv(out, 1, 1, "conv3")(y))
        return nn.relu(y + self.shortcut(x, out, train))
