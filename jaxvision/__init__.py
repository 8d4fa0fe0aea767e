"""jaxvision: classic CNN vision systems in JAX/Flax."""

from jaxvision import xla_cpu_flags

xla_cpu_flags.apply()

__version__ = "0.1.0"
