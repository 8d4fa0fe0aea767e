"""Randomness of the train step: a model with dropout trained through `make_train_step` draws a
different mask every step and every microbatch, and a run stopped, checkpointed and resumed in a
fresh step function draws the same masks and reaches bit-identical parameters."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from jaxvision.tasks import get_task
from jaxvision.train.state import create_train_state
from jaxvision.train.step import make_train_step

TASK = get_task("classification", ("a", "b", "c"))
STEPS, BATCH, WIDTH = 4, 8, 64


class _Sink:
    """Collects what the model reports (a plain object: Flax would freeze a list attribute)."""

    def __init__(self):
        self.masks = []


class _DropoutMLP(nn.Module):
    """Dense - dropout(0.5) - Dense; in train mode it reports each dropout mask it draws to
    `record` (a host callback, so masks drawn inside scan and grad are seen one by one)."""

    record: _Sink

    @nn.compact
    def __call__(self, x, train: bool):
        h = nn.relu(nn.Dense(WIDTH)(x.reshape(x.shape[0], -1)))
        mask = nn.Dropout(0.5, deterministic=not train)(jnp.ones_like(h))
        if train:
            jax.debug.callback(lambda m: self.record.masks.append(np.asarray(m) > 0), mask)
        return nn.Dense(3)(h * mask), {}


def _batches():
    rng = np.random.default_rng(0)
    return [{"image": rng.normal(size=(BATCH, 4, 4, 3)).astype(np.float32),
             "label": rng.integers(0, 3, size=BATCH).astype(np.int32)} for _ in range(STEPS)]


def _run(step, state, batches, start, stop):
    for i in range(start, stop):
        state, _ = step(state, batches[i], jax.random.key(7))  # the same key every call
    jax.effects_barrier()
    return state


@pytest.mark.slow
@pytest.mark.parametrize("accum", [1, 2])
def test_dropout_keys_differ_per_step_and_microbatch_and_resume_is_exact(accum, tmp_path):
    batches, tx = _batches(), optax.adam(1e-2)
    sink = _Sink()
    model = _DropoutMLP(sink)
    variables = jax.jit(lambda b: TASK.init(model, jax.random.key(0), b))(batches[0])
    init_state = create_train_state(variables, tx)
    step = jax.jit(make_train_step(model, TASK, tx, grad_accum_steps=accum))
    full = _run(step, init_state, batches, 0, STEPS)

    # one mask per microbatch per step, all different from one another
    masks = [m.tobytes() for m in sink.masks]
    assert len(masks) == STEPS * accum
    assert all(m.shape == (BATCH // accum, WIDTH) for m in sink.masks)
    distinct = len(set(masks))
    assert distinct == len(masks), f"only {distinct} distinct masks in {len(masks)} draws"
    assert 0.4 < np.mean(np.concatenate(sink.masks)) < 0.6  # dropout at rate 0.5

    # stop after 2 steps, checkpoint, restore into a fresh step function, finish
    sink.masks.clear()
    half = _run(step, init_state, batches, 0, 2)
    assert [m.tobytes() for m in sink.masks] == masks[:2 * accum]
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "ckpt", half)
    checkpointer.wait_until_finished()
    restored = checkpointer.restore(tmp_path / "ckpt", jax.eval_shape(lambda: half))
    assert int(restored.step) == 2
    fresh_sink = _Sink()
    fresh_model = _DropoutMLP(fresh_sink)
    fresh_step = jax.jit(make_train_step(fresh_model, TASK, tx, grad_accum_steps=accum))
    resumed = _run(fresh_step, restored, batches, 2, STEPS)
    assert [m.tobytes() for m in fresh_sink.masks] == masks[2 * accum:]
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed), jax.device_get(full))
