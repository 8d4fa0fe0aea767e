"""Where ResNet-50's train step loses to torch, layer by layer: conv + BatchNorm + ReLU units.

    python benchmarks/resnet50_layers.py [--reps 3] [--batch 16]

Every distinct conv unit of torchvision's resnet50 at 224 px (kernel, stride, channels, map
size; the count says how often the step runs it) is timed forward + backward (input, kernel
and BatchNorm affine gradients, train-mode statistics) as one jitted jaxvision `ConvBN` +
ReLU against torch's channels-last Conv2d + BatchNorm2d + ReLU, timed in the rounds of
`benchmarks.backbones._interleaved` (each timed call after an untimed one of the same
framework). ms x count is summed per class (stem, 1x1, 1x1 strided, 3x3, 3x3 strided) and
set beside the whole step: the classes with
the largest jax - torch difference are what holds the step back. XLA's profiler cannot say it
reliably since jaxlib 0.10: Eigen convolutions run asynchronously and their time lands on the
next thunk. Prints the load average before the run and with every row.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jaxvision  # noqa: E402,F401  (sets the XLA:CPU flags before JAX starts)
from benchmarks.backbones import _interleaved  # noqa: E402

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


def jax_unit(k, s, cin, cout, hw, batch):
    import jax
    import jax.numpy as jnp

    from jaxvision.layers import ConvBN

    unit = ConvBN(cout, k, s)
    x = jax.random.normal(jax.random.key(0), (batch, hw, hw, cin))
    variables = unit.init(jax.random.key(1), x, train=False)
    r = jax.random.normal(jax.random.key(2), unit.apply(variables, x, train=False).shape)

    def loss(params, x):
        y, _ = unit.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                          train=True, mutable=["batch_stats"])
        return jnp.sum(y * r)

    step = jax.jit(jax.grad(loss, argnums=(0, 1)))
    params = variables["params"]
    jax.block_until_ready(step(params, x))
    return lambda: jax.block_until_ready(step(params, x))


def torch_unit(k, s, cin, cout, hw, batch):
    import torch

    unit = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, k, s, k // 2, bias=False),
                               torch.nn.BatchNorm2d(cout), torch.nn.ReLU())
    unit = unit.to(memory_format=torch.channels_last).train()
    x = torch.randn(batch, cin, hw, hw).to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    r = torch.randn_like(unit(x))

    def run():
        unit.zero_grad(set_to_none=True)
        x.grad = None
        (unit(x) * r).sum().backward()

    run()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}; batch {args.batch}, 224 px")
    print("| unit | count | jax ms | torch ms | jax - torch, x count | load |")
    print("| --- | --- | --- | --- | --- | --- |")
    per_class = collections.defaultdict(lambda: [0.0, 0.0])
    for cls, k, s, cin, cout, hw, count in UNITS:
        fns = {"jax": jax_unit(k, s, cin, cout, hw, args.batch),
               "torch": torch_unit(k, s, cin, cout, hw, args.batch)}
        load = os.getloadavg()[0]
        # calls per second of the median timed call (batch 1), in the backbones benchmark's rounds
        med = {n: 1e3 / rate for n, rate in _interleaved(fns, 1, 0, args.reps).items()}
        per_class[cls][0] += med["jax"] * count
        per_class[cls][1] += med["torch"] * count
        print(f"| {cls} {cin}->{cout} at {hw} | {count} | {med['jax']:.1f} | "
              f"{med['torch']:.1f} | {(med['jax'] - med['torch']) * count:+.0f} | {load:.2f} |",
              flush=True)
    print("\n| class | jax ms (x count) | torch ms (x count) | jax - torch |")
    print("| --- | --- | --- | --- |")
    for cls, (j, t) in sorted(per_class.items(), key=lambda kv: kv[1][1] - kv[1][0]):
        print(f"| {cls} | {j:.0f} | {t:.0f} | {j - t:+.0f} |")
    j, t = (sum(v[i] for v in per_class.values()) for i in (0, 1))
    print(f"| all conv units | {j:.0f} | {t:.0f} | {j - t:+.0f} |")


if __name__ == "__main__":
    main()
