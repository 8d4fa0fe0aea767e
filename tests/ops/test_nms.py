import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import batched_nms, box_iou, nms
from jaxvision.ops.nms import _nms
from tests.ops.reference import greedy_nms_ref


def _clustered_boxes(rng, n, size=100.0):
    # boxes around a few centres so that suppression chains actually happen
    centres = rng.uniform(10, size - 10, (max(n // 8, 1), 2))
    c = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 3, (n, 2))
    wh = rng.uniform(5, 30, (n, 2))
    return np.concatenate([c - wh / 2, c + wh / 2], 1).astype(np.float32)


def _check(got, valid, want, max_out):
    got, valid = np.asarray(got), np.asarray(valid)
    assert valid.sum() == min(len(want), max_out)
    np.testing.assert_array_equal(got[valid], want[:max_out])
    assert (got[~valid] == 0).all()
    assert valid[: valid.sum()].all()


@pytest.mark.parametrize("seed,n,thr", [(0, 40, 0.5), (1, 200, 0.3), (2, 300, 0.7), (3, 7, 0.0)])
@pytest.mark.parametrize("tile", [16, 256])
def test_nms_matches_greedy_reference(seed, n, thr, tile):
    rng = np.random.default_rng(seed)
    boxes = _clustered_boxes(rng, n)
    scores = rng.integers(0, 10, n).astype(np.float32)  # many ties: stable order matters
    want = np.array(greedy_nms_ref(boxes, scores, thr))
    got, valid = _nms(boxes, scores, None, thr, n, -np.inf, tile=tile)
    _check(got, valid, want, n)


def test_nms_max_output_and_score_threshold():
    rng = np.random.default_rng(5)
    boxes = _clustered_boxes(rng, 120)
    scores = rng.uniform(size=120).astype(np.float32)
    want = np.array(greedy_nms_ref(boxes, scores, 0.5))
    got, valid = nms(boxes, scores, 0.5, 5)
    _check(got, valid, want, 5)
    got, valid = nms(boxes, scores, 0.5, 120, score_threshold=0.6)
    keep = scores > 0.6
    want = np.flatnonzero(keep)[greedy_nms_ref(boxes[keep], scores[keep], 0.5)]
    _check(got, valid, want, 120)


def test_nms_degenerate_boxes_are_kept():
    boxes = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 5, 5], [1, 1, 5, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    got, valid = nms(boxes, scores, 0.5, 4)
    _check(got, valid, np.array([0, 1, 2]), 4)


def test_batched_nms_matches_per_class_reference():
    rng = np.random.default_rng(6)
    boxes = _clustered_boxes(rng, 150)
    scores = rng.permutation(150).astype(np.float32)
    classes = rng.integers(0, 3, 150)
    want = np.array(greedy_nms_ref(boxes, scores, 0.4, classes))
    got, valid = batched_nms(boxes, scores, classes, 0.4, 150)
    _check(got, valid, want, 150)


def test_nms_jit_no_retrace_and_batching():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(b, s, t):
        return nms(b, s, t, 10)

    rng = np.random.default_rng(7)
    for t in (0.3, 0.5):
        b = _clustered_boxes(rng, 50)
        s = rng.uniform(size=50).astype(np.float32)
        got, valid = f(b, s, t)
        _check(got, valid, np.array(greedy_nms_ref(b, s, t)), 10)
    bs = np.stack([_clustered_boxes(rng, 30) for _ in range(2)])
    ss = rng.uniform(size=(2, 30)).astype(np.float32)
    got, valid = jax.vmap(lambda b, s: nms(b, s, 0.5, 8))(bs, ss)
    for i in range(2):
        _check(got[i], valid[i], np.array(greedy_nms_ref(bs[i], ss[i], 0.5)), 8)


def test_nms_errors():
    with pytest.raises(ValueError, match="max_output_size"):
        nms(jnp.zeros((3, 4)), jnp.zeros(3), 0.5, 0)
    with pytest.raises(ValueError, match="boxes/scores"):
        nms(jnp.zeros((3, 4)), jnp.zeros(4), 0.5, 2)
    with pytest.raises(ValueError, match="classes"):
        batched_nms(jnp.zeros((3, 4)), jnp.zeros(3), jnp.zeros(2, jnp.int32), 0.5, 2)


# Boxes whose IoU with A = [0, 0, 1, 1] is exact in float32 (integer intersection and union):
# [0, 0, 2, 1] -> 1/2, [0, 0, 4, 1] -> 1/4, [0, 0, 1, 1] + 0.5 in x -> (0.5) / (1.5) = 1/3.
_A = [0.0, 0.0, 1.0, 1.0]
_EXACT = [([0.0, 0.0, 2.0, 1.0], 0.5), ([0.0, 0.0, 4.0, 1.0], 0.25),
          ([0.0, 0.0, 8.0, 1.0], 0.125)]


def test_torchvision_rule_is_strictly_greater():
    """The peer's documented rule: boxes with IoU *greater than* iou_threshold are removed, so a
    box exactly at the threshold survives (greedy_nms_ref encodes the same)."""
    import torchvision

    doc = " ".join(torchvision.ops.nms.__doc__.split())
    assert "IoU greater than ``iou_threshold``" in doc
    boxes = np.array([_A, [0, 0, 2, 1]], np.float32)
    assert greedy_nms_ref(boxes, np.array([2.0, 1.0]), 0.5) == [0, 1]


@pytest.mark.parametrize("tile", [1, 256])
@pytest.mark.parametrize("other,iou", _EXACT)
def test_nms_keeps_a_box_exactly_at_the_threshold(other, iou, tile):
    boxes = np.array([_A, other], np.float32)
    assert float(box_iou(boxes, boxes)[0, 1]) == iou  # the IoU really is exact in float32
    scores = np.array([0.9, 0.8], np.float32)
    for thr, want in [(iou, [0, 1]),  # IoU == threshold: kept (not > threshold)
                      (np.nextafter(np.float32(iou), np.float32(0)), [0])]:  # just below: gone
        got, valid = _nms(boxes, scores, None, thr, 2, -np.inf, tile=tile)
        _check(got, valid, np.array(want), 2)
        assert greedy_nms_ref(boxes, scores, float(thr)) == want
        classes = np.array([3, 3])
        got, valid = batched_nms(boxes, scores, classes, thr, 2)
        _check(got, valid, np.array(want), 2)


def test_nms_threshold_boundary_inside_a_larger_set():
    """A chain at exactly the threshold in both tile paths (earlier tile / same tile)."""
    boxes = np.array([_A, [0, 0, 2, 1], [0, 0, 4, 1], [10, 10, 11, 11], [0, 0, 2, 1]],
                     np.float32)
    scores = np.array([5, 4, 3, 2, 1], np.float32)
    for thr in (0.5, 0.25):
        want = np.array(greedy_nms_ref(boxes, scores, thr))
        for tile in (2, 256):
            got, valid = _nms(boxes, scores, None, thr, 5, -np.inf, tile=tile)
            _check(got, valid, want, 5)
    # at 0.5: [0,0,2,1] and [0,0,4,1] (IoU 1/2 with each other, 1/2 and 1/4 with A) all stay,
    # the duplicate [0,0,2,1] (IoU 1 with box 1) goes
    np.testing.assert_array_equal(greedy_nms_ref(boxes, scores, 0.5), [0, 1, 2, 3])


def test_score_threshold_is_exclusive_and_defaults_keep_everything():
    """score_threshold drops scores <= it (torchvision's postprocess keeps `scores > thresh`);
    the default (-inf) ignores nothing, like torchvision.ops.nms which has no score cut."""
    import inspect

    assert inspect.signature(nms).parameters["score_threshold"].default == -np.inf
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]], np.float32)
    scores = np.array([0.5, 0.25, -1e30], np.float32)
    got, valid = nms(boxes, scores, 0.5, 3, score_threshold=0.25)
    _check(got, valid, np.array([0]), 3)
    got, valid = nms(boxes, scores, 0.5, 3, score_threshold=np.nextafter(np.float32(0.25), 0))
    _check(got, valid, np.array([0, 1]), 3)
    got, valid = nms(boxes, scores, 0.5, 3)  # defaults: every finite score counts
    _check(got, valid, np.array([0, 1, 2]), 3)


