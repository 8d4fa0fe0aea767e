"""U-Net train-step throughput (images/s) and its share of this machine's matmul peak.

    python -m benchmarks.unet_step [--batch 16] [--steps 20]

Uses the model and optimiser of configs/unet.py on shapes-sized inputs (64x64x3). Prints the
load average with the figures (the dev machine is shared; a peak measured under load is low).
"""

from __future__ import annotations

import argparse
import os

import jax

from benchmarks.common import compiled_flops, matmul_peak_flops, time_call, unet_training
from jaxvision.train.step import make_train_step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    load = os.getloadavg()
    model, task, tx, init_fn, batch = unet_training(args.batch)
    state = jax.jit(init_fn)(jax.random.key(0), batch)
    step = jax.jit(make_train_step(model, task, tx))
    key = jax.random.key(1)
    flops = compiled_flops(step, state, batch, key)

    def run(s):
        for _ in range(args.steps):
            s, metrics = step(s, batch, key)
        return metrics["loss"]

    seconds = time_call(run, state, repeats=3) / args.steps
    peak = matmul_peak_flops()
    rate = flops / seconds
    print(f"{'model':<28}{'batch':>6}{'step ms':>10}{'images/s':>10}{'GFLOP/step':>12}"
          f"{'GFLOP/s':>9}{'peak GFLOP/s':>14}{'share':>7}")
    print(f"{'unet (configs/unet.py)':<28}{args.batch:>6}{seconds * 1e3:>10.1f}"
          f"{args.batch / seconds:>10.1f}{flops / 1e9:>12.2f}{rate / 1e9:>9.1f}"
          f"{peak / 1e9:>14.1f}{rate / peak:>7.1%}")
    print(f"load average before: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min), "
          f"after: {os.getloadavg()[0]:.2f}; under load the figures are provisional")


if __name__ == "__main__":
    from jaxvision.allocator import reexec_with_tcmalloc

    reexec_with_tcmalloc()  # as benchmarks/backbones.py
    main()
