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