def test_threshold_is_compared_as_a_double_like_the_kernel():
    """torchvision's kernel tests `ovr > iou_threshold` with the IoU in the boxes' dtype and the
    threshold a C++ double. Boxes [0,0,3,1] and [0,0,10,1] have IoU 3/10: in float32 that is
    0.30000001 > 0.3, suppressed (the float32 threshold 0.30000001 would keep it); in float64
    it is the double 0.3, not above 0.3, kept. Under x64 (tests/test_x64.py) both dtypes run."""
    boxes = np.array([[0, 0, 3, 1], [0, 0, 10, 1]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert np.float32(3) / np.float32(10) == np.float32(0.3) and float(np.float32(0.3)) > 0.3
    for thr, want in [(0.3, [0]), (float(np.float32(0.3)), [0, 1]), (0.29, [0])]:
        for tile in (1, 256):
            _check(*_nms(boxes, scores, None, thr, 2, -np.inf, tile=tile), np.array(want), 2)
        _check(*batched_nms(boxes, scores, np.array([1, 1]), thr, 2), np.array(want), 2)
    if jax.config.jax_enable_x64:
        assert 3.0 / 10.0 == 0.3
        _check(*nms(boxes.astype(np.float64), scores, 0.3, 2), np.array([0, 1]), 2)
