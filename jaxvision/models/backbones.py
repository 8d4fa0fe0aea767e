"""Shared backbone factory: the classification networks as feature extractors for the dense
and detection heads (FCN, DeconvNet, and the detectors), named 'backbone' in the variables."""

from __future__ import annotations

import flax.linen as nn

from jaxvision.models import resnet as resnet_lib
from jaxvision.models import vgg as vgg_lib


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
