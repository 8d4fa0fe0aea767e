"""The one pure train step: `train_step(state, batch, key) -> (state, metrics)`."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxvision.train.state import TrainState


def _split_microbatches(batch, count: int):
    """[B, ...] -> [count, B / count, ...]; microbatch j holds elements j, j+count, ... so each
    device's share of a sharded batch stays on that device."""
    def split(x):
        if x.shape[0] % count:
            raise ValueError(f"train.grad_accum_steps: expected a divisor of the batch size "
                             f"{x.shape[0]}, got {count}")
        return jnp.swapaxes(x.reshape(x.shape[0] // count, count, *x.shape[1:]), 0, 1)

    return jax.tree.map(split, batch)


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def make_train_step(model, task, tx: optax.GradientTransformation, *,
                    axis_name: str | None = None, grad_accum_steps: int = 1,
                    ema_decay: float = 0.0) -> Callable:
    """Builds the pure step for `model` trained by `task.loss` with optimiser `tx`.

    The step's randomness is `fold_in(key, state.step)`, so a resumed run draws the same keys.
    `axis_name`: under `pmap`, gradients and metrics are averaged over that device axis (BatchNorm
    statistics are averaged by the model's BatchNorm, built with the same axis name).
    `grad_accum_steps`: the batch is cut into that many microbatches whose gradients are averaged
    (BatchNorm statistics run through them in order). A non-finite loss or gradient leaves the
    state unchanged but for `step` and the `skipped` counters. metrics: float32 scalars from the
    task, plus `grad_norm` and `skipped` (0 or 1).
    """

    def gradients(params, batch_stats, batch, rng):
        def loss_fn(p):
            variables = {"params": p, "batch_stats": batch_stats} if batch_stats else {"params": p}
            return task.loss(model, variables, batch, rng)

        (_, (metrics, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        return grads, metrics, new_model_state.get("batch_stats", batch_stats)

    def accumulated(params, batch_stats, batch, rng):
        def body(carry, inputs):
            grad_sum, stats = carry
            index, microbatch = inputs
            grads, metrics, stats = gradients(params, stats, microbatch,
                                              jax.random.fold_in(rng, index))
            return (jax.tree.map(jnp.add, grad_sum, grads), stats), metrics

        zeros = jax.tree.map(jnp.zeros_like, params)
        (grad_sum, batch_stats), metrics = jax.lax.scan(
            body, (zeros, batch_stats),
            (jnp.arange(grad_accum_steps), _split_microbatches(batch, grad_accum_steps)))
        mean = lambda tree: jax.tree.map(lambda x: x / grad_accum_steps, tree)
        return mean(grad_sum), jax.tree.map(lambda m: jnp.mean(m, 0), metrics), batch_stats

    def train_step(state: TrainState, batch, key):
        rng = jax.random.fold_in(key, state.step)
        compute = gradients if grad_accum_steps == 1 else accumulated
        grads, metrics, batch_stats = compute(state.params, state.batch_stats, batch, rng)
        if axis_name is not None:
            grads, metrics = jax.lax.pmean((grads, metrics), axis_name)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = _all_finite((metrics["loss"], grads))
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
        ema = state.ema_params
        if ema:
            ema = jax.tree.map(lambda e, p: ema_decay * e + (1 - ema_decay) * p, ema, params)
        new_state = state.replace(
            step=state.step + 1,
            params=keep(params, state.params),
            batch_stats=keep(batch_stats, state.batch_stats),
            opt_state=keep(opt_state, state.opt_state),
            ema_params=keep(ema, state.ema_params),
            skipped=state.skipped + (~finite).astype(jnp.int32),
            first_skipped=jnp.where(~finite & (state.first_skipped < 0), state.step,
                                    state.first_skipped),
        )
        skipped = (~finite).astype(jnp.float32)
        return new_state, {**metrics, "grad_norm": optax.tree.norm(grads), "skipped": skipped}

    return train_step
