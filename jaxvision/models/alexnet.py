"""AlexNet (Krizhevsky et al., 2012), torchvision's single-tower variant.

conv1 11x11/4 (64) - pool - conv2 5x5 (192) - pool - conv3 3x3 (384) - conv4 (256) - conv5 (256) -
pool (3x3/2 max pools, no padding); adaptive average pool to 6x6; dropout-fc6-ReLU,
dropout-fc7-ReLU, fc8.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.layers import Conv, adaptive_avg_pool, check_images, max_pool

# name: (features, kernel, stride, padding, max pool after)
CONVS = (
    ("conv1", 64, 11, 4, 2, True),
    ("conv2", 192, 5, 1, 2, True),
    ("conv3", 384, 3, 1, 1, False),
    ("conv4", 256, 3, 1, 1, False),
    ("conv5", 256, 3, 1, 1, True),
)


class AlexNet(nn.Module):
    """`__call__(x [B, H, W, 3], train) -> (logits [B, num_classes] | None, features)`.

    `features`: `conv1`..`conv5` (after ReLU), `pool1`, `pool2`, `pool5` (the three max pools;
    224 input gives 27x27x64, 13x13x192, 6x6x256) and with a classifier `fc7` `[B, 4096]`.
    Dropout draws from the 'dropout' rng when `train`. `num_classes=None` stops after pool5.
    """

    head_names = ("fc8",)  # class-count-dependent layers (config.init_from keeps fresh ones)

    num_classes: int | None = 1000
    dropout_rate: float = 0.5
    dtype: Any = jnp.float32
    axis_name: str | None = None  # no BatchNorm; accepted for a uniform factory signature

    @nn.compact
    def __call__(self, x, train: bool):
        check_images(x, "alexnet", channels=3, min_size=63)
        x = jnp.asarray(x, self.dtype)
        features = {}
        for name, width, k, s, p, pool in CONVS:
            x = Conv(width, (k, k), strides=(s, s), padding=((p, p), (p, p)),
                        dtype=self.dtype, name=name)(x)
            x = nn.relu(x)
            features[name] = x
            if pool:
                x = max_pool(x, 3, 2)
                features["pool" + name[-1]] = x
        if self.num_classes is None:
            return None, features
        x = adaptive_avg_pool(x, (6, 6))
        x = x.reshape(x.shape[0], -1)  # (h, w, c) order; the importer permutes torch's (c, h, w)
        for name in ("fc6", "fc7"):
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            x = nn.relu(nn.Dense(4096, dtype=self.dtype, name=name)(x))
        features["fc7"] = x
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="fc8")(x)
        return logits.astype(jnp.float32), features


def alexnet(**kwargs) -> AlexNet:
    """AlexNet. kwargs: num_classes=1000, dtype, dropout_rate."""
    return AlexNet(**kwargs)
