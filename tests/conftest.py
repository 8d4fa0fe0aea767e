"""Test set-up: make torchvision's Python parts importable without its compiled ops.

torchvision 0.28's compiled kernels do not load here; defining the two op schemas it registers
fake implementations for lets `import torchvision` succeed (see DESIGN.md, Testing).
"""

import atexit
import os
import shutil
import sys
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# 8 virtual CPU devices for the data-parallel tests; set before JAX creates its CPU client.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=8").strip()
# One XLA compilation cache for the whole run and the train.py subprocesses it starts: many tests
# compile the same small programs again (each Trainer jits afresh), and a hit skips XLA:CPU's
# compile (times in docs/testing.md). A new, empty folder per run, removed by the process that
# made it (the same pid after the tcmalloc restart), so every run starts cold.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxvision-tests-xla-")
    os.environ["JAXVISION_TESTS_XLA_CACHE_OWNER"] = str(os.getpid())
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")
if os.environ.get("JAXVISION_TESTS_XLA_CACHE_OWNER") == str(os.getpid()):
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], True)


def _define_torchvision_schemas():
    try:
        import torch
    except ImportError:  # torch is a test extra; tests that need it import it themselves
        return
    try:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    except RuntimeError:  # already defined in this process
        return
    _define_torchvision_schemas.lib = lib  # keep the Library alive


_define_torchvision_schemas()


def pytest_configure(config):
    """Restarts pytest (same arguments, before any test) under tcmalloc where installed, as
    train.py does (jaxvision.allocator): the suite's many train steps page-fault far less.
    Output capture is stopped first, so the restarted pytest writes to the real terminal."""
    from jaxvision import allocator

    if allocator.plan(os.environ, sys.platform, allocator.find_tcmalloc())[0] == "reexec":
        config.pluginmanager.getplugin("capturemanager").stop_global_capturing()
        allocator.reexec_with_tcmalloc()
