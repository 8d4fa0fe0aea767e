"""The reference recipes' schedules and RMSProp against float64 numpy written from their
definitions: torchvision's MultiStepLR after a LinearLR warm-up from 1/1000, Darknet's burn-in
and steps, EfficientNet's staircase exponential decay, TensorFlow 1's RMSProp."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.train.config import base_config
from jaxvision.train.optim import build_optimizer, build_schedule


def _optimizer(**kw):
    opt = base_config().optimizer
    opt.update(kw)
    return opt


def _lrs(opt, steps: int) -> np.ndarray:
    schedule = build_schedule(opt, steps)
    return np.array([float(schedule(jnp.asarray(s))) for s in range(steps + 1)])


def test_multistep_after_linear_warmup_from_a_thousandth():
    opt = _optimizer(learning_rate=0.02, warmup_steps=5, warmup_start=1e-3, schedule="steps",
                     boundaries=(10, 15), decay_factor=0.1)
    want = []
    for s in range(21):
        lr = 0.02 * (1e-3 + (1 - 1e-3) * s / 5) if s < 5 else 0.02
        want.append(lr * 0.1 ** sum(s >= b for b in (10, 15)))  # decayed at the boundary
    np.testing.assert_allclose(_lrs(opt, 20), want, rtol=1e-6, atol=1e-9)  # float32 lerp


def test_darknet_burn_in_then_steps():
    opt = _optimizer(learning_rate=1e-3, warmup_steps=8, warmup="burn_in", schedule="steps",
                     boundaries=(12,), decay_factor=0.1)
    want = [1e-3 * (s / 8) ** 4 if s < 8 else 1e-3 * (0.1 if s >= 12 else 1) for s in range(16)]
    np.testing.assert_allclose(_lrs(opt, 15), want, rtol=1e-6, atol=1e-12)


def test_exponential_staircase():
    opt = _optimizer(learning_rate=0.256, warmup_steps=0, schedule="exponential",
                     decay_every=3, decay_factor=0.97)
    np.testing.assert_allclose(_lrs(opt, 10), [0.256 * 0.97 ** (s // 3) for s in range(11)],
                               rtol=1e-6)


def test_rmsprop_is_tensorflow_1s():
    opt = _optimizer(name="rmsprop", learning_rate=0.1, warmup_steps=0, schedule="constant",
                     rms_decay=0.9, eps=1e-3, momentum=0.9, weight_decay=1e-2)
    tx = build_optimizer(opt, 10)
    w = np.array([0.5, -1.0, 2.0])
    params = jnp.asarray(w, jnp.float32)
    state = tx.init(params)
    ms, mom = np.ones(3), np.zeros(3)  # TF1 starts the mean square at 1
    for k in range(3):
        g = np.array([0.3, -0.2, 0.05]) * (k + 1)
        updates, state = tx.update(jnp.asarray(g, jnp.float32), state, params)
        params = params + updates
        g = g + 1e-2 * w
        ms = 0.9 * ms + 0.1 * g**2
        mom = 0.9 * mom + 0.1 * g / np.sqrt(ms + 1e-3)
        w = w - mom
        np.testing.assert_allclose(np.asarray(params), w, rtol=1e-5)


@pytest.mark.parametrize("field, value, match", [
    ("boundaries", (10, 5), r"config.optimizer.boundaries: expected increasing"),
    ("boundaries", (5, 30), r"config.optimizer.boundaries: .*train.steps=20, got \(5, 30\)"),
    ("boundaries", (4,), r"config.optimizer.boundaries: .*got \(4,\)"),  # inside the warm-up
    ("warmup", "cubic", r"config.optimizer.warmup: expected one of \('linear', 'burn_in'\)"),
    ("warmup_start", 1.5, r"config.optimizer.warmup_start: expected a fraction"),
    ("decay_factor", 0.0, r"config.optimizer.decay_factor: expected a value in \(0, 1\]"),
])
def test_bad_schedule_settings_are_named(field, value, match):
    opt = _optimizer(schedule="steps", warmup_steps=4, boundaries=(10,))
    opt[field] = value
    with pytest.raises(ValueError, match=match):
        build_schedule(opt, 20)


def test_boundaries_at_the_ends_are_accepted():
    for bounds in ((5,), (20,), (5, 20)):  # first step after the warm-up, the last step
        build_schedule(_optimizer(schedule="steps", warmup_steps=4, boundaries=bounds), 20)


def test_frozen_leaves_get_no_update_not_even_weight_decay():
    # torchvision's optimiser holds only requires_grad parameters: a frozen one never moves,
    # the others follow SGD with momentum and decay added to the gradient (float64 reference)
    opt = _optimizer(name="sgd", learning_rate=0.5, warmup_steps=0, schedule="constant",
                     momentum=0.9, weight_decay=0.1)
    params = {"body": {"stem": jnp.array([1.0, -2.0]), "stage": jnp.array([3.0, 0.5])},
              "head": jnp.array([0.25])}
    mask = {"body": {"stem": False, "stage": True}, "head": True}
    tx = build_optimizer(opt, 10, trainable=lambda p: mask)
    plain = build_optimizer(opt, 10)
    state = tx.init(params)
    assert jax.tree.structure(state) == jax.tree.structure(plain.init(params))  # same checkpoint
    w = {k: np.asarray(v, np.float64) for k, v in
         (("stem", params["body"]["stem"]), ("stage", params["body"]["stage"]),
          ("head", params["head"]))}
    trace = {k: np.zeros_like(v) for k, v in w.items()}
    for step in range(2):
        grads = jax.tree.map(lambda p, g=0.3 * (step + 1): jnp.full_like(p, g), params)
        updates, state = tx.update(grads, state, params)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
        for k in ("stage", "head"):
            trace[k] = 0.9 * trace[k] + 0.3 * (step + 1) + 0.1 * w[k]
            w[k] = w[k] - 0.5 * trace[k]
    assert (np.asarray(params["body"]["stem"]) == np.array([1.0, -2.0], np.float32)).all()
    np.testing.assert_allclose(params["body"]["stage"], w["stage"], rtol=1e-6)
    np.testing.assert_allclose(params["head"], w["head"], rtol=1e-6)
