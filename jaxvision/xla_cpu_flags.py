"""XLA:CPU compiler settings that jaxvision turns on before the backend starts.

jaxlib 0.10 sends every convolution on the CPU to YNNPACK by default. For training that is the
slow choice: on the 2-core dev CPU (batch 16, NHWC, float32) a 3x3 conv at 56x56x64 takes
166 ms forward+backward through YNNPACK and 62 ms through XLA's Eigen kernels (weight gradient
105 -> 30 ms), a 1x1 conv at 56x56x256 -> 64 239 -> 54 ms; VGG16 trains 2.2x faster
(benchmarks/README.md). Matmuls stay on YNNPACK, which is faster there. The setting only
concerns the CPU compiler, so GPU and TPU runs are unaffected.

XLA reads `XLA_FLAGS` once, when the first backend starts, so `import jaxvision` appends the
flags below to it, unless the user's `XLA_FLAGS` already sets them, `JAXVISION_XLA_CPU_FLAGS=0`
opts out, or the installed jaxlib is not one these flags were checked on (an unknown XLA flag
aborts the process). If a backend already started, the flags cannot take effect and a warning
says so.
"""

from __future__ import annotations

import logging
import os

CPU_FLAGS = {"xla_cpu_experimental_ynn_fusion_type": "-individual_convolution"}
CHECKED_JAXLIB = ("0.10.",)  # jaxlib release lines known to accept CPU_FLAGS
OPT_OUT = "JAXVISION_XLA_CPU_FLAGS"


def flags_to_add(xla_flags: str, jaxlib_version: str, opt_out: str | None) -> list[str]:
    """The `--name=value` flags of CPU_FLAGS to append to `xla_flags` (possibly none)."""
    if opt_out == "0" or not jaxlib_version.startswith(CHECKED_JAXLIB):
        return []
    return [f"--{name}={value}" for name, value in CPU_FLAGS.items()
            if f"--{name}=" not in xla_flags]


def apply(environ=os.environ) -> list[str]:
    """Appends CPU_FLAGS to `environ['XLA_FLAGS']` where `flags_to_add` says so; returns the
    flags added. Warns (and adds nothing) when a JAX backend is already running."""
    import jaxlib.version

    new = flags_to_add(environ.get("XLA_FLAGS", ""), jaxlib.version.__version__,
                       environ.get(OPT_OUT))
    if not new:
        return []
    try:
        from jax._src import xla_bridge

        started = xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError):
        started = False
    if started:
        logging.getLogger(__name__).warning(
            "jaxvision: a JAX backend started before `import jaxvision`, so the XLA:CPU flags "
            "%s are not in effect (CPU training is slower); import jaxvision first or put them "
            "in XLA_FLAGS", " ".join(new))
        return []
    environ["XLA_FLAGS"] = " ".join([environ.get("XLA_FLAGS", ""), *new]).strip()
    return new
