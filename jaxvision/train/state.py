"""The train state: a pytree of arrays only (model, task and optimiser live in closures)."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """step: int32 []; params and batch_stats: the model's collections; opt_state: optax's;
    ema_params: exponential moving average of params ({} when off); skipped: int32 [] count of
    steps whose update was dropped for a non-finite loss or gradient; first_skipped: int32 [] the
    first such step (-1 if none)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    ema_params: Any
    skipped: jax.Array
    first_skipped: jax.Array

    @property
    def variables(self) -> dict[str, Any]:
        """`{'params': ..., 'batch_stats': ...}` as `model.apply` takes them."""
        if self.batch_stats:
            return {"params": self.params, "batch_stats": self.batch_stats}
        return {"params": self.params}

    @property
    def eval_variables(self) -> dict[str, Any]:
        """The variables to evaluate: with the EMA params when EMA is on."""
        return {**self.variables, "params": self.ema_params} if self.ema_params else self.variables


def create_train_state(variables: dict[str, Any], tx: optax.GradientTransformation, *,
                       ema: bool = False) -> TrainState:
    """A step-0 state from initial variables; params are kept float32."""
    params = jax.tree.map(lambda p: p.astype(jnp.float32), variables["params"])
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                      ema_params=params if ema else {}, skipped=jnp.zeros((), jnp.int32),
                      first_skipped=jnp.full((), -1, jnp.int32))
