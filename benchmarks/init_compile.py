"""Compile time of a model's `init` on XLA:CPU: XLA's default (LLVM -O2) against the trainer's
`jaxvision.train.parallel.CPU_INIT_COMPILER_OPTIONS` (-O1), with a check that both programs
give the same bits. The init program runs once per run, so its compile time is all it costs.

    python -m benchmarks.init_compile                      # the models below
    python -m benchmarks.init_compile --models unet yolov3
    python -m benchmarks.init_compile --quick              # one tiny U-Net (the test's)

One lowering per model, compiled once with each option set (the persistent compilation cache
off); the 1-minute load average is read before each model: only a ratio measured at a load below
0.5 is a result.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

# name -> (get_model kwargs, input size): each system's shapes config model at its input size
MODELS = {
    "unet": (dict(num_classes=4, depth=3, base_width=16, padding="SAME", batch_norm=True), 64),
    "resnet18": (dict(num_classes=3), 32),
    "efficientnet_b0": (dict(num_classes=3), 32),
    "resnet50": (dict(num_classes=1000), 224),
    "yolov3": (dict(num_classes=81), 416),
}
QUICK = {"unet": (dict(num_classes=4, depth=1, base_width=2, padding="SAME"), 16)}


def measure(name: str, kwargs: dict, size: int) -> dict:
    """{'name', 'size', 'default_s', 'o1_s', 'same_bits', 'load'} of `get_model(name)`'s init."""
    from jaxvision.models import get_model
    from jaxvision.train.parallel import CPU_INIT_COMPILER_OPTIONS

    model = get_model(name, **kwargs)
    x = jnp.zeros((1, size, size, 3), jnp.float32)
    lowered = jax.jit(lambda r, x: model.init(r, x, train=False)).lower(jax.random.key(0), x)
    row = {"name": name, "size": size, "load": os.getloadavg()[0]}
    outputs = []
    for key, options in (("default_s", None), ("o1_s", CPU_INIT_COMPILER_OPTIONS)):
        start = time.perf_counter()
        compiled = lowered.compile(compiler_options=options)
        row[key] = time.perf_counter() - start
        outputs.append(jax.tree.leaves(jax.device_get(compiled(jax.random.key(0), x))))
    row["same_bits"] = all(np.array_equal(a, b) for a, b in zip(*outputs, strict=True))
    return row


def table(rows: list[dict]) -> str:
    """Markdown: compile seconds at each option set, their ratio, same bits, load before."""
    lines = ["| model | input | default (-O2) s | -O1 s | default / -O1 | same bits | load |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['size']}x{r['size']} | {r['default_s']:.2f} | "
                     f"{r['o1_s']:.2f} | {r['default_s'] / r['o1_s']:.2f} | "
                     f"{'yes' if r['same_bits'] else 'no'} | {r['load']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--quick", action="store_true", help="one tiny U-Net (for the test)")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_compilation_cache", False)
    models = QUICK if args.quick else {m: MODELS[m] for m in args.models}
    text = table([measure(name, *spec) for name, spec in models.items()])
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs\n\n{text}", flush=True)
    return text


if __name__ == "__main__":
    main()
