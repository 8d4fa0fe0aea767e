"""Forward+backward ms of single layers: jaxvision's CPU forms against the plain ones.

    python benchmarks/layer_ops.py [--reps 5]

Each op is timed at batch 16 (NHWC, float32) as `jax.grad` of sum(f(x, w) * r) with respect to
the input and the kernel, jitted; the plain form (`cpu_conv.IMPL = 'plain'`: library
convolution, XLA's select-and-scatter max pool backward) and the CPU form are timed in
alternation. Prints the load average with every row (shared machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxvision.layers import cpu_conv, max_pool  # noqa: E402

B = 16
# name: (x shape, kernel (k, cin, cout) or None for a pool, stride, padding, pool window)
OPS = {
    "max pool 3x3/2 on 112x112x64 (ResNet stem)": ((B, 112, 112, 64), None, 2, 1, 3),
    "max pool 2x2/2 on 112x112x128 (VGG16 pool2)": ((B, 112, 112, 128), None, 2, 0, 2),
    "1x1 conv 56x56x256 -> 64 (bottleneck reduce)": ((B, 56, 56, 256), (1, 256, 64), 1, 0, 0),
    "1x1 conv 56x56x64 -> 256 (bottleneck expand)": ((B, 56, 56, 64), (1, 64, 256), 1, 0, 0),
    "1x1 conv /2 56x56x256 -> 512 (downsample)": ((B, 56, 56, 256), (1, 256, 512), 2, 0, 0),
    "3x3 conv /2 56x56x128 -> 128 (layer2 conv2)": ((B, 56, 56, 128), (3, 128, 128), 2, 1, 0),
}


def _fn(kernel, s, p, window):
    if kernel is None:
        return lambda x, w: max_pool(x, window, s, p)
    return lambda x, w: cpu_conv.conv_general_dilated(
        x, w, (s, s), ((p, p), (p, p)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print("| op | plain ms | CPU form ms | speed-up | load average |")
    print("| --- | --- | --- | --- | --- |")
    for name, (shape, kernel, s, p, window) in OPS.items():
        x = jax.random.normal(jax.random.key(0), shape)
        k = kernel or (1, 1, 1)
        w = jax.random.normal(jax.random.key(1), (k[0], k[0], k[1], k[2])) * 0.05
        f = _fn(kernel, s, p, window)
        r = jax.random.normal(jax.random.key(2), jax.eval_shape(f, x, w).shape)
        argnums = 0 if kernel is None else (0, 1)
        fns = {}
        for impl in ("plain", "auto"):
            cpu_conv.IMPL = impl
            fns[impl] = jax.jit(jax.grad(lambda x, w, r, f=f: jnp.sum(f(x, w) * r), argnums))
            jax.block_until_ready(fns[impl](x, w, r))  # compile under this IMPL
        cpu_conv.IMPL = "auto"
        load = os.getloadavg()
        times = {impl: [] for impl in fns}
        for _ in range(args.reps):
            for impl, fn in fns.items():
                time.sleep(0.3)
                t0 = time.perf_counter()
                jax.block_until_ready(fn(x, w, r))
                times[impl].append((time.perf_counter() - t0) * 1e3)
        med = {impl: sorted(t)[len(t) // 2] for impl, t in times.items()}
        print(f"| {name} | {med['plain']:.0f} | {med['auto']:.0f} | "
              f"{med['plain'] / med['auto']:.1f}x | {load[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
