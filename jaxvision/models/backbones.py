"""Shared backbone factory: the classification networks as feature extractors for the dense
and detection heads (FCN, DeconvNet, and the detectors), named 'backbone' in the variables.

Detection backbones (`build_backbone`) are `__call__(images [B, H, W, 3], train) -> (None,
features)` with `features` a dict of NHWC maps, plus a `BackboneSpec` saying which maps feed
the RPN and the RoI heads:

- `vgg16`: `conv5` = VGG-16's conv5_3 + ReLU (before pool5), [B, H/16, W/16, 512] (Ren et al.;
  `trainable_layers=3` freezes conv1 and conv2, the papers' "fine-tune conv3_1 and up").
- `resnet{18,34,50,101,152}_fpn`: ResNet body (torchvision's detection backbone: BatchNorm
  frozen to its running statistics, and conv1 + layer1 frozen with the default
  `trainable_layers=3`), then an FPN (Lin et al.) with LastLevelMaxPool: `p2`..`p5` at strides
  4..32 and `pool` (p5 subsampled by 2), all with `out_channels` (torchvision's keys '0', '1',
  '2', '3', 'pool').
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxvision.models import resnet as resnet_lib
from jaxvision.models import vgg as vgg_lib
from jaxvision.models.resnet import CONFIGS as RESNET_CONFIGS
from jaxvision.models.resnet import ResNet
from jaxvision.models.vgg import WIDTHS


def make_backbone(name: str, widths, batch_norm: bool, dtype, axis_name) -> nn.Module:
    """The backbone module `name` ('vgg11'..'vgg19' or 'resnet18'..'resnet152'), named
    'backbone', without classifier. `widths` (VGG only): 5 block widths, None for VGG's own."""
    if name.startswith("vgg") and name[3:] in {str(d) for d in vgg_lib.CONFIGS}:
        depth = int(name[3:])
        widths = vgg_lib.WIDTHS if widths is None else tuple(widths)
        if len(widths) != 5 or min(widths) < 1:
            raise ValueError(f"backbone_widths: expected 5 positive block widths, got {widths}")
        return vgg_lib.VGG(depth=depth, widths=widths, batch_norm=batch_norm, num_classes=None,
                           dtype=dtype, axis_name=axis_name, name="backbone")
    if name in resnet_lib.CONFIGS:
        if widths is not None:
            raise ValueError(f"backbone_widths: expected None for {name!r}, got {widths}")
        block, sizes = resnet_lib.CONFIGS[name]
        return resnet_lib.ResNet(block=block, stage_sizes=sizes, arch=name, num_classes=None,
                                 dtype=dtype, axis_name=axis_name, name="backbone")
    raise ValueError(f"backbone: expected 'vgg11'..'vgg19' or 'resnet18'..'resnet152', "
                     f"got {name!r}")

FPN_LEVELS = ("p2", "p3", "p4", "p5", "pool")

# torch's kaiming_uniform_(a=1) (FPN convs): gain^2 = 2 / (1 + a^2) = 1
_fpn_init = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")
# torchvision's ResNet children, from the output back: trainable_layers=k unfreezes the first k
_RESNET_LAYERS = ("layer4", "layer3", "layer2", "layer1", "conv1")


@dataclass(frozen=True)
class BackboneSpec:
    """Which backbone maps the detector uses: `rpn_levels` (anchors, RPN head) and `roi_levels`
    (RoI pooling, finest first, consecutive powers of 2 apart), their channel count, and the
    RPN maps' strides (None: torchvision's integer division of image by map size)."""

    rpn_levels: tuple[str, ...]
    roi_levels: tuple[str, ...]
    out_channels: int
    strides: tuple | None = None


def _frozen(path: tuple[str, ...], trainable_layers: int, frozen_bn: bool) -> bool:
    top = path[0]
    if frozen_bn and "bn" in path[-2]:
        return True
    trainable = set(_RESNET_LAYERS[:trainable_layers])
    if trainable_layers == 5:
        trainable.add("bn1")
    stage = top.split("_")[0]
    return stage not in trainable


def vgg_frozen(layer: str, trainable_layers: int) -> bool:
    """Whether VGG layer `layer` (conv{b}_{i}) is frozen when only the last `trainable_layers`
    of its 5 conv blocks train (torchvision's SSD `_vgg_extractor` rule); other layers train."""
    if not 0 <= trainable_layers <= 5:
        raise ValueError(f"trainable_layers: expected 0..5, got {trainable_layers}")
    block = re.fullmatch(r"conv(\d)_\d", layer)
    return block is not None and int(block.group(1)) <= 5 - trainable_layers


