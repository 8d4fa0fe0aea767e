"""Shared detection loss pieces against torch's functional losses."""

import jax.numpy as jnp
import numpy as np
import torch

from jaxvision.losses import sigmoid_bce, smooth_l1


def test_smooth_l1_matches_torch_on_both_branches_and_at_beta():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(64,)).astype(np.float32)
    target = rng.normal(size=(64,)).astype(np.float32)
    target[:2] = 0.0
    pred[:2] = np.float32(0.25)  # |d| exactly at beta 0.25: both branches give 0.125 there
    for beta in (0.25, 1 / 9, 1.0, 0.0):
        ref = torch.nn.functional.smooth_l1_loss(torch.tensor(pred), torch.tensor(target),
                                                 beta=beta, reduction="none").numpy()
        np.testing.assert_allclose(smooth_l1(jnp.asarray(pred), jnp.asarray(target), beta), ref,
                                   rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(smooth_l1(jnp.asarray(pred[:2]), jnp.asarray(target[:2]), 0.25),
                               [0.125, 0.125])


def test_sigmoid_bce_matches_torch_with_large_logits():
    rng = np.random.default_rng(1)
    logits = (rng.normal(size=(64,)) * 30).astype(np.float32)
    labels = (rng.random(64) < 0.5).astype(np.float32)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(logits), torch.tensor(labels), reduction="none").numpy()
    np.testing.assert_allclose(sigmoid_bce(jnp.asarray(logits), jnp.asarray(labels)), ref,
                               rtol=1e-5, atol=1e-6)
