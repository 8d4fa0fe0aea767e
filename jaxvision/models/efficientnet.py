"""EfficientNet-B0..B7 (Tan & Le, 2019), torchvision's layout and numbers.

B0 is the NAS-found network below (MBConv blocks with squeeze-excite and swish); B1..B7 scale it
by compound scaling: widths x `width_mult` rounded to a multiple of 8, repeats x `depth_mult`
rounded up, a larger native resolution and more dropout. Stochastic depth on the residual
branches rises linearly from 0 to 0.2 over the blocks.

BatchNorm follows torchvision exactly: B0-B4 use torch's defaults (eps 1e-5, momentum 0.1 ->
flax 0.9); B5-B7 use eps 1e-3, momentum 0.01 (flax 0.99) as ported from the TF checkpoints.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.layers import ConvBN, MBConv, check_images, global_avg_pool, make_divisible


class Stage(NamedTuple):
    expand_ratio: int
    kernel_size: int
    strides: int
    in_channels: int
    out_channels: int
    repeats: int


# The B0 block table (stages 1..7): expand ratio, kernel, stride, in, out, repeats.
B0_STAGES = (
    Stage(1, 3, 1, 32, 16, 1),
    Stage(6, 3, 2, 16, 24, 2),
    Stage(6, 5, 2, 24, 40, 2),
    Stage(6, 3, 2, 40, 80, 3),
    Stage(6, 5, 1, 80, 112, 3),
    Stage(6, 5, 2, 112, 192, 4),
    Stage(6, 3, 1, 192, 320, 1),
)


class Variant(NamedTuple):
    width_mult: float
    depth_mult: float
    resolution: int
    dropout: float


VARIANTS: dict[str, Variant] = {
    "efficientnet_b0": Variant(1.0, 1.0, 224, 0.2),
    "efficientnet_b1": Variant(1.0, 1.1, 240, 0.2),
    "efficientnet_b2": Variant(1.1, 1.2, 260, 0.3),
    "efficientnet_b3": Variant(1.2, 1.4, 300, 0.3),
    "efficientnet_b4": Variant(1.4, 1.8, 380, 0.4),
    "efficientnet_b5": Variant(1.6, 2.2, 456, 0.4),
    "efficientnet_b6": Variant(1.8, 2.6, 528, 0.5),
    "efficientnet_b7": Variant(2.0, 3.1, 600, 0.5),
}
# Native input resolution per variant (B0 224 ... B7 600).
RESOLUTIONS: dict[str, int] = {name: v.resolution for name, v in VARIANTS.items()}


def scaled_stages(width_mult: float, depth_mult: float) -> tuple[Stage, ...]:
    """The B0 table with channels x width_mult (multiples of 8) and repeats x depth_mult (ceil)."""
    return tuple(
        s._replace(in_channels=make_divisible(s.in_channels * width_mult, 8),
                   out_channels=make_divisible(s.out_channels * width_mult, 8),
                   repeats=int(math.ceil(s.repeats * depth_mult)))
        for s in B0_STAGES)


class EfficientNet(nn.Module):
    """`__call__(x [B, H, W, 3], train) -> (logits [B, num_classes] | None, features)`.

    `features` (stage k = last map at stride 2**k; with B0 widths):
      stem: 3x3/2 conv-BN-swish   [B, H/2,  W/2,  32]
      stage1: block1               [B, H/2,  W/2,  16]
      stage2: block2               [B, H/4,  W/4,  24]
      stage3: block3               [B, H/8,  W/8,  40]
      stage4: block5               [B, H/16, W/16, 112]
      stage5: 1x1 head conv-BN-swish [B, H/32, W/32, 1280]
      block1..block7: the output of each MBConv stage; pooled: [B, 1280]
    Dropout before the classifier and stochastic depth draw from the 'dropout' rng when `train`.
    """

    # class-count-dependent layers (config.init_from keeps them fresh when shapes differ)
    head_names = ("classifier",)

    width_mult: float = 1.0
    depth_mult: float = 1.0
    dropout_rate: float = 0.2
    stochastic_depth_rate: float = 0.2
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    num_classes: int | None = 1000
    dtype: Any = jnp.float32
    axis_name: str | None = None
    arch: str = "efficientnet"

    @property
    def native_resolution(self) -> int | None:
        """The variant's training/eval input size (B0 224 ... B7 600), None for custom ones."""
        return RESOLUTIONS.get(self.arch)

    @nn.compact
    def __call__(self, x, train: bool):
        check_images(x, self.arch, channels=3, min_size=32)
        x = jnp.asarray(x, self.dtype)
        stages = scaled_stages(self.width_mult, self.depth_mult)
        bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon, dtype=self.dtype,
                  axis_name=self.axis_name)
        features = {}
        x = ConvBN(stages[0].in_channels, 3, 2, activation=nn.silu, name="stem", **bn)(x, train)
        features["stem"] = x
        total = sum(s.repeats for s in stages)
        block_id = 0
        for i, s in enumerate(stages):
            for j in range(s.repeats):
                x = MBConv(s.expand_ratio, s.kernel_size, s.strides if j == 0 else 1,
                           s.out_channels,
                           stochastic_depth_rate=self.stochastic_depth_rate * block_id / total,
                           name=f"block{i + 1}_{j}", **bn)(x, train)
                block_id += 1
            features[f"block{i + 1}"] = x
        x = ConvBN(4 * stages[-1].out_channels, 1, 1, activation=nn.silu, name="head", **bn)(
            x, train)
        features.update(stage1=features["block1"], stage2=features["block2"],
                        stage3=features["block3"], stage4=features["block5"], stage5=x)
        x = global_avg_pool(x)
        features["pooled"] = x
        if self.num_classes is None:
            return None, features
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(x)
        return logits.astype(jnp.float32), features


