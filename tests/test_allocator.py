"""jaxvision.allocator: when a command restarts itself under tcmalloc, and that the restart
removes the page faults XLA's per-step temporaries cost under glibc's malloc."""

import os
import subprocess
import sys

import pytest

from jaxvision import allocator

LIB = "libtcmalloc_minimal.so.4"


def test_plan_restarts_only_where_it_should():
    assert allocator.plan({}, "linux", LIB) == ("reexec", LIB)
    assert allocator.plan({"LD_PRELOAD": "libfoo.so"}, "linux", LIB) == (
        "reexec", f"{LIB} libfoo.so")  # the user's preloads are kept, after tcmalloc
    assert allocator.plan({}, "linux", None) == ("missing", None)
    assert allocator.plan({}, "darwin", LIB) == ("keep", None)
    assert allocator.plan({allocator.OPT_OUT: "0"}, "linux", LIB) == ("keep", None)
    assert allocator.plan({allocator.OPT_OUT: "1"}, "linux", LIB) == ("reexec", LIB)
    assert allocator.plan({allocator._MARKER: "1"}, "linux", LIB) == ("keep", None)  # no loop
    for preloaded in ("/usr/lib/libjemalloc.so.2", "libtcmalloc.so.4", "libmimalloc.so"):
        assert allocator.plan({"LD_PRELOAD": preloaded}, "linux", LIB) == ("keep", None)


# A jitted function whose temporaries are ~100 MB: the median of its calls' minor page faults.
# (Under tcmalloc the first calls still fault, while the earlier calls' buffers are in use.)
_PROBE = """
import resource, sys
from jaxvision.allocator import loaded_allocator, reexec_with_tcmalloc
reexec_with_tcmalloc()
import jax, jax.numpy as jnp
x = jnp.ones((16, 112, 112, 32))
f = jax.jit(lambda x: jnp.stack([jnp.sum(x * jnp.roll(x, i, 1), (0, 1, 2)) for i in range(4)]))
f(x).block_until_ready()
faults = []
for _ in range(7):
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
print(loaded_allocator(), sorted(faults)[3])
"""
PAGES_OF_ONE_TEMPORARY = 16 * 112 * 112 * 32 * 4 // 4096  # 6272


def _run_probe(**env_overrides):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", allocator.OPT_OUT, allocator._MARKER)}
    env.update(JAX_PLATFORMS="cpu", **env_overrides)
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                         text=True, timeout=300, check=True)
    name, faults = out.stdout.split()
    return name, int(faults), out.stderr


@pytest.mark.slow
def test_opt_out_keeps_glibc_and_its_page_faults():
    name, faults, stderr = _run_probe(**{allocator.OPT_OUT: "0"})
    assert name == "glibc"
    assert faults > PAGES_OF_ONE_TEMPORARY  # every call faults its temporaries in again
    assert "install tcmalloc" not in stderr


def test_default_restarts_under_tcmalloc_or_says_how_to_get_it():
    name, faults, stderr = _run_probe()
    if allocator.find_tcmalloc() is None:  # then glibc stays, with a hint
        assert name == "glibc"
        assert "apt-get install libtcmalloc-minimal4" in stderr
    else:
        assert name == "tcmalloc"
        assert faults < PAGES_OF_ONE_TEMPORARY // 10
