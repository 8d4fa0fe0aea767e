"""Where the U-Net train step (configs/unet.py) loses to torch, unit by unit.

    python benchmarks/unet_layers.py [--reps 3] [--batch 16] [--calls 10]

The units of configs/unet.py's U-Net (depth 3, width 16, SAME, BatchNorm, 64x64 inputs) and
of `benchmarks.backbones.torch_unet`, timed forward + backward by `benchmarks.unit_timing`:
3x3 conv + BN + ReLU per level, 2x2 max pools, 2x2/2 transposed convs (up) and the 1x1 head.
The units take milliseconds, so each timing is `--calls` calls back to back: after the pause
of the timing rounds a single torch call took 8-12 ms even for a 1x1 conv to 4 channels.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jaxvision  # noqa: E402,F401  (sets the XLA:CPU flags before JAX starts)
from benchmarks.common import torch_conv_bn  # noqa: E402
from benchmarks.unit_timing import Unit, cli  # noqa: E402


def units(batch: int, size: int = 64, depth: int = 3, width: int = 16, classes: int = 4):
    import flax.linen as nn
    import torch

    from jaxvision.layers import Conv, ConvBN, ConvTranspose, max_pool

    class MaxPool(nn.Module):
        def __call__(self, x):
            return max_pool(x, 2, 2)

    class TorchMaxPool(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.max_pool2d(x, 2)

    out = []

    def conv(cin, cout, hw, count):
        out.append(Unit(f"3x3 at {hw}", f"3x3 {cin}->{cout} at {hw}", count, (batch, hw, hw, cin),
                        lambda: ConvBN(cout, 3), lambda: torch_conv_bn(cin, cout, 3, 1)))

    widths = [width * 2**i for i in range(depth + 1)]
    for level in range(depth + 1):  # encoder levels, then the bottleneck
        hw, cin = size // 2**level, 3 if level == 0 else widths[level - 1]
        conv(cin, widths[level], hw, 1)
        conv(widths[level], widths[level], hw, 1 if level == depth else 2)  # + decoder's second
        if level < depth:
            c = widths[level]
            out.append(Unit("max pool", f"max pool 2x2 {c} at {hw}", 1, (batch, hw, hw, c),
                            MaxPool, TorchMaxPool, takes_train=False))
            conv(2 * c, c, hw, 1)  # the decoder's first conv, on [skip, up]
            out.append(Unit("up 2x2/2", f"up {widths[level + 1]}->{c} at {hw // 2}", 1,
                            (batch, hw // 2, hw // 2, widths[level + 1]),
                            lambda c=c: ConvTranspose(c, (2, 2), strides=(2, 2)),
                            lambda c=c, cin=widths[level + 1]: torch.nn.ConvTranspose2d(
                                cin, c, 2, 2), takes_train=False))
    out.append(Unit("head", f"head 1x1 {width}->{classes} at {size}", 1,
                    (batch, size, size, width), lambda: Conv(classes, (1, 1)),
                    lambda: torch.nn.Conv2d(width, classes, 1), takes_train=False))
    return out


if __name__ == "__main__":
    cli(units, "configs/unet.py U-Net, 64 px", __doc__, calls=10)
