"""U-Net's weighted cross-entropy: sum(w * CE) / sum(w) against float64 numpy, and the
segmentation task's loss with `pixel_weights` cropping labels and weights to a valid-padding
model's output."""

import flax.linen as nn
import jax
import numpy as np

from jaxvision.losses import pixel_cross_entropy
from jaxvision.tasks import get_task


def _weighted_ce(logits, labels, weights):
    z = np.asarray(logits, np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    return -(weights * picked).sum() / weights.sum()


def test_weighted_loss_is_the_weighted_mean_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(2, 5, 6))
    weights = rng.uniform(0.5, 11.0, size=(2, 5, 6)).astype(np.float32)
    got = pixel_cross_entropy(logits, labels, weights=weights)
    np.testing.assert_allclose(got, _weighted_ce(logits, labels, weights), rtol=1e-6)
    assert not np.isclose(got, pixel_cross_entropy(logits, labels))


class _Valid(nn.Module):
    """A 5x5 valid conv: [B, H, W, 3] -> logits [B, H - 4, W - 4, 2], as a U-Net's shrink."""

    @nn.compact
    def __call__(self, x, train=False):
        return nn.Conv(2, (5, 5), padding="VALID")(x), {}


def test_task_loss_weights_the_pixels_the_model_predicts():
    rng = np.random.default_rng(1)
    batch = {"image": rng.normal(size=(2, 12, 14, 3)).astype(np.float32),
             "segmentation": rng.integers(0, 2, size=(2, 12, 14)).astype(np.int32),
             "weights": rng.uniform(0.5, 11.0, size=(2, 12, 14)).astype(np.float32)}
    task = get_task("segmentation", ("cell",), pixel_weights=True)
    assert "weights" in task.fields
    model = _Valid()
    variables = task.init(model, jax.random.key(0), batch)
    loss, (metrics, _) = task.loss(model, variables, batch, jax.random.key(1))
    logits, _ = model.apply(variables, batch["image"])
    expected = _weighted_ce(logits, batch["segmentation"][:, 2:10, 2:12],
                            batch["weights"][:, 2:10, 2:12])
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    unweighted, _ = get_task("segmentation", ("cell",)).loss(model, variables, batch,
                                                            jax.random.key(1))
    assert not np.isclose(unweighted, loss)
