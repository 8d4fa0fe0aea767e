"""The train state: a pytree of arrays only (model, task and optimiser live in closures)."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """step: int32 []; params and batch_stats: the model's collections; opt_state: optax's."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any

    @property
    def variables(self) -> dict[str, Any]:
        """`{'params': ..., 'batch_stats': ...}` as `model.apply` takes them."""
        if self.batch_stats:
            return {"params": self.params, "batch_stats": self.batch_stats}
        return {"params": self.params}


def create_train_state(variables: dict[str, Any], tx: optax.GradientTransformation) -> TrainState:
    """A step-0 state from initial variables; params are kept float32."""
    params = jax.tree.map(lambda p: p.astype(jnp.float32), variables["params"])
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params))
