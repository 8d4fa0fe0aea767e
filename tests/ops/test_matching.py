import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torchvision.models.detection._utils import Matcher

from jaxvision.ops.anchors import grid_anchors
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


def test_match_no_valid_gt_all_negative():
    anchors, gt, _ = _setup(0)
    labels, _, _ = match_anchors(anchors, gt, np.zeros(5, bool))
    assert (np.asarray(labels) == 0).all()


def test_sample_balanced_counts_subset_and_randomness():
    rng = np.random.default_rng(0)
    labels = rng.choice([1, 0, -1], size=2000, p=[0.03, 0.8, 0.17]).astype(np.int32)
    f = jax.jit(chex.assert_max_traces(lambda k, lab: sample_balanced(k, lab, 256, 0.5), n=1))
    seen = np.zeros(2000)
    for i in range(20):
        pos, neg = f(jax.random.key(i), labels)
        pos, neg = np.asarray(pos), np.asarray(neg)
        assert pos.sum() == (labels == 1).sum() and neg.sum() == 256 - pos.sum()
        assert (labels[pos] == 1).all() and (labels[neg] == 0).all()
        seen += neg
    # negatives are drawn uniformly: each is picked with probability ~ n_neg_sampled / n_neg
    p = seen[labels == 0] / 20
    assert abs(p.mean() - (256 - (labels == 1).sum()) / (labels == 0).sum()) < 0.01
    assert (seen[labels == 0] > 0).mean() > 0.9


def test_sample_balanced_caps_positives():
    labels = jnp.array([1] * 300 + [0] * 100)
    pos, neg = sample_balanced(jax.random.key(0), labels, 256, 0.25)
    assert int(pos.sum()) == 64 and int(neg.sum()) == 100


def test_matching_errors():
    with pytest.raises(ValueError, match="gt_valid"):
        match_anchors(jnp.zeros((3, 4)), jnp.zeros((2, 4)), jnp.zeros(3, bool))
    with pytest.raises(ValueError, match="positive_fraction"):
        sample_balanced(jax.random.key(0), jnp.zeros(3), 2, 1.5)
