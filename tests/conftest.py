"""Test set-up: make torchvision's Python parts importable without its compiled ops.

torchvision 0.28's compiled kernels do not load here; defining the two op schemas it registers
fake implementations for lets `import torchvision` succeed (see DESIGN.md, Testing).
"""

import os
import sys

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# 8 virtual CPU devices for the data-parallel tests; set before JAX creates its CPU client.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_force_host_platform_device_count=8").strip()


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


@pytest.fixture(autouse=True)
def _one_slow_test_at_a_time(request, tmp_path_factory):
    """Under pytest-xdist (`-n 2`), slow tests (full-size steps taking up to 15 GB, convergence
    and multi-process runs) take an exclusive lock shared by the workers, so two of them never
    run at once; fast tests go on beside them."""
    if request.node.get_closest_marker("slow") is None:
        yield
        return
    import fcntl

    lock = tmp_path_factory.getbasetemp().parent / "jaxvision-slow-tests.lock"
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
