"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp


def time_call(fn, *args, repeats: int = 5, warmup: int = 1) -> float:
    """Median seconds of `fn(*args)` (results blocked on), after `warmup` calls."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def matmul_peak_flops(n: int = 2048, dtype=jnp.float32) -> float:
    """This machine's measured float32 matmul rate (FLOP/s) for an n x n x n product."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    seconds = time_call(jax.jit(jnp.dot), a, b, repeats=7)
    return 2 * n**3 / seconds


def compiled_flops(jitted, *args) -> float:
    """XLA's FLOP count for one call of a jitted function."""
    analysis = jitted.lower(*args).compile().cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    return float(analysis.get("flops", 0.0))


def unet_training(batch_size: int, *, dtype=jnp.float32, axis_name=None):
    """The model, task, optimiser and a random batch of configs/unet.py (64x64 shapes).

    Returns (model, task, tx, init_fn(rng, batch) -> TrainState, host batch dict).
    """
    import numpy as np

    from configs import unet as unet_config
    from jaxvision.models import get_model
    from jaxvision.tasks import get_task
    from jaxvision.train.optim import build_optimizer
    from jaxvision.train.state import create_train_state

    config = unet_config.get_config()
    size = config.data.image_size
    task = get_task("segmentation", ("circle", "square", "triangle"))
    model = get_model("unet", num_classes=task.num_classes, dtype=dtype, axis_name=axis_name,
                      **config.model_kwargs)
    rng = np.random.default_rng(0)
    batch = {"image": rng.normal(size=(batch_size, size, size, 3)).astype(np.float32),
             "segmentation": rng.integers(0, 4, (batch_size, size, size)).astype(np.int32)}
    tx = build_optimizer(config.optimizer, config.train.steps)

    def init_fn(key, b):
        return create_train_state(task.init(model.clone(axis_name=None), key, b), tx)

    return model, task, tx, init_fn, batch


def define_torchvision_schemas() -> None:
    """torchvision's compiled ops do not load here; defining the two op schemas it registers
    fake implementations for lets `import torchvision` succeed (as tests/conftest.py does)."""
    import torch

    if getattr(define_torchvision_schemas, "lib", None) is not None:
        return
    try:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    except RuntimeError:  # already defined in this process
        return
    define_torchvision_schemas.lib = lib  # keep the Library alive


def torch_conv_bn(cin: int, cout: int, k: int, s: int, groups: int = 1, act: str | None = "ReLU"):
    """torch's Conv2d (no bias, padding (k - 1) // 2) + BatchNorm2d (+ `torch.nn.<act>`)."""
    from torch import nn

    layers = [nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([getattr(nn, act)()] if act else []))
