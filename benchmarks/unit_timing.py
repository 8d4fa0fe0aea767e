"""Forward + backward of one layer unit, jaxvision against torch, summed per class of unit.

Shared by the per-model breakdowns (`resnet50_layers`, `efficientnet_layers`, `unet_layers`):
each builds a list of `Unit`s (a jax flax module and the torch module doing the same, an input
shape, how often one train step runs it); `report` times every unit in the rounds of
`benchmarks.backbones._interleaved` and prints the per-unit and per-class tables, so the
classes with the largest jax - torch difference are what holds the step back. XLA's profiler
cannot say this reliably since jaxlib 0.10: Eigen convolutions run asynchronously and their
time lands on the next thunk.
"""

from __future__ import annotations

import argparse
import collections
import os
from collections.abc import Callable
from typing import NamedTuple

from benchmarks.backbones import _interleaved


class Unit(NamedTuple):
    cls: str  # the class the unit's time is summed into
    label: str
    count: int  # how often one train step runs it
    shape: tuple[int, ...]  # NHWC input shape, batch included
    jax_module: Callable[[], object]  # -> flax module, called as module(x[, train=True])
    torch_module: Callable[[], object]  # -> torch module on NCHW channels-last input
    takes_train: bool = True  # the flax module's __call__ has a `train` argument


def jax_call(unit: Unit) -> Callable[[], None]:
    """One jitted forward + backward (input and parameter gradients, train-mode BatchNorm
    statistics) of the unit against a fixed random cotangent."""
    import jax
    import jax.numpy as jnp

    module = unit.jax_module()
    kw = {"train": False} if unit.takes_train else {}
    x = jax.random.normal(jax.random.key(0), unit.shape)
    variables = module.init(jax.random.key(1), x, **kw)
    r = jax.random.normal(jax.random.key(2), module.apply(variables, x, **kw).shape)
    stats = variables.get("batch_stats", {})

    def loss(params, x):
        if unit.takes_train:
            y, _ = module.apply({"params": params, "batch_stats": stats}, x, train=True,
                                mutable=["batch_stats"])
        else:
            y = module.apply({"params": params}, x)
        return jnp.sum(y * r)

    step = jax.jit(jax.grad(loss, argnums=(0, 1)))
    params = variables.get("params", {})
    jax.block_until_ready(step(params, x))
    return lambda: jax.block_until_ready(step(params, x))


def torch_call(unit: Unit) -> Callable[[], None]:
    """Forward + backward of the torch module in train mode, channels-last."""
    import torch

    module = unit.torch_module().to(memory_format=torch.channels_last).train()
    b, h, w, c = unit.shape
    x = torch.randn(b, c, h, w).to(memory_format=torch.channels_last).requires_grad_(True)
    r = torch.randn_like(module(x))

    def run():
        module.zero_grad(set_to_none=True)
        x.grad = None
        (module(x) * r).sum().backward()

    run()
    return run


def _repeated(fn: Callable[[], None], calls: int) -> Callable[[], None]:
    def run():
        for _ in range(calls):
            fn()
    return run


def report(units: list[Unit], reps: int, calls: int = 1) -> dict[str, tuple[float, float]]:
    """Times each unit (median of `reps` interleaved rounds of `calls` calls back to back, so
    that small units are timed with their threads awake, as inside a step), prints the tables;
    returns {class: (jax ms x count, torch ms x count)}."""
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| unit | count | jax ms | torch ms | jax - torch, x count | load |")
    print("| --- | --- | --- | --- | --- | --- |")
    per_class = collections.defaultdict(lambda: [0.0, 0.0])
    for unit in units:
        fns = {"jax": _repeated(jax_call(unit), calls),
               "torch": _repeated(torch_call(unit), calls)}
        load = os.getloadavg()[0]
        med = {n: 1e3 / rate for n, rate in _interleaved(fns, calls, 0, reps).items()}
        per_class[unit.cls][0] += med["jax"] * unit.count
        per_class[unit.cls][1] += med["torch"] * unit.count
        print(f"| {unit.label} | {unit.count} | {med['jax']:.1f} | {med['torch']:.1f} | "
              f"{(med['jax'] - med['torch']) * unit.count:+.0f} | {load:.2f} |", flush=True)
    print("\n| class | jax ms (x count) | torch ms (x count) | jax - torch |")
    print("| --- | --- | --- | --- |")
    for cls, (j, t) in sorted(per_class.items(), key=lambda kv: kv[1][1] - kv[1][0]):
        print(f"| {cls} | {j:.0f} | {t:.0f} | {j - t:+.0f} |")
    j, t = (sum(v[i] for v in per_class.values()) for i in (0, 1))
    print(f"| all units | {j:.0f} | {t:.0f} | {j - t:+.0f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return {k: tuple(v) for k, v in per_class.items()}


def cli(units: Callable[[int], list[Unit]], title: str, doc: str, calls: int = 1) -> None:
    """The command line of a breakdown script: restarts under tcmalloc (as
    benchmarks/backbones.py), parses `--reps`, `--batch`, `--calls`, prints `report`."""
    from jaxvision.allocator import reexec_with_tcmalloc

    reexec_with_tcmalloc()
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--calls", type=int, default=calls, help="calls per timing, back to back")
    args = parser.parse_args()
    print(f"{title}, batch {args.batch}, {args.calls} call(s) per timing")
    report(units(args.batch), args.reps, args.calls)