def _efficientnet(arch: str, **kwargs) -> EfficientNet:
    v = VARIANTS[arch]
    big = arch in ("efficientnet_b5", "efficientnet_b6", "efficientnet_b7")
    defaults = dict(width_mult=v.width_mult, depth_mult=v.depth_mult, dropout_rate=v.dropout,
                    bn_momentum=0.99 if big else 0.9, bn_epsilon=1e-3 if big else 1e-5, arch=arch)
    return EfficientNet(**{**defaults, **kwargs})


def efficientnet_b0(**kwargs) -> EfficientNet:
    """EfficientNet-B0: (width, depth) (1.0, 1.0), 224px, dropout 0.2."""
    return _efficientnet("efficientnet_b0", **kwargs)


def efficientnet_b1(**kwargs) -> EfficientNet:
    """EfficientNet-B1: (width, depth) (1.0, 1.1), 240px, dropout 0.2."""
    return _efficientnet("efficientnet_b1", **kwargs)


def efficientnet_b2(**kwargs) -> EfficientNet:
    """EfficientNet-B2: (width, depth) (1.1, 1.2), 260px, dropout 0.3."""
    return _efficientnet("efficientnet_b2", **kwargs)


def efficientnet_b3(**kwargs) -> EfficientNet:
    """EfficientNet-B3: (width, depth) (1.2, 1.4), 300px, dropout 0.3."""
    return _efficientnet("efficientnet_b3", **kwargs)


def efficientnet_b4(**kwargs) -> EfficientNet:
    """EfficientNet-B4: (width, depth) (1.4, 1.8), 380px, dropout 0.4."""
    return _efficientnet("efficientnet_b4", **kwargs)


def efficientnet_b5(**kwargs) -> EfficientNet:
    """EfficientNet-B5: (width, depth) (1.6, 2.2), 456px, dropout 0.4."""
    return _efficientnet("efficientnet_b5", **kwargs)


def efficientnet_b6(**kwargs) -> EfficientNet:
    """EfficientNet-B6: (width, depth) (1.8, 2.6), 528px, dropout 0.5."""
    return _efficientnet("efficientnet_b6", **kwargs)


def efficientnet_b7(**kwargs) -> EfficientNet:
    """EfficientNet-B7: (width, depth) (2.0, 3.1), 600px, dropout 0.5."""
    return _efficientnet("efficientnet_b7", **kwargs)
