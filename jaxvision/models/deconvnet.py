"""DeconvNet (Noh, Hong & Han, 2015): a VGG16 encoder and its mirror image as decoder.

Encoder: VGG16's 13 convs with BatchNorm (`vgg16_bn`, or narrower `widths`); each
2x2 max pool records its switches (`jaxvision.ops.max_pool_with_argmax`). fc6 is a convolution
covering the whole pool5 map ('VALID', 7x7 at 224x224 input, so a 1x1 map; `fc_kernel` fixes the
size instead) and fc7 a 1x1 convolution. The decoder mirrors it: a transposed conv of fc6's
kernel size back to the pool5 size, then per block, deepest first, max unpooling with that
block's switches to the encoder's pre-pool size and 3x3 deconvolutions (transposed convs, stride
1) with BatchNorm + ReLU, the last of each block narrowing to the next block's width. A 1x1 conv
scores the classes. Any input of at least 32x32 gives logits of the input size: pooling floors
and unpooling restores each encoder map's exact size.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.layers import batch_norm, check_images
from jaxvision.models import vgg as vgg_lib
from jaxvision.models.backbones import make_backbone
from jaxvision.ops.upsample import max_pool_with_argmax, max_unpool


class DeconvNet(nn.Module):
    """`__call__(x [B, H, W, 3], train) -> (logits [B, H, W, num_classes] float32, features)`.

    `features`: the encoder's `conv{k}` (pre-pool, [B, H_k, W_k, C_k]) and `pool{k}`,
    `switches{k}` (int32 flat indices into conv{k}, as `pool{k}`), `fc7`, `deconv_fc6` (the
    pool5-sized decoder input), `unpool{k}` (the unpooled map, shape of conv{k}, before
    block k's deconvolutions) and `deconv{k}` (block k's output).
    """

    head_names = ("score",)  # class-count-dependent layers (config.init_from keeps fresh ones)

    num_classes: int = 21
    widths: tuple[int, ...] | None = None  # None: VGG16's (64, 128, 256, 512, 512)
    fc_width: int = 4096
    fc_kernel: int | None = None  # None: the pool5 map's size
    dtype: Any = jnp.float32
    axis_name: str | None = None

    def _bn_relu(self, y, train, name):
        return nn.relu(batch_norm(train, dtype=self.dtype, axis_name=self.axis_name,
                                  name=name)(y))

    @nn.compact
    def __call__(self, x, train: bool):
        check_images(x, "deconvnet", channels=3, min_size=32)
        for field in ("num_classes", "fc_width"):
            if int(getattr(self, field)) < 1:
                raise ValueError(f"deconvnet {field}: expected a positive integer, "
                                 f"got {getattr(self, field)}")
        widths = tuple(self.widths) if self.widths is not None else vgg_lib.WIDTHS
        _, enc = make_backbone("vgg16", widths, True, self.dtype, self.axis_name)(
            jnp.asarray(x, self.dtype), train)
        features = dict(enc)
        for k in range(1, 6):
            pooled, features[f"switches{k}"] = max_pool_with_argmax(enc[f"conv{k}"], 2)
        pool5 = pooled.shape[1:3]
        kernel = pool5 if self.fc_kernel is None else (self.fc_kernel,) * 2
        if min(pool5[0] - kernel[0], pool5[1] - kernel[1]) < 0 or min(kernel) < 1:
            raise ValueError(f"deconvnet fc_kernel: expected 1..{min(pool5)} (the pool5 map is "
                             f"{pool5} for input {x.shape[1:3]}), got {self.fc_kernel}")
        y = nn.Conv(self.fc_width, kernel, padding="VALID", dtype=self.dtype, name="fc6")(pooled)
        y = self._bn_relu(y, train, "bn_fc6")
        y = nn.Conv(self.fc_width, (1, 1), dtype=self.dtype, name="fc7")(y)
        features["fc7"] = y = self._bn_relu(y, train, "bn_fc7")
        y = nn.ConvTranspose(widths[4], kernel, padding="VALID", dtype=self.dtype,
                             name="deconv_fc6")(y)
        features["deconv_fc6"] = y = self._bn_relu(y, train, "bn_deconv_fc6")
        for k in range(5, 0, -1):
            y = max_unpool(y, features[f"switches{k}"], enc[f"conv{k}"].shape)
            features[f"unpool{k}"] = y
            n_convs = vgg_lib.CONFIGS[16][k - 1]
            for i in range(n_convs):
                width = widths[max(k - 2, 0)] if i == n_convs - 1 else widths[k - 1]
                y = nn.ConvTranspose(width, (3, 3), padding="SAME", dtype=self.dtype,
                                     name=f"deconv{k}_{i + 1}")(y)
                y = self._bn_relu(y, train, f"bn_deconv{k}_{i + 1}")
            features[f"deconv{k}"] = y
        logits = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name="score")(y)
        return logits.astype(jnp.float32), features


def deconvnet(**kwargs) -> DeconvNet:
    """DeconvNet. kwargs: num_classes, widths (5 block widths), fc_width=4096, fc_kernel=None,
    dtype, axis_name."""
    return DeconvNet(**kwargs)
