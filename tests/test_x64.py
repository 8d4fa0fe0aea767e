"""The ops and detection tests with `jax_enable_x64` on. The flag is process-wide, so one test
runs a subset in a subprocess with JAX_ENABLE_X64=1: the float64 parity of Faster / Mask R-CNN
and SSD300 with torchvision (tests/models/detection/test_parity_f64.py, skipped without x64),
and float32 tests of every op and detector, which must give the numbers they give without x64
(integer carries and indices with explicit dtypes, float32 random draws, thresholds compared as
torchvision's kernels do)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBSET = [
    "tests/models/detection/test_parity_f64.py",
    # ops: box coder, IoU, clip; anchors of the three families; matching and sampling; NMS
    # (tiled, batched, thresholds); RoI Align/Pool and the FPN levels; mask pasting; k-means
    "tests/ops/test_boxes.py",
    "tests/ops/test_anchors.py",
    "tests/ops/test_matching.py",
    "tests/ops/test_nms.py",
    "tests/ops/test_roi.py::test_roi_align_matches_kernel_rules",
    "tests/ops/test_roi.py::test_roi_pool_matches_float32_kernel",
    "tests/ops/test_roi.py::test_fpn_level_and_multiscale",
    "tests/ops/test_masks.py",
    "tests/ops/test_kmeans.py",
    # detectors in float32: defaults and sampled counts (Faster / Mask R-CNN), the RoI
    # postprocess at its threshold, SSD's postprocess, YOLOv3's postprocess and loss
    "tests/models/detection/test_defaults.py",
    "tests/models/detection/test_rcnn_train.py::"
    "test_postprocess_matches_torchvision_with_a_score_exactly_at_the_threshold",
    "tests/models/detection/test_ssd_model.py::test_score_threshold_is_strict",
    "tests/models/detection/test_yolo.py::test_postprocess_equals_numpy_and_torchvision_batched_nms",
    "tests/models/detection/test_yolo.py::test_loss_equals_float64_reference",
]


@pytest.mark.slow
def test_ops_and_detectors_under_x64():
    env = dict(os.environ, JAX_ENABLE_X64="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                        *SUBSET], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=900)
    tail = r.stdout[-6000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    summary = r.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "skipped" not in summary and "deselected" not in summary, tail
