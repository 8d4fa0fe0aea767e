"""ResNet-18/34/50/101/152 (He et al., 2016), torchvision's v1.5 layout (stride on the 3x3).

Stem: 7x7/2 conv + BN + ReLU, 3x3/2 max pool; four stages of residual blocks (the first block of
stages 2-4 halves the resolution); global average pool; linear classifier. Module names follow
torchvision (`conv1`, `bn1`, `layer{i}_{j}`, `fc`) so `jaxvision.weights.from_torchvision`
imports its weights by name.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.layers import (
    BasicBlock,
    Bottleneck,
    Conv,
    batch_norm,
    check_images,
    conv_init,
    global_avg_pool,
    max_pool,
    torch_padding,
)

# name -> (block, blocks per stage)
CONFIGS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}

STEMS = ("imagenet", "cifar")


class ResNet(nn.Module):
    """`__call__(x [B, H, W, 3], train) -> (logits [B, num_classes] | None, features)`.

    `features` (stage k = last map at stride 2**k):
      stem / stage1: conv1-BN-ReLU   [B, H/2,  W/2,  64]
      stage2: layer1                 [B, H/4,  W/4,  64 * e]     (e = 1 basic, 4 bottleneck)
      stage3: layer2                 [B, H/8,  W/8,  128 * e]
      stage4: layer3                 [B, H/16, W/16, 256 * e]
      stage5: layer4                 [B, H/32, W/32, 512 * e]
      pooled: global average         [B, 512 * e]
    `num_classes=None` drops the classifier (logits None).

    `stem="cifar"` replaces the 7x7/2 conv and max pool by one 3x3/1 conv (He et al. Sec. 4.2,
    for 32x32 inputs): every stage then runs at 4x the resolution (stageK at stride 2**(K-2)).
    """

    head_names = ("fc",)  # class-count-dependent layers (config.init_from keeps fresh ones)

    block: type[nn.Module]
    stage_sizes: tuple[int, ...]
    num_classes: int | None = 1000
    dtype: Any = jnp.float32
    axis_name: str | None = None
    arch: str = "resnet"
    stem: str = "imagenet"

    @nn.compact
    def __call__(self, x, train: bool):
        if self.stem not in STEMS:
            raise ValueError(f"{self.arch} stem: expected one of {STEMS}, got {self.stem!r}")
        imagenet = self.stem == "imagenet"
        check_images(x, self.arch, channels=3, min_size=32 if imagenet else 8)
        x = jnp.asarray(x, self.dtype)
        features = {}
        k, s = (7, 2) if imagenet else (3, 1)
        x = Conv(64, (k, k), strides=(s, s), padding=torch_padding(k), use_bias=False,
                    kernel_init=conv_init, dtype=self.dtype, name="conv1")(x)
        x = batch_norm(train, dtype=self.dtype, axis_name=self.axis_name, name="bn1")(x)
        x = nn.relu(x)
        features["stem"] = features["stage1"] = x
        if imagenet:
            x = max_pool(x, 3, 2, padding=1)
        for i, n_blocks in enumerate(self.stage_sizes):
            for j in range(n_blocks):
                strides = 2 if i > 0 and j == 0 else 1
                x = self.block(64 * 2**i, strides, dtype=self.dtype, axis_name=self.axis_name,
                               name=f"layer{i + 1}_{j}")(x, train)
            features[f"stage{i + 2}"] = x
        x = global_avg_pool(x)
        features["pooled"] = x
        logits = None
        if self.num_classes is not None:
            logits = nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x)
            logits = logits.astype(jnp.float32)
        return logits, features


def _resnet(name: str, **kwargs) -> ResNet:
    block, sizes = CONFIGS[name]
    return ResNet(block=block, stage_sizes=sizes, arch=name, **kwargs)


def resnet18(**kwargs) -> ResNet:
    """ResNet-18 (BasicBlock, [2, 2, 2, 2]). kwargs: num_classes=1000, dtype, axis_name, stem."""
    return _resnet("resnet18", **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34 (BasicBlock, [3, 4, 6, 3]). kwargs: num_classes=1000, dtype, axis_name, stem."""
    return _resnet("resnet34", **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50 (Bottleneck, [3, 4, 6, 3]). kwargs: num_classes=1000, dtype, axis_name, stem."""
    return _resnet("resnet50", **kwargs)


def resnet101(**kwargs) -> ResNet:
    """ResNet-101 (Bottleneck, [3, 4, 23, 3]). kwargs: num_classes=1000, dtype, axis_name, stem."""
    return _resnet("resnet101", **kwargs)


def resnet152(**kwargs) -> ResNet:
    """ResNet-152 (Bottleneck, [3, 8, 36, 3]). kwargs: num_classes=1000, dtype, axis_name, stem."""
    return _resnet("resnet152", **kwargs)
