"""Run CPU training under tcmalloc instead of glibc's malloc (Linux).

XLA:CPU allocates each step's temporaries (hundreds of MB) when the step starts and frees them
when it ends. glibc serves such blocks with a fresh `mmap` every time, from the worker threads'
arenas, so every page of them is faulted in and zeroed again on every step: on the 2-core dev
CPU an EfficientNet-B0 train step (batch 16, 224 px) took 937k page faults (3.7 GB) and
1604 ms, and 8 faults and 1040 ms under tcmalloc, which keeps freed memory for reuse
(benchmarks/README.md). glibc's own tunables (`arena_max`, `mmap_max`, `hugetlb`) removed
part of the faults but not the time. torch steps gain too, less (1158 -> 940 ms).

The allocator must be chosen when the process starts (`LD_PRELOAD`), so `reexec_with_tcmalloc`
restarts the current command with it, before JAX starts: `train.py`, the benchmarks and the
test suite (tests/conftest.py) call it first thing. `JAXVISION_TCMALLOC=0` opts out; an
allocator the user already preloads is kept.
tcmalloc comes from Debian's `libtcmalloc-minimal4` (or gperftools' `libtcmalloc`); without it
a warning says so and nothing changes.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys

OPT_OUT = "JAXVISION_TCMALLOC"
_MARKER = "JAXVISION_TCMALLOC_REEXEC"  # set in the restarted process: never restart twice
_PRELOADED_ALLOCATORS = ("tcmalloc", "jemalloc", "mimalloc")
_LIBRARIES = ("tcmalloc_minimal", "tcmalloc")


def find_tcmalloc() -> str | None:
    """The soname of an installed tcmalloc (`libtcmalloc_minimal.so.4`, ...), or None."""
    for name in _LIBRARIES:
        found = ctypes.util.find_library(name)
        if found:
            return found
    return None


def loaded_allocator() -> str:
    """'tcmalloc', 'jemalloc' or 'mimalloc' when this process has one mapped, else 'glibc'."""
    try:
        with open("/proc/self/maps") as maps:
            text = maps.read()
    except OSError:
        return "glibc"
    return next((name for name in _PRELOADED_ALLOCATORS if f"lib{name}" in text), "glibc")


def plan(environ, platform: str, library: str | None) -> tuple[str, str | None]:
    """What to do: ('reexec', new LD_PRELOAD) or ('keep', None) or ('missing', None)."""
    preload = environ.get("LD_PRELOAD", "")
    if (platform != "linux" or environ.get(OPT_OUT) == "0" or environ.get(_MARKER)
            or any(name in preload for name in _PRELOADED_ALLOCATORS)):
        return "keep", None
    if library is None:
        return "missing", None
    return "reexec", f"{library} {preload}".strip()


def reexec_with_tcmalloc(environ=None) -> None:
    """Restarts this process (same interpreter, options and arguments) with tcmalloc preloaded,
    where `plan` says so; returns only when it does not (then warns if tcmalloc is missing).
    Call it before JAX starts: the restart loses whatever the process did so far."""
    environ = os.environ if environ is None else environ
    action, preload = plan(environ, sys.platform, find_tcmalloc())
    if action == "missing":
        logging.warning(
            "glibc malloc: XLA's per-step temporaries are page-faulted in again every step, "
            "which makes CPU training up to 1.5x slower; install tcmalloc (Debian: apt-get "
            "install libtcmalloc-minimal4) or set %s=0 to silence this", OPT_OUT)
        return
    if action == "reexec":
        env = dict(environ, LD_PRELOAD=preload, **{_MARKER: "1"})
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, env)
