"""Where EfficientNet-B0's train step loses to torch, unit by unit.

    python benchmarks/efficientnet_layers.py [--reps 3] [--batch 16]

Every distinct unit of torchvision's efficientnet_b0 at 224 px, timed forward + backward
(`benchmarks.unit_timing`): the 3x3/2 stem and 1x1 head (conv + BN + SiLU) and, per MBConv
block, its 1x1 expand (conv + BN + SiLU), kxk depthwise (conv + BN + SiLU, stride 1 or 2),
squeeze-excite and 1x1 project (conv + BN). Classes: stem, head, expand, depthwise, depthwise/2,
se, project. Prints the load average before the run and with every row.
"""

from __future__ import annotations

import collections
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jaxvision  # noqa: E402,F401  (sets the XLA:CPU flags before JAX starts)
from benchmarks.common import torch_conv_bn  # noqa: E402
from benchmarks.unit_timing import Unit, cli  # noqa: E402


def torch_se(c, squeeze):
    import torch
    from torch import nn

    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)

        def forward(self, x):
            s = x.mean((2, 3), keepdim=True)
            return x * torch.sigmoid(self.fc2(nn.functional.silu(self.fc1(s))))

    return SE()


def units(batch: int) -> list[Unit]:
    import flax.linen as nn

    from jaxvision.layers import ConvBN, make_divisible
    from jaxvision.layers.squeeze_excite import SqueezeExcite
    from jaxvision.models.efficientnet import B0_STAGES

    def conv_unit(cls, cin, cout, k, s, hw, groups=1, act=True):
        return (cls, f"{cls} {k}x{k}/{s} {cin}->{cout} at {hw}", (batch, hw, hw, cin),
                lambda: ConvBN(cout, k, s, groups=groups, activation=nn.silu if act else None),
                lambda: torch_conv_bn(cin, cout, k, s, groups, "SiLU" if act else None),
                True)

    found = collections.Counter()
    specs = {}

    def add(spec):
        found[spec[1]] += 1
        specs[spec[1]] = spec

    hw = 224
    add(conv_unit("stem", 3, 32, 3, 2, hw))
    hw //= 2
    for st in B0_STAGES:
        for j in range(st.repeats):
            cin = st.in_channels if j == 0 else st.out_channels
            s = st.strides if j == 0 else 1
            mid = make_divisible(cin * st.expand_ratio, 8)
            if mid != cin:
                add(conv_unit("expand", cin, mid, 1, 1, hw))
            add(conv_unit("depthwise" if s == 1 else "depthwise/2", mid, mid, st.kernel_size, s,
                          hw, groups=mid))
            hw //= s
            sq = max(1, cin // 4)
            add(("se", f"se {mid} ({sq}) at {hw}", (batch, hw, hw, mid),
                 lambda mid=mid, sq=sq: SqueezeExcite(sq), lambda mid=mid, sq=sq: torch_se(mid, sq),
                 False))
            add(conv_unit("project", mid, st.out_channels, 1, 1, hw, act=False))
    add(conv_unit("head", 320, 1280, 1, 1, hw))
    return [Unit(cls, label, found[label], shape, jm, tm, takes_train)
            for label, (cls, label, shape, jm, tm, takes_train) in specs.items()]


if __name__ == "__main__":
    cli(units, "efficientnet_b0, 224 px", __doc__)
