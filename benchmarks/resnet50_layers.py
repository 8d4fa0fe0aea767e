"""Where ResNet-50's train step loses to torch, layer by layer: conv + BatchNorm + ReLU units.

    python benchmarks/resnet50_layers.py [--reps 3] [--batch 16]

Every distinct conv unit of torchvision's resnet50 at 224 px (kernel, stride, channels, map
size; the count says how often the step runs it), a jaxvision `ConvBN` + ReLU against torch's
channels-last Conv2d + BatchNorm2d + ReLU, timed forward + backward by
`benchmarks.unit_timing` and summed per class (stem, 1x1, 1x1 strided, 3x3, 3x3 strided).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jaxvision  # noqa: E402,F401  (sets the XLA:CPU flags before JAX starts)
from benchmarks.common import torch_conv_bn  # noqa: E402
from benchmarks.unit_timing import Unit, cli  # noqa: E402

# (class, kernel, stride, cin, cout, input map size, count in one resnet50 forward)
UNITS = [
    ("stem 7x7/2", 7, 2, 3, 64, 224, 1),
    ("1x1", 1, 1, 64, 64, 56, 1), ("1x1", 1, 1, 256, 64, 56, 2),
    ("3x3", 3, 1, 64, 64, 56, 3), ("1x1", 1, 1, 64, 256, 56, 4),
    ("1x1", 1, 1, 256, 128, 56, 1), ("3x3/2", 3, 2, 128, 128, 56, 1),
    ("1x1/2", 1, 2, 256, 512, 56, 1), ("1x1", 1, 1, 128, 512, 28, 4),
    ("1x1", 1, 1, 512, 128, 28, 3), ("3x3", 3, 1, 128, 128, 28, 3),
    ("1x1", 1, 1, 512, 256, 28, 1), ("3x3/2", 3, 2, 256, 256, 28, 1),
    ("1x1/2", 1, 2, 512, 1024, 28, 1), ("1x1", 1, 1, 256, 1024, 14, 6),
    ("1x1", 1, 1, 1024, 256, 14, 5), ("3x3", 3, 1, 256, 256, 14, 5),
    ("1x1", 1, 1, 1024, 512, 14, 1), ("3x3/2", 3, 2, 512, 512, 14, 1),
    ("1x1/2", 1, 2, 1024, 2048, 14, 1), ("1x1", 1, 1, 512, 2048, 7, 3),
    ("1x1", 1, 1, 2048, 512, 7, 2), ("3x3", 3, 1, 512, 512, 7, 2),
]


def units(batch: int) -> list[Unit]:
    from jaxvision.layers import ConvBN

    return [Unit(cls, f"{cls} {cin}->{cout} at {hw}", count, (batch, hw, hw, cin),
                 lambda k=k, s=s, cout=cout: ConvBN(cout, k, s),
                 lambda k=k, s=s, cin=cin, cout=cout: torch_conv_bn(cin, cout, k, s))
            for cls, k, s, cin, cout, hw, count in UNITS]


if __name__ == "__main__":
    cli(units, "resnet50, 224 px", __doc__)
