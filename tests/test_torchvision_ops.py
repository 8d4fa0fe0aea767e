"""The test-only torchvision op registrations (tests/torchvision_ops.py) follow the compiled
kernels: nms against a plain greedy loop, roi_align against `_roi_align` where every sample is
inside the map and against the kernel's out-of-map rule (zero) where it is not."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torchvision  # noqa: E402
from torchvision.ops.roi_align import _roi_align  # noqa: E402

from tests import torchvision_ops  # noqa: E402

torchvision_ops.register()


def _greedy_nms(boxes, scores, threshold):
    """float64 greedy NMS: suppress IoU > threshold, descending score (stable)."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    for i in order:
        ok = True
        for j in keep:
            lt = np.maximum(boxes[i, :2], boxes[j, :2])
            rb = np.minimum(boxes[i, 2:], boxes[j, 2:])
            inter = np.prod(np.clip(rb - lt, 0, None))
            union = np.prod(boxes[i, 2:] - boxes[i, :2]) + np.prod(boxes[j, 2:] - boxes[j, :2])
            if inter / (union - inter) > threshold:
                ok = False
                break
        if ok:
            keep.append(i)
    return np.array(keep)


def test_nms_matches_greedy_loop_and_keeps_iou_at_threshold():
    rng = np.random.default_rng(0)
    boxes = rng.uniform(0, 40, (300, 4))
    boxes[:, 2:] += boxes[:, :2] + 1
    scores = rng.random(300)
    kept = torchvision.ops.nms(torch.tensor(boxes), torch.tensor(scores), 0.4).numpy()
    np.testing.assert_array_equal(kept, _greedy_nms(boxes, scores, 0.4))
    # IoU([0,0,2,1], [0,0,1,1]) == 0.5 exactly: kept at threshold 0.5, suppressed below it
    pair = torch.tensor([[0.0, 0, 2, 1], [0, 0, 1, 1]])
    score = torch.tensor([0.9, 0.8])
    assert torchvision.ops.nms(pair, score, 0.5).tolist() == [0, 1]
    assert torchvision.ops.nms(pair, score, 0.49).tolist() == [0]


@pytest.mark.slow
@pytest.mark.parametrize("sampling_ratio", [2, 0])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_inside_map_equals_pure_python_reference(sampling_ratio, aligned):
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(2, 3, 20, 24, dtype=torch.float64, requires_grad=True)
    xy = torch.rand(20, 2, dtype=torch.float64, generator=gen) * 10 + 1
    wh = torch.rand(20, 2, dtype=torch.float64, generator=gen) * 8 + 1
    rois = torch.cat([torch.randint(0, 2, (20, 1), generator=gen).double(), xy, xy + wh], 1)
    ours = torchvision.ops.roi_align(features, rois, (7, 5), 1.0, sampling_ratio, aligned)
    ref = _roi_align(features, rois, 1.0, 7, 5, sampling_ratio, aligned)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    g_ours, = torch.autograd.grad(ours.sum(), features)
    g_ref, = torch.autograd.grad(ref.sum(), features)
    torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-12)


def test_roi_align_sample_outside_map_contributes_zero():
    # a 1x1 output, one sample at the box centre: (-3, -3) is past -1, so the kernel gives 0
    # (the pure-Python `_roi_align` clamps it to the corner value instead)
    features = torch.arange(1.0, 17.0, dtype=torch.float64).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0.0, -4, -4, -2, -2]], dtype=torch.float64)
    out = torchvision.ops.roi_align(features, rois, (1, 1), 1.0, 1, False)
    assert out.item() == 0.0
    assert _roi_align(features, rois, 1.0, 1, 1, 1, False).item() == 1.0
    # at exactly -1 the sample still counts (clamped to row/column 0)
    rois = torch.tensor([[0.0, -1.5, -1.5, -0.5, -0.5]], dtype=torch.float64)
    assert torchvision.ops.roi_align(features, rois, (1, 1), 1.0, 1, False).item() == 1.0
