"""Darknet-53 (Redmon & Farhadi, 2018, Table 1): the YOLOv3 backbone.

Every conv is conv (no bias) + BatchNorm + leaky ReLU (slope 0.1), 'same' padding (k // 2 both
sides). A 3x3/1 stem conv (32), then five stages; each starts with a 3x3/2 conv doubling the
width (64, 128, 256, 512, 1024) followed by 1, 2, 8, 8, 4 residual blocks
(1x1 to half width, 3x3 back, added to the input). With `num_classes` a classifier: global
average pool + a fully connected layer (the paper's ImageNet model). `width` scales every
channel count (rounded, at least 8) and `depths` the block counts, for small CPU runs.
Layer names: stem, stage{s}_down, stage{s}_block{b}_{1,2}, each with a `conv` and a `bn`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.layers import ConvBN, check_images, global_avg_pool

DEPTHS = (1, 2, 8, 8, 4)
WIDTHS = (64, 128, 256, 512, 1024)


def leaky_relu(x):
    """Darknet's leaky ReLU, slope 0.1."""
    return nn.leaky_relu(x, 0.1)


def scaled(channels: int, width: float) -> int:
    """Channel count times `width`, rounded, at least 8."""
    return max(8, int(round(channels * width)))


def DarknetConv(features: int, kernel_size: int = 3, strides: int = 1, *, name: str,  # noqa: N802
                dtype: Any = jnp.float32, axis_name: str | None = None,
                bn_epsilon: float = 1e-5) -> ConvBN:
    """[B, H, W, Cin] -> [B, H / strides, W / strides, features]: conv (no bias) + BN + leaky
    ReLU 0.1, a `ConvBN` with children `conv` and `bn`."""
    return ConvBN(features, kernel_size, strides, activation=leaky_relu, bn_epsilon=bn_epsilon,
                  dtype=dtype, axis_name=axis_name, name=name)


class Darknet53(nn.Module):
    """`__call__(x [B, H, W, 3], train) -> (logits [B, num_classes] | None, features)`.

    features: `stride8` [B, H/8, W/8, 256w], `stride16` [B, H/16, W/16, 512w], `stride32`
    [B, H/32, W/32, 1024w] (the last block of stages 3, 4, 5).
    """

    num_classes: int | None = 1000
    width: float = 1.0
    depths: tuple[int, ...] = DEPTHS
    dtype: Any = jnp.float32
    axis_name: str | None = None
    bn_epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x, train: bool):
        check_images(x, "darknet53", channels=3, min_size=32)
        if len(self.depths) != 5 or min(self.depths) < 0:
            raise ValueError(f"darknet53 depths: expected 5 non-negative block counts, got "
                             f"{self.depths}")
        kw = dict(dtype=self.dtype, axis_name=self.axis_name, bn_epsilon=self.bn_epsilon)
        x = jnp.asarray(x, self.dtype)
        x = DarknetConv(scaled(32, self.width), 3, name="stem", **kw)(x, train)
        features = {}
        for s, (n, c) in enumerate(zip(self.depths, WIDTHS, strict=True)):
            c = scaled(c, self.width)
            x = DarknetConv(c, 3, 2, name=f"stage{s + 1}_down", **kw)(x, train)
            for b in range(n):
                y = DarknetConv(c // 2, 1, name=f"stage{s + 1}_block{b + 1}_1", **kw)(x, train)
                y = DarknetConv(c, 3, name=f"stage{s + 1}_block{b + 1}_2", **kw)(y, train)
                x = x + y
            if s >= 2:
                features[f"stride{2 ** (s + 1)}"] = x
        if self.num_classes is None:
            return None, features
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(
            global_avg_pool(x).reshape(x.shape[0], -1))
        return logits.astype(jnp.float32), features


def darknet53(**kwargs) -> Darknet53:
    """Darknet-53. kwargs: num_classes=1000 (None: features only), width, depths, dtype,
    axis_name, bn_epsilon=1e-5."""
    return Darknet53(**kwargs)
