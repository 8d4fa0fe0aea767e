"""Data-parallel overhead: U-Net train-step time on 1, 2 and 4 virtual CPU devices with the
jit-mesh and pmap wrappers, and bfloat16 against float32 compute.

    python -m benchmarks.scaling [--batch 16] [--steps 10]

The virtual devices share this machine's cores, so the table shows the cost of partitioning and
collectives, not a speed-up.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=4").strip()

import argparse  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.common import time_call, unet_training  # noqa: E402
from jaxvision.train.parallel import JitMesh, Pmap  # noqa: E402
from jaxvision.train.step import make_train_step  # noqa: E402


def step_seconds(parallel, batch_size: int, steps: int, dtype=jnp.float32) -> float:
    model, task, tx, init_fn, batch = unet_training(batch_size, dtype=dtype,
                                                    axis_name=parallel.axis_name)
    state = parallel.jit_init(init_fn)(jax.random.key(0), batch)
    step = parallel.jit_step(make_train_step(model, task, tx, axis_name=parallel.axis_name))
    placed = parallel.put_batch(batch)
    key = jax.random.key(1)

    def run(s):
        for _ in range(steps):
            s, metrics = step(s, placed, key)
        return s, metrics["loss"]

    state, _ = run(state)  # compile; donation consumes `state`, so keep the returned one
    holder = {"state": state}

    def timed():
        holder["state"], loss = run(holder["state"])
        return loss

    return time_call(timed, repeats=3, warmup=0) / steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    devices = jax.devices()
    print(f"{'wrapper':<8}{'devices':>8}{'dtype':>10}{'step ms':>10}{'images/s':>10}")
    for name, wrapper in (("jit", JitMesh), ("pmap", Pmap)):
        for n in (1, 2, 4):
            seconds = step_seconds(wrapper(devices[:n]), args.batch, args.steps)
            print(f"{name:<8}{n:>8}{'float32':>10}{seconds * 1e3:>10.1f}"
                  f"{args.batch / seconds:>10.1f}")
    for dtype in (jnp.float32, jnp.bfloat16):
        seconds = step_seconds(JitMesh(devices[:1]), args.batch, args.steps, dtype)
        print(f"{'jit':<8}{1:>8}{jnp.dtype(dtype).name:>10}{seconds * 1e3:>10.1f}"
              f"{args.batch / seconds:>10.1f}")


if __name__ == "__main__":
    main()