def trainable_mask(params, trainable_layers: int = 3, frozen_bn: bool = True):
    """Which leaves of a detector's `params` train (True) under a `ResNetFPN` backbone's
    freezing rule, as torchvision's requires_grad: for `optax.masked` / weight decay, since
    `stop_gradient` alone leaves frozen weights to the optimiser's decay. Leaves outside
    params['backbone']['body'] are trainable."""
    flat = traverse_util.flatten_dict(params)
    out = {p: not (p[:2] == ("backbone", "body") and _frozen(p[2:], trainable_layers, frozen_bn))
           for p in flat}
    return traverse_util.unflatten_dict(out)


def nearest_resize(x, size):
    """torch's F.interpolate(mode='nearest') to `size` (h, w): source index floor(i * in / out).

    x: [B, h, w, C] -> [B, size[0], size[1], C] (static sizes).
    """
    def index(n_in, n_out):
        scale = np.float32(n_in) / np.float32(n_out)
        return np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * scale), n_in - 1)

    iy = index(x.shape[1], size[0]).astype(np.int32)
    ix = index(x.shape[2], size[1]).astype(np.int32)
    return x[:, iy][:, :, ix]


class FPN(nn.Module):
    """Feature Pyramid Network (torchvision's FeaturePyramidNetwork + LastLevelMaxPool).

    `__call__(maps)`: maps finest first ([B, H_i, W_i, C_i]); returns the list of outputs
    ([B, H_i, W_i, out_channels], finest first) plus the max-pooled (1x1, stride 2) coarsest.
    Children `inner_{i}` (1x1 lateral) and `layer_{i}` (3x3 output) are torchvision's
    `inner_blocks.{i}` and `layer_blocks.{i}`.
    """

    out_channels: int = 256
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, maps):
        n = len(maps)

        def conv(k, name):
            return nn.Conv(self.out_channels, (k, k), padding=((k // 2, k // 2),) * 2,
                           kernel_init=_fpn_init, dtype=self.dtype, name=name)

        last = conv(1, f"inner_{n - 1}")(maps[-1])
        outs = [conv(3, f"layer_{n - 1}")(last)]
        for i in range(n - 2, -1, -1):
            lateral = conv(1, f"inner_{i}")(maps[i])
            last = lateral + nearest_resize(last, lateral.shape[1:3])
            outs.insert(0, conv(3, f"layer_{i}")(last))
        outs.append(outs[-1][:, ::2, ::2])  # max_pool2d(kernel 1, stride 2)
        return outs


class ResNetFPN(nn.Module):
    """ResNet body + FPN: `(images [B, H, W, 3], train) -> (None, {p2, p3, p4, p5, pool})`.

    `frozen_bn`: BatchNorm always uses its running statistics and its scale/bias get no gradient
    (torchvision's FrozenBatchNorm2d); `trainable_layers` (0..5, torchvision's
    trainable_backbone_layers) of layer4, layer3, layer2, layer1, conv1 get gradients, the rest
    are frozen by `stop_gradient`, and the trainer leaves them out of the update (weight decay
    included) through the detector's `trainable_mask`.
    With `frozen_bn=False` BatchNorm trains (pass mutable=['batch_stats']). The body's
    `map_variables` initialises only while the model initialises: with `init=True`, an apply
    with `batch_stats` mutable (the trainer's) finds no params in the mapped scope (flax 0.12).
    """

    depth: int = 50
    out_channels: int = 256
    trainable_layers: int = 3
    frozen_bn: bool = True
    dtype: Any = jnp.float32

    def frozen(self, path: tuple[str, ...]) -> bool:
        """Whether the parameter at `path` (inside this backbone's params) gets no update."""
        return path[0] == "body" and _frozen(path[1:], self.trainable_layers, self.frozen_bn)

    @nn.compact
    def __call__(self, x, train: bool):
        if not 0 <= self.trainable_layers <= 5:
            raise ValueError(f"trainable_layers: expected 0..5, got {self.trainable_layers}")
        name = f"resnet{self.depth}"
        if name not in RESNET_CONFIGS:
            raise ValueError(f"ResNetFPN depth: expected one of (18, 34, 50, 101, 152), got "
                             f"{self.depth}")
        block, sizes = RESNET_CONFIGS[name]
        k, frozen_bn = self.trainable_layers, self.frozen_bn

        def stop(params):
            flat = traverse_util.flatten_dict(params)
            # keys are (collection, module, ..., leaf)
            flat = {p: jax.lax.stop_gradient(v) if _frozen(p[1:], k, frozen_bn) else v
                    for p, v in flat.items()}
            return traverse_util.unflatten_dict(flat)

        body = nn.map_variables(ResNet, "params", trans_in_fn=stop,
                                init=self.is_initializing(), mutable=True)(
            block=block, stage_sizes=sizes, num_classes=None, dtype=self.dtype, arch=name,
            name="body")
        _, f = body(x, train=train and not self.frozen_bn)
        outs = FPN(self.out_channels, dtype=self.dtype, name="fpn")(
            [f[f"stage{i}"] for i in range(2, 6)])
        return None, dict(zip(FPN_LEVELS, outs, strict=True))


def max_pool_ceil(x):
    """2x2 stride-2 max pool in ceil mode (Caffe's, as the Faster R-CNN VGG-16 model): an odd
    side keeps its last row/column, [B, H, W, C] -> [B, ceil(H/2), ceil(W/2), C]."""
    ph, pw = x.shape[1] % 2, x.shape[2] % 2
    return nn.max_pool(x, (2, 2), strides=(2, 2), padding=((0, ph), (0, pw)))


class VGGConv5(nn.Module):
    """VGG-16 up to conv5_3 + ReLU: `(images, train) -> (None, {'conv5': [B, h, w, C]})`.

    The four pools before conv5 are in ceil mode (`ceil_mode`, as Caffe's VGG-16 in Ren et al.):
    a 600x800 image gives a 38x50 map (floor mode: 37x50). `widths` narrows the five blocks
    (512 channels at conv5 by default). Conv names are VGG's (`conv{b}_{i}`), so ImageNet
    VGG-16 weights import by name (`from_torchvision('vgg16', ...)['params']` without fc).
    `trainable_layers` (0..5): only the last k conv blocks get gradients (`vgg_frozen`).
    """

    widths: tuple[int, ...] = WIDTHS
    ceil_mode: bool = True
    trainable_layers: int = 5
    dtype: Any = jnp.float32

    def frozen(self, path: tuple[str, ...]) -> bool:
        """Whether the parameter at `path` (inside this backbone's params) gets no update."""
        return vgg_frozen(path[0], self.trainable_layers)

    @nn.compact
    def __call__(self, x, train: bool):
        if len(self.widths) != 5 or min(self.widths) < 1:
            raise ValueError(f"widths: expected 5 positive block widths, got {self.widths}")
        frozen_blocks = 5 - self.trainable_layers
        if not 0 <= frozen_blocks <= 5:
            raise ValueError(f"trainable_layers: expected 0..5, got {self.trainable_layers}")
        x = jnp.asarray(x, self.dtype)
        convs = vgg_lib.CONFIGS[16]
        for b in range(5):
            if b:
                x = (max_pool_ceil(x) if self.ceil_mode
                     else nn.max_pool(x, (2, 2), strides=(2, 2)))
            for i in range(convs[b]):
                x = nn.Conv(self.widths[b], (3, 3), padding=((1, 1), (1, 1)),
                            kernel_init=vgg_lib._conv_init, dtype=self.dtype,
                            name=f"conv{b + 1}_{i + 1}")(x)
                x = nn.relu(x)
            if b + 1 == frozen_blocks:  # no gradient reaches the frozen blocks
                x = jax.lax.stop_gradient(x)
        return None, {"conv5": x}


def build_backbone(name: str, **kwargs) -> tuple[nn.Module, BackboneSpec]:
    """The backbone module and its `BackboneSpec` for `name`.

    name: 'vgg16' (kwargs: widths, trainable_layers=5) or 'resnet{18,34,50,101,152}_fpn' (kwargs:
    out_channels=256, trainable_layers=3, frozen_bn=True); dtype for both. Each module's
    `frozen(path)` says which of its parameters the optimiser must leave unchanged.
    """
    if name == "vgg16":
        module = VGGConv5(**kwargs)
        return module, BackboneSpec(("conv5",), ("conv5",), module.widths[-1], ((16, 16),))
    if name.startswith("resnet") and name.endswith("_fpn"):
        depth = name[len("resnet"):-len("_fpn")]
        if depth.isdigit() and f"resnet{depth}" in RESNET_CONFIGS:
            module = ResNetFPN(depth=int(depth), **kwargs)
            return module, BackboneSpec(FPN_LEVELS, FPN_LEVELS[:4], module.out_channels)
    raise ValueError(f"backbone: expected 'vgg16' or 'resnet{{18,34,50,101,152}}_fpn', got "
                     f"{name!r}")
