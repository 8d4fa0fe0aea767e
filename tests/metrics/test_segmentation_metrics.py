"""Confusion matrix and IoU against numpy float64 references."""

import jax
import numpy as np
import pytest

from jaxvision.metrics import confusion_matrix, segmentation_scores


def _numpy_confusion(labels, preds, k, keep):
    cm = np.zeros((k, k), np.int64)
    for t, p, ok in zip(labels.ravel(), preds.ravel(), keep.ravel(), strict=True):
        if ok and 0 <= t < k:
            cm[t, p] += 1
    return cm


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matches_numpy_with_ignore_and_valid(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, size=(4, 9, 7))
    labels[rng.random(labels.shape) < 0.1] = 255
    preds = rng.integers(0, 5, size=labels.shape)
    valid = rng.random(4) < 0.7
    got = jax.jit(confusion_matrix, static_argnums=2)(labels, preds, 5, valid[:, None, None])
    keep = np.broadcast_to(valid[:, None, None], labels.shape)
    np.testing.assert_array_equal(got, _numpy_confusion(labels, preds, 5, keep))


def test_scores_from_definition():
    rng = np.random.default_rng(3)
    cm = rng.integers(0, 50, size=(4, 4)).astype(np.float64)
    cm[3, :] = 0
    cm[:, 3] = 0  # a class that never occurs is left out of the mean
    scores = segmentation_scores(cm, ["a", "b", "c", "d"])
    ious = [cm[c, c] / (cm[c, :].sum() + cm[:, c].sum() - cm[c, c]) for c in range(3)]
    np.testing.assert_allclose([scores[f"iou/{n}"] for n in "abc"], ious)
    np.testing.assert_allclose(scores["miou"], np.mean(ious))
    np.testing.assert_allclose(scores["pixel_accuracy"], np.trace(cm) / cm.sum())
    assert np.isnan(scores["iou/d"])


def test_perfect_prediction_scores_one():
    labels = np.random.default_rng(0).integers(0, 3, size=(2, 5, 5))
    scores = segmentation_scores(confusion_matrix(labels, labels, 3))
    assert scores["miou"] == 1.0 and scores["pixel_accuracy"] == 1.0
