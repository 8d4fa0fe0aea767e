"""Test set-up: make torchvision's Python parts importable without its compiled ops.

torchvision 0.28's compiled kernels do not load here; defining the two op schemas it registers
fake implementations for lets `import torchvision` succeed (see DESIGN.md, Testing).
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")


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
