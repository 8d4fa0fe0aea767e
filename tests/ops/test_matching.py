import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection._utils import Matcher

from jaxvision.ops.anchors import grid_anchors
from jaxvision.ops.boxes import box_iou
from jaxvision.ops.matching import match_anchors, sample_balanced
from tests.ops.reference import iou_ref


def _setup(seed):
    rng = np.random.default_rng(seed)
    anchors = np.asarray(grid_anchors((6, 8), 16, sizes=(32, 64)))
    xy = rng.uniform(0, 90, (5, 2))
    gt = np.concatenate([xy, xy + rng.uniform(15, 60, (5, 2))], 1).astype(np.float32)
    valid = np.array([True, True, True, False, True])
    return anchors, gt, valid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_match_anchors_matches_torchvision_matcher(seed):
    anchors, gt, valid = _setup(seed)
    labels, matched, _ = match_anchors(anchors, gt, valid, 0.7, 0.3)
    iou = iou_ref(gt[valid], anchors)
    tv = Matcher(0.7, 0.3, allow_low_quality_matches=True)(torch.tensor(iou)).numpy()
    labels, matched = np.asarray(labels), np.asarray(matched)
    np.testing.assert_array_equal(labels == 1, tv >= 0)
    np.testing.assert_array_equal(labels == 0, tv == -1)
    np.testing.assert_array_equal(labels == -1, tv == -2)
    np.testing.assert_array_equal(matched[labels == 1], np.flatnonzero(valid)[tv[tv >= 0]])


# Boxes whose IoUs with GT0 = [0, 0, 10, 1] (area 10) are k / 10 exactly in float32 (integer
# intersection and union), so they sit exactly on thresholds 0.7, 0.5, 0.3, 0.25.
_GT = np.array([[0, 0, 10, 1], [30, 0, 40, 1], [0, 0, 5, 1]], np.float32)
_GT_VALID = np.array([True, True, False])  # GT2 is padding: it would make anchor 3 an IoU-1 hit
_ANCHORS = np.array([
    [0, 0, 10, 1],   # 0: IoU 1.0 with GT0 (GT0's best anchor)
    [0, 0, 7, 1],    # 1: 0.7 exactly
    [0, 0, 6, 1],    # 2: 0.6
    [0, 0, 5, 1],    # 3: 0.5 exactly
    [0, 0, 3, 1],    # 4: 0.3 exactly
    [0, 0, 2.5, 1],  # 5: 0.25 exactly
    [0, 0, 2, 1],    # 6: 0.2
    [30, 0, 32, 1],  # 7: 0.2 with GT1, tied best anchor of GT1 (low-quality match)
    [38, 0, 40, 1],  # 8: 0.2 with GT1, tied best anchor of GT1
    [30, 0, 31, 1],  # 9: 0.1 with GT1
    [60, 0, 61, 1],  # 10: no overlap
], np.float32)


def _torchvision_labels(high, low, allow_low_quality):
    """torchvision's Matcher on torchvision's float32 box_iou of the valid ground truth, as
    (labels in {1, 0, -1}, matched gt index into the padded list)."""
    iou = torchvision.ops.box_iou(torch.tensor(_GT[_GT_VALID]), torch.tensor(_ANCHORS))
    tv = Matcher(high, low, allow_low_quality_matches=allow_low_quality)(iou).numpy()
    labels = np.where(tv >= 0, 1, np.where(tv == Matcher.BELOW_LOW_THRESHOLD, 0, -1))
    return labels, np.flatnonzero(_GT_VALID)[np.maximum(tv, 0)]


def test_exact_ious_are_exact():
    iou = np.asarray(box_iou(_GT[:1], _ANCHORS))[0]
    assert iou[:7].tolist() == [np.float32(v) for v in (1.0, 0.7, 0.6, 0.5, 0.3, 0.25, 0.2)]


@pytest.mark.parametrize("high,low", [(0.7, 0.3), (0.5, 0.25), (0.5, 0.5), (0.3, 0.2)])
@pytest.mark.parametrize("allow_low_quality", [False, True])
def test_match_thresholds_exactly_at_the_boundary_like_torchvision(high, low, allow_low_quality):
    """IoU == high_threshold is positive, IoU == low_threshold is not negative (torchvision:
    `>= high` foreground, `< low` background); ties for a ground truth's best are all positive."""
    labels, matched, max_iou = match_anchors(_ANCHORS, _GT, _GT_VALID, high, low,
                                             allow_low_quality)
    want, want_matched = _torchvision_labels(high, low, allow_low_quality)
    np.testing.assert_array_equal(labels, want)
    np.testing.assert_array_equal(np.asarray(matched)[want == 1], want_matched[want == 1])
    np.testing.assert_allclose(max_iou, iou_ref(_GT[_GT_VALID], _ANCHORS).max(0), rtol=1e-6)


