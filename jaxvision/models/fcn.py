"""FCN-32s / FCN-16s / FCN-8s (Long, Shelhamer & Darrell, 2015) on a VGG16 (or ResNet) backbone.

The classifier's fc6/fc7 become convolutions (`fc_kernel` x `fc_kernel`, then 1x1, ReLU + dropout),
a 1x1 `score_fr` gives class scores at stride 32, and learnable transposed convolutions initialised
to bilinear interpolation (kernel 2f, stride f) upsample them. FCN-16s adds the 1x1 `score_pool4`
map to the 2x-upsampled scores before a 16x upsampling; FCN-8s also adds `score_pool3` after one
more 2x step and upsamples 8x. Score layers start at zero (as in the paper), so training starts
from the coarser net's predictions. The output is cropped to the input size.

Padding, and how it differs from the paper: the Caffe net pads conv1_1 by 100 so that fc6 (7x7,
no padding) fits small images, and crops the upsampled output back with per-layer offsets. That
multiplies the compute on 64x64 inputs about 17-fold. Here every conv, fc6 included, is
'SAME'-padded, and the input is zero-padded at the bottom/right to a multiple of 32, so every
score map is exactly twice the size of the next one; the upsampled output is cropped to [:H, :W].
`fc_kernel` and `fc_width` keep the paper's 7 and 4096 by default; small values (e.g. 3 and 256)
and `backbone_widths` suit small images and CPUs.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.layers import check_images
from jaxvision.models.backbones import make_backbone
from jaxvision.ops.upsample import bilinear_init

VARIANTS = (32, 16, 8)
# backbone family -> names of its stride-8, stride-16 and stride-32 feature maps
SKIPS = {"vgg": ("pool3", "pool4", "pool5"), "resnet": ("stage3", "stage4", "stage5")}
_zeros = nn.initializers.zeros


class BilinearUpsample(nn.Module):
    """Learnable x`factor` upsampling `[B, h, w, C] -> [B, factor*h, factor*w, C]`.

    A transposed conv (kernel 2*factor, stride factor, no bias) initialised to FCN's bilinear
    kernel, whose output ((h+1)*factor) is cropped by factor/2 on each side: at initialisation it
    equals `jax.image.resize(x, ..., 'bilinear')` (half-pixel centres) away from the border.
    """

    factor: int
    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        f = self.factor
        if f < 2 or f % 2:
            raise ValueError(f"upsampling factor: expected an even integer >= 2, got {f}")
        y = nn.ConvTranspose(self.features, (2 * f, 2 * f), strides=(f, f), padding="VALID",
                             use_bias=False, kernel_init=bilinear_init, dtype=self.dtype,
                             name="deconv")(x)
        h, w = x.shape[1] * f, x.shape[2] * f
        return y[:, f // 2:f // 2 + h, f // 2:f // 2 + w]


class FCN(nn.Module):
    """`__call__(x [B, H, W, 3], train) -> (logits [B, H, W, num_classes] float32, features)`.

    `stride` 32, 16 or 8 picks FCN-32s/16s/8s. `features`: the backbone's maps (`pool1`..`pool5`
    for VGG), `score_fr` [B, H'/32, W'/32, K] (H' = H rounded up to a multiple of 32) and
    `fused` (the score map fed to the last upsampling, stride `stride`). Dropout draws from the
    'dropout' rng when `train`.
    """

    # class-count-dependent layers (config.init_from keeps them fresh when shapes differ)
    head_names = ("score_fr", "score_pool4", "score_pool3", "upscore2", "upscore_pool4", "upscore")

    num_classes: int = 21
    stride: int = 32
    backbone: str = "vgg16"
    backbone_widths: tuple[int, ...] | None = None
    batch_norm: bool = False
    fc_width: int = 4096
    fc_kernel: int = 7
    dropout_rate: float = 0.5
    dtype: Any = jnp.float32
    axis_name: str | None = None

    def _check(self, x):
        if self.stride not in VARIANTS:
            raise ValueError(f"fcn stride: expected one of {VARIANTS}, got {self.stride}")
        for field in ("num_classes", "fc_width", "fc_kernel"):
            if int(getattr(self, field)) < 1:
                raise ValueError(f"fcn {field}: expected a positive integer, "
                                 f"got {getattr(self, field)}")
        check_images(x, f"fcn{self.stride}s", channels=3, min_size=32)

    @nn.compact
    def __call__(self, x, train: bool):
        self._check(x)
        b, h, w, _ = x.shape
        ph, pw = -h % 32, -w % 32
        x = jnp.pad(jnp.asarray(x, self.dtype), ((0, 0), (0, ph), (0, pw), (0, 0)))
        _, features = make_backbone(self.backbone, self.backbone_widths, self.batch_norm,
                                    self.dtype, self.axis_name)(x, train)
        s8, s16, s32 = SKIPS["resnet" if self.backbone.startswith("resnet") else "vgg"]
        y = features[s32]
        for name, k in (("fc6", self.fc_kernel), ("fc7", 1)):
            y = nn.Conv(self.fc_width, (k, k), padding="SAME", dtype=self.dtype, name=name)(y)
            y = nn.Dropout(self.dropout_rate, deterministic=not train)(nn.relu(y))
        k = self.num_classes
        score = lambda name: nn.Conv(k, (1, 1), kernel_init=_zeros, dtype=self.dtype, name=name)
        y = score("score_fr")(y)
        features = dict(features, score_fr=y)
        if self.stride <= 16:
            y = BilinearUpsample(2, k, self.dtype, name="upscore2")(y)
            y = y + score("score_pool4")(features[s16])
        if self.stride <= 8:
            y = BilinearUpsample(2, k, self.dtype, name="upscore_pool4")(y)
            y = y + score("score_pool3")(features[s8])
        features["fused"] = y
        y = BilinearUpsample(self.stride, k, self.dtype, name="upscore")(y)
        return y[:, :h, :w].astype(jnp.float32), features


def fcn32s(**kwargs) -> FCN:
    """FCN-32s: score_fr upsampled 32x. kwargs: num_classes, backbone='vgg16', backbone_widths,
    batch_norm, fc_width=4096, fc_kernel=7, dropout_rate=0.5, dtype, axis_name."""
    return FCN(stride=32, **kwargs)


def fcn16s(**kwargs) -> FCN:
    """FCN-16s: 2x score_fr + score_pool4, upsampled 16x. kwargs as `fcn32s`."""
    return FCN(stride=16, **kwargs)


def fcn8s(**kwargs) -> FCN:
    """FCN-8s: 2x(2x score_fr + score_pool4) + score_pool3, upsampled 8x. kwargs as `fcn32s`."""
    return FCN(stride=8, **kwargs)
