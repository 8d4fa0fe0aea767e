"""Data parallelism for the one train step: `jax.jit` over a device mesh with `NamedSharding`.

The batch is split over the mesh's `data` axis and the state is replicated; BatchNorm statistics
are computed over the global batch because the model sees one global array.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


class JitMesh:
    """Runs pure functions with the batch sharded over every device of every process."""

    def __init__(self, devices=None):
        devices = np.asarray(jax.devices() if devices is None else devices)
        self.mesh = Mesh(devices, (DATA_AXIS,))
        self.replicated = NamedSharding(self.mesh, P())
        self.batch_sharding = NamedSharding(self.mesh, P(DATA_AXIS))

    @property
    def num_devices(self) -> int:
        return self.mesh.devices.size

    def put_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """Assembles global arrays from every process's `[local_batch, ...]` numpy shards."""
        for name, value in local_batch.items():
            if np.shape(value)[0] * jax.process_count() % self.num_devices:
                raise ValueError(
                    f"batch field {name!r}: global batch {np.shape(value)[0] * jax.process_count()}"
                    f" is not divisible by the {self.num_devices} devices")
        return jax.tree.map(
            lambda x: jax.make_array_from_process_local_data(self.batch_sharding, x), local_batch)

    def replicate(self, tree):
        """Places a pytree (the train state) on every device."""
        return jax.device_put(tree, self.replicated)

    def jit_step(self, train_step: Callable) -> Callable:
        """`train_step(state, batch, key)` compiled once, with the input state's buffers donated."""
        return jax.jit(train_step, in_shardings=(self.replicated, self.batch_sharding,
                                                 self.replicated),
                       out_shardings=(self.replicated, self.replicated), donate_argnums=0)

    def jit_eval(self, eval_fn: Callable) -> Callable:
        """`eval_fn(variables, batch) -> stats` with replicated (summed-over-batch) outputs."""
        return jax.jit(eval_fn, in_shardings=(self.replicated, self.batch_sharding),
                       out_shardings=self.replicated)