def test_match_defaults_are_torchvision_rpn_matcher():
    """The defaults equal Faster R-CNN's RPN settings in torchvision (fg 0.7, bg 0.3, low-quality
    matches on), and a default call labels the boundary anchors as that Matcher does."""
    import inspect

    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.rpn import RegionProposalNetwork

    theirs = inspect.signature(FasterRCNN).parameters
    high, low = theirs["rpn_fg_iou_thresh"].default, theirs["rpn_bg_iou_thresh"].default
    rpn = RegionProposalNetwork(None, None, high, low, 256, 0.5, {"training": 1, "testing": 1},
                                {"training": 1, "testing": 1}, 0.7)
    ours = inspect.signature(match_anchors).parameters
    assert (ours["high_threshold"].default, ours["low_threshold"].default) == (high, low)
    assert ours["allow_low_quality"].default == rpn.proposal_matcher.allow_low_quality_matches
    labels, _, _ = match_anchors(_ANCHORS, _GT, _GT_VALID)
    want, _ = _torchvision_labels(high, low, rpn.proposal_matcher.allow_low_quality_matches)
    np.testing.assert_array_equal(labels, want)
    #                                      0  1  2   3   4   5  6  7  8  9  10
    np.testing.assert_array_equal(labels, [1, 1, -1, -1, -1, 0, 0, 1, 1, 0, 0])


def test_match_no_valid_gt_all_negative():
    anchors, gt, _ = _setup(0)
    labels, _, _ = match_anchors(anchors, gt, np.zeros(5, bool))
    assert (np.asarray(labels) == 0).all()


def _chi_square_uniformity_pvalue(counts, draws, k):
    """Two-sided p-value that `counts` (times each of n items was chosen in `draws` independent
    uniform k-subsets) come from uniform sampling.

    Per draw an item is chosen with q = k / n and two items co-vary by -q (1 - q) / (n - 1), so
    over the draws Cov(counts) = draws q (1 - q) n / (n - 1) (I - 1 1^T / n) and
    sum (c_i - draws q)^2 / (draws q (1 - q) n / (n - 1)) is chi-square with n - 1 degrees of
    freedom (normal approximation: draws q >= 30 here).
    """
    from scipy.stats import chi2

    n = len(counts)
    q = k / n
    assert draws * q >= 30
    stat = ((counts - draws * q) ** 2).sum() / (draws * q * (1 - q) * n / (n - 1))
    return 2 * min(chi2.cdf(stat, n - 1), chi2.sf(stat, n - 1))


def test_sample_balanced_counts_subset_and_uniformity():
    """Exact counts and subsets for every draw; uniformity by a chi-square test whose false-failure
    rate for a correct sampler is 1e-6 (two-sided), on both the capped positives and the
    negatives."""
    rng = np.random.default_rng(0)
    labels = rng.choice([1, 0, -1], size=2000, p=[0.15, 0.7, 0.15]).astype(np.int32)
    assert (labels == 1).sum() > 128 and (labels == 0).sum() > 128  # both are subsampled
    draws = 400
    f = jax.jit(jax.vmap(chex.assert_max_traces(lambda k, lab: sample_balanced(k, lab, 256, 0.5),
                                                n=1), in_axes=(0, None)))
    pos, neg = f(jax.random.split(jax.random.key(0), draws), labels)
    pos, neg = np.asarray(pos), np.asarray(neg)
    assert (pos.sum(1) == 128).all() and (neg.sum(1) == 128).all()
    assert (labels[pos.nonzero()[1]] == 1).all() and (labels[neg.nonzero()[1]] == 0).all()
    assert _chi_square_uniformity_pvalue(pos.sum(0)[labels == 1], draws, 128) > 1e-6
    assert _chi_square_uniformity_pvalue(neg.sum(0)[labels == 0], draws, 128) > 1e-6
    # the statistic has power: a sampler that prefers the lower half of the indices fails it
    biased = neg.sum(0)[labels == 0].astype(float)
    half = len(biased) // 2
    biased[:half] *= 1.2
    biased[half:] = biased[half:] * 0.8
    assert _chi_square_uniformity_pvalue(biased, draws, 128) < 1e-6


def test_sample_balanced_defaults_are_torchvision_rpn_sampler():
    import inspect

    from torchvision.models.detection import FasterRCNN

    ours = inspect.signature(sample_balanced).parameters
    theirs = inspect.signature(FasterRCNN).parameters
    assert ours["num_samples"].default == theirs["rpn_batch_size_per_image"].default == 256
    assert ours["positive_fraction"].default == theirs["rpn_positive_fraction"].default == 0.5
    labels = jnp.array([1] * 200 + [0] * 50 + [-1] * 10)
    pos, neg = sample_balanced(jax.random.key(3), labels)  # defaults: 128 positives, fill 128
    assert int(pos.sum()) == 128 and int(neg.sum()) == 50


def test_sample_balanced_caps_positives():
    labels = jnp.array([1] * 300 + [0] * 100)
    pos, neg = sample_balanced(jax.random.key(0), labels, 256, 0.25)
    assert int(pos.sum()) == 64 and int(neg.sum()) == 100


def test_matching_errors():
    with pytest.raises(ValueError, match="gt_valid"):
        match_anchors(jnp.zeros((3, 4)), jnp.zeros((2, 4)), jnp.zeros(3, bool))
    with pytest.raises(ValueError, match="positive_fraction"):
        sample_balanced(jax.random.key(0), jnp.zeros(3), 2, 1.5)
