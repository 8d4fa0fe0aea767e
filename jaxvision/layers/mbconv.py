"""MBConv: inverted residual + squeeze-excite (MobileNetV2 / EfficientNet), torchvision layout."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.layers.conv_bn import ConvBN
from jaxvision.layers.squeeze_excite import SqueezeExcite


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Rounds a channel count to a multiple of `divisor`, never >10% down (as torchvision)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def stochastic_depth(x, rate: float, deterministic: bool, rng=None):
    """Drops whole samples of the residual branch with probability `rate` ("row" mode), scaling
    the kept ones by 1/(1 - rate). `x: [B, ...]`; identity when `deterministic` or `rate == 0`."""
    if deterministic or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = jax.random.bernoulli(rng, keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


class MBConv(nn.Module):
    """`[B, H, W, Cin] -> [B, H/s, W/s, out_features]`.

    1x1 expand (if `expand_ratio != 1`) -> kxk depthwise (stride s) -> squeeze-excite (Cin // 4
    squeeze channels) -> 1x1 project (no activation); residual with stochastic depth when the
    stride is 1 and the width is kept. Swish (SiLU) activations. Children `expand`, `depthwise`,
    `se`, `project`. Stochastic depth draws from the 'dropout' rng when `train`.
    """

    expand_ratio: int
    kernel_size: int
    strides: int
    out_features: int
    stochastic_depth_rate: float = 0.0
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    dtype: Any = jnp.float32
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool):
        cin = x.shape[-1]
        expanded = make_divisible(cin * self.expand_ratio, 8)
        def conv(features, k, s, groups, act, name):
            return ConvBN(features, kernel_size=k, strides=s, groups=groups, activation=act,
                          bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon,
                          dtype=self.dtype, axis_name=self.axis_name, name=name)

        y = x
        if expanded != cin:
            y = conv(expanded, 1, 1, 1, nn.silu, "expand")(y, train)
        y = conv(expanded, self.kernel_size, self.strides, expanded, nn.silu, "depthwise")(y, train)
        y = SqueezeExcite(max(1, cin // 4), nn.silu, self.dtype, name="se")(y)
        y = conv(self.out_features, 1, 1, 1, None, "project")(y, train)
        if self.strides == 1 and cin == self.out_features:
            rng = self.make_rng("dropout") if train and self.stochastic_depth_rate > 0 else None
            y = stochastic_depth(y, self.stochastic_depth_rate, not train, rng) + x
        return y
