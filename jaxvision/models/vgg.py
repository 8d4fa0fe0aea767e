"""VGG-11/13/16/19 (Simonyan & Zisserman, 2015), with and without BatchNorm, as torchvision.

Five blocks of 3x3 convs (pad 1) + ReLU (+ BN before the ReLU in the `_bn` variants), each ended by
a 2x2/2 max pool; adaptive average pool to 7x7; classifier fc6 (25088->4096), fc7 (4096->4096)
with ReLU + dropout 0.5, fc8 (4096->num_classes). Conv layers are named `conv{block}_{i}` (and
`bn{block}_{i}`); `jaxvision.weights.from_torchvision` maps them to torchvision's `features.<n>`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.layers import Conv, adaptive_avg_pool, batch_norm, check_images, max_pool

# convs per block, widths 64, 128, 256, 512, 512 (torchvision cfgs "A", "B", "D", "E").
CONFIGS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
WIDTHS = (64, 128, 256, 512, 512)

# torchvision initialisation: kaiming_normal_(fan_out, relu) convs, N(0, 0.01) linears.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
_dense_init = nn.initializers.normal(0.01)


class VGG(nn.Module):
    """`__call__(x [B, H, W, 3], train) -> (logits [B, num_classes] | None, features)`.

    `features`: `conv{k}` the last ReLU output of block k (before its pool, `[B, H/2**(k-1), ...]`,
    what DeconvNet unpools into), `pool{k}` the pooled map `[B, H/2**k, W/2**k, C_k]` (FCN takes
    pool3, pool4, pool5), and with a classifier `fc7` `[B, 4096]`. Dropout draws from the
    'dropout' rng when `train`. `num_classes=None` stops after pool5 (logits None). `widths`
    (one per block) narrows the network, e.g. for FCN/DeconvNet on small images.
    """

    head_names = ("fc8",)  # class-count-dependent layers (config.init_from keeps fresh ones)

    depth: int = 16
    widths: tuple[int, ...] = WIDTHS
    batch_norm: bool = False
    num_classes: int | None = 1000
    dropout_rate: float = 0.5
    dtype: Any = jnp.float32
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool):
        arch = f"vgg{self.depth}{'_bn' if self.batch_norm else ''}"
        check_images(x, arch, channels=3, min_size=32)
        x = jnp.asarray(x, self.dtype)
        features = {}
        for b, (n_convs, width) in enumerate(zip(CONFIGS[self.depth], self.widths, strict=True)):
            for i in range(n_convs):
                x = Conv(width, (3, 3), padding=((1, 1), (1, 1)), kernel_init=_conv_init,
                            dtype=self.dtype, name=f"conv{b + 1}_{i + 1}")(x)
                if self.batch_norm:
                    x = batch_norm(train, dtype=self.dtype, axis_name=self.axis_name,
                                   name=f"bn{b + 1}_{i + 1}")(x)
                x = nn.relu(x)
            features[f"conv{b + 1}"] = x
            x = max_pool(x, 2, 2)
            features[f"pool{b + 1}"] = x
        if self.num_classes is None:
            return None, features
        x = adaptive_avg_pool(x, (7, 7))
        x = x.reshape(x.shape[0], -1)  # (h, w, c) order; the importer permutes torch's (c, h, w)
        for name in ("fc6", "fc7"):
            x = nn.Dense(4096, kernel_init=_dense_init, dtype=self.dtype, name=name)(x)
            x = nn.relu(x)
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        features["fc7"] = x
        logits = nn.Dense(self.num_classes, kernel_init=_dense_init, dtype=self.dtype,
                          name="fc8")(x)
        return logits.astype(jnp.float32), features


def vgg11(**kwargs) -> VGG:
    """VGG-11 (config A). kwargs: num_classes=1000, dtype, axis_name, dropout_rate."""
    return VGG(depth=11, **kwargs)


def vgg13(**kwargs) -> VGG:
    """VGG-13 (config B)."""
    return VGG(depth=13, **kwargs)


def vgg16(**kwargs) -> VGG:
    """VGG-16 (config D)."""
    return VGG(depth=16, **kwargs)


def vgg19(**kwargs) -> VGG:
    """VGG-19 (config E)."""
    return VGG(depth=19, **kwargs)


def vgg11_bn(**kwargs) -> VGG:
    """VGG-11 with BatchNorm after every conv."""
    return VGG(depth=11, batch_norm=True, **kwargs)


def vgg13_bn(**kwargs) -> VGG:
    """VGG-13 with BatchNorm after every conv."""
    return VGG(depth=13, batch_norm=True, **kwargs)


def vgg16_bn(**kwargs) -> VGG:
    """VGG-16 with BatchNorm after every conv."""
    return VGG(depth=16, batch_norm=True, **kwargs)


def vgg19_bn(**kwargs) -> VGG:
    """VGG-19 with BatchNorm after every conv."""
    return VGG(depth=19, batch_norm=True, **kwargs)
