"""The one pure train step: `train_step(state, batch, key) -> (state, metrics)`."""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax

from jaxvision.train.state import TrainState


def make_train_step(model, task, tx: optax.GradientTransformation) -> Callable:
    """Builds the pure step for `model` trained by `task.loss` with optimiser `tx`.

    The step's randomness is `fold_in(key, state.step)`, so a resumed run draws the same keys.
    metrics: float32 scalars from the task, plus `grad_norm`.
    """

    def train_step(state: TrainState, batch, key):
        rng = jax.random.fold_in(key, state.step)

        def loss_fn(params):
            variables = {**state.variables, "params": params}
            return task.loss(model, variables, batch, rng)

        (_, (metrics, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            batch_stats=new_model_state.get("batch_stats", state.batch_stats),
            opt_state=opt_state,
        )
        return new_state, {**metrics, "grad_norm": optax.tree.norm(grads)}

    return train_step
