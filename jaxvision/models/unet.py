"""U-Net (Ronneberger et al., 2015).

Contracting path: per level two 3x3 conv + ReLU, then 2x2 max pool. Expanding path: 2x2
up-convolution (or bilinear resize + 1x1 conv) halving the width, concatenation with the
centre-cropped encoder map of the same level, two 3x3 conv + ReLU. A 1x1 conv gives class logits.
`padding='VALID'` is the paper's network (572x572 in -> 388x388 out with depth 4);
`padding='SAME'` keeps the input size. `kernel_init='he'` is the paper's initialisation:
Gaussian with std sqrt(2 / N), N the inputs of one neuron (9 C_in for a 3x3 conv, C_in for the
2x2 stride-2 up-convolution, whose windows do not overlap); the default 'lecun' is flax's.
`dropout` > 0 drops the bottleneck's units in training (the paper's drop-out at the end of the
contracting path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.layers import Conv, ConvTranspose, check_images, max_pool
from jaxvision.ops.crop import center_crop

PADDINGS = ("VALID", "SAME")
UPSAMPLINGS = ("transpose", "bilinear")
KERNEL_INITS = ("lecun", "he")


def he_gaussian(taps_per_output: int = 0) -> Callable:
    """N(0, 2 / N) with N = the inputs one output neuron sees: fan-in of the kernel [..., C_in,
    C_out], or `taps_per_output` * C_in when given (1 for a stride-2 2x2 transposed conv)."""
    if not taps_per_output:
        return nn.initializers.variance_scaling(2.0, "fan_in", "normal")

    def init(key, shape, dtype=jnp.float32):
        std = (2.0 / (taps_per_output * shape[-2])) ** 0.5
        return std * jax.random.normal(key, shape, dtype)
    return init


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each followed by (optional BatchNorm and) ReLU."""

    features: int
    padding: str
    batch_norm: bool
    dtype: Any = jnp.float32
    axis_name: str | None = None
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x, train: bool):
        for i in range(2):
            x = Conv(self.features, (3, 3), padding=self.padding, use_bias=not self.batch_norm,
                     dtype=self.dtype, kernel_init=self.kernel_init, name=f"conv{i}")(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                 dtype=self.dtype, axis_name=self.axis_name, name=f"bn{i}")(x)
            x = nn.relu(x)
        return x


class UNet(nn.Module):
    """U-Net. `__call__(x [B,H,W,C], train) -> (logits [B,H',W',num_classes], features)`.

    With 'VALID' padding H' = H - 124 for depth 4 (572 -> 388) and every level's map must have
    an even size before pooling; with 'SAME', H' = H and H must be divisible by 2**depth.
    `features` holds the encoder maps `stage1`..`stage{depth}`, `bottleneck` and `decoder`.
    """

    head_names = ("head",)  # class-count-dependent layers (config.init_from keeps fresh ones)

    num_classes: int = 2
    depth: int = 4
    base_width: int = 64
    padding: str = "VALID"
    batch_norm: bool = False
    upsampling: str = "transpose"
    kernel_init: str = "lecun"
    dropout: float = 0.0
    dtype: Any = jnp.float32
    axis_name: str | None = None

    def setup(self):
        if self.padding not in PADDINGS:
            raise ValueError(f"unet padding: expected one of {PADDINGS}, got {self.padding!r}")
        if self.upsampling not in UPSAMPLINGS:
            raise ValueError(
                f"unet upsampling: expected one of {UPSAMPLINGS}, got {self.upsampling!r}")
        if self.kernel_init not in KERNEL_INITS:
            raise ValueError(
                f"unet kernel_init: expected one of {KERNEL_INITS}, got {self.kernel_init!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"unet dropout: expected a rate in [0, 1), got {self.dropout}")
        if self.depth < 1 or self.base_width < 1 or self.num_classes < 1:
            raise ValueError(
                "unet depth, base_width, num_classes: expected positive integers, got "
                f"{self.depth}, {self.base_width}, {self.num_classes}")

    def _init(self, taps_per_output: int = 0) -> Callable:
        if self.kernel_init == "he":
            return he_gaussian(taps_per_output)
        return nn.initializers.lecun_normal()

    def _block(self, features: int, name: str) -> DoubleConv:
        return DoubleConv(features, self.padding, self.batch_norm, self.dtype, self.axis_name,
                          self._init(), name=name)

    def _check_size(self, x):
        check_images(x, "unet")
        size = tuple(x.shape[1:3])
        for _ in range(self.depth):
            if self.padding == "VALID":
                size = tuple(s - 4 for s in size)
            if min(size) < 2 or any(s % 2 for s in size):
                raise ValueError(
                    f"unet input height/width: {tuple(x.shape[1:3])} does not pool evenly "
                    f"through depth {self.depth} with {self.padding} padding; for 'SAME' use a "
                    f"multiple of {2**self.depth}, for 'VALID' e.g. 572 (depth 4) or 188 (depth 3)")
            size = tuple(s // 2 for s in size)

    @nn.compact
    def __call__(self, x, train: bool = False):
        self._check_size(x)
        x = x.astype(self.dtype)
        features, skips = {}, []
        for level in range(self.depth):
            x = self._block(self.base_width * 2**level, f"down{level + 1}")(x, train)
            features[f"stage{level + 1}"] = x
            skips.append(x)
            x = max_pool(x, 2, 2)
        x = self._block(self.base_width * 2**self.depth, "bottleneck")(x, train)
        features["bottleneck"] = x
        if self.dropout:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        for level in reversed(range(self.depth)):
            width = self.base_width * 2**level
            if self.upsampling == "transpose":
                x = ConvTranspose(width, (2, 2), strides=(2, 2), dtype=self.dtype,
                                  kernel_init=self._init(taps_per_output=1),
                                  name=f"up{level + 1}")(x)
            else:
                b, h, w, c = x.shape
                x = jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear")
                x = Conv(width, (1, 1), dtype=self.dtype, kernel_init=self._init(),
                         name=f"up{level + 1}")(x)
            skip = center_crop(skips[level], x.shape[1], x.shape[2])
            x = jnp.concatenate([skip, x], axis=-1)
            x = self._block(width, f"decoder{level + 1}")(x, train)
        features["decoder"] = x
        logits = Conv(self.num_classes, (1, 1), dtype=self.dtype, kernel_init=self._init(),
                      name="head")(x)
        return logits, features
