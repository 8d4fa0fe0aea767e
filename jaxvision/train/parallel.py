"""Data parallelism for the one train step, in two styles chosen by `config.parallel`.

'jit' (default; the one for TPU pods): `jax.jit` over a mesh of every device of every process
with a `data` axis; the batch is sharded, the state replicated via `NamedSharding`, global arrays
assembled with `jax.make_array_from_process_local_data`. BatchNorm statistics are global because
the model sees one global array.

'pmap': `jax.pmap` over each process's local devices with axis name `batch`; the step averages
gradients with `lax.pmean` and the models' BatchNorm (built with the same axis name) averages its
statistics. The state carries a leading device axis; checkpoints hold one unreplicated copy.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, SingleDeviceSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"
PMAP_AXIS = "batch"


# The init program runs once, so its compile time counts, not its speed: XLA:CPU's LLVM at -O1
# compiles a model's random initialisers to the same bits 1.4-3x faster than at its default -O2
# (docs/benchmarks.md, benchmarks/init_compile.py); -O0 changes the bits.
CPU_INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def compile_init(init_fn: Callable, platform: str, **jit_kwargs) -> Callable:
    """`init_fn` jitted with `jit_kwargs` and compiled at its first call, on CPU with
    `CPU_INIT_COMPILER_OPTIONS` (other platforms: XLA's defaults). For a function called once."""
    jitted = jax.jit(init_fn, **jit_kwargs)
    options = CPU_INIT_COMPILER_OPTIONS if platform == "cpu" else None

    def run(*args):
        return jitted.lower(*args).compile(compiler_options=options)(*args)

    return run


def _check_divisible(local_batch, devices: int, per_process: bool):
    for name, value in local_batch.items():
        size = np.shape(value)[0] * (1 if per_process else jax.process_count())
        if size % devices:
            raise ValueError(f"batch field {name!r}: batch {size} is not divisible by the "
                             f"{devices} devices it is split over")


class JitMesh:
    """Runs pure functions with the batch sharded over every device of every process."""

    axis_name = None  # BatchNorm needs no axis: it sees the global batch

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
        _check_divisible(local_batch, self.num_devices, per_process=False)
        return jax.tree.map(
            lambda x: jax.make_array_from_process_local_data(self.batch_sharding, x), local_batch)

    def replicate(self, tree):
        """Places a pytree (the train state) on every device."""
        return jax.device_put(tree, self.replicated)

    def jit_init(self, init_fn: Callable) -> Callable:
        """`init_fn(*args) -> state`, compiled at its one call, output replicated."""
        return compile_init(init_fn, self.mesh.devices.flat[0].platform,
                            out_shardings=self.replicated)

    def jit_step(self, train_step: Callable) -> Callable:
        """`train_step(state, batch, key)` compiled once, with the input state's buffers donated."""
        return jax.jit(train_step, in_shardings=(self.replicated, self.batch_sharding,
                                                 self.replicated),
                       out_shardings=(self.replicated, self.replicated), donate_argnums=0)

    def jit_predict(self, predict_fn: Callable) -> Callable:
        """`predict_fn(variables, batch) -> outputs`, every output with the batch axis first and
        sharded like the batch."""
        return jax.jit(predict_fn, in_shardings=(self.replicated, self.batch_sharding),
                       out_shardings=self.batch_sharding)

    def gather(self, outputs, local_batch):
        """numpy `(outputs, batch)` of the whole global batch on every process, in global order
        (the batch from each process's `local_batch` share)."""
        if jax.process_count() == 1:
            return jax.tree.map(np.asarray, (outputs, local_batch))
        return (multihost_utils.process_allgather(outputs, tiled=True),
                multihost_utils.process_allgather(local_batch, tiled=True))

    def to_host(self, tree):
        """numpy copies of replicated (possibly multi-host) outputs."""
        return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)

    def to_saved(self, state):
        return state

    def from_saved(self, state):
        return state

    def saved_abstract(self, abstract_state):
        """Restore targets: the saved state's shapes, replicated over the mesh."""
        return jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.replicated),
            abstract_state)


class Pmap:
    """Runs pure functions under `jax.pmap` over this process's devices, axis `batch`."""

    axis_name = PMAP_AXIS

    def __init__(self, devices=None):
        self.devices = list(jax.local_devices() if devices is None else devices)
        self.stacked = NamedSharding(Mesh(np.asarray(self.devices), (PMAP_AXIS,)), P(PMAP_AXIS))

    @property
    def num_devices(self) -> int:
        return len(self.devices) * jax.process_count()

    def put_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """Splits each `[local_batch, ...]` field into `[local_devices, per_device, ...]`."""
        _check_divisible(local_batch, len(self.devices), per_process=True)
        n = len(self.devices)
        return jax.device_put(
            jax.tree.map(lambda x: np.reshape(x, (n, -1, *np.shape(x)[1:])), local_batch),
            self.stacked)

    def replicate(self, tree):
        """A copy of every leaf per device: `[local_devices, ...]` sharded on the first axis."""
        n = len(self.devices)
        return jax.device_put(
            jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), tree), self.stacked)

    def jit_init(self, init_fn: Callable) -> Callable:
        single = compile_init(init_fn, jax.default_backend())
        return lambda *args: self.replicate(single(*args))

    def jit_step(self, train_step: Callable) -> Callable:
        return jax.pmap(train_step, axis_name=PMAP_AXIS, in_axes=(0, 0, None),
                        donate_argnums=0, devices=self.devices)

    def jit_predict(self, predict_fn: Callable) -> Callable:
        """`predict_fn` under pmap: outputs `[local_devices, per_device, ...]`."""
        return jax.pmap(predict_fn, axis_name=PMAP_AXIS, devices=self.devices)

    def gather(self, outputs, local_batch):
        """numpy `(outputs, batch)` of the whole global batch on every process (device axis
        folded into the batch axis; processes' shares concatenated in process order)."""
        local = jax.tree.map(lambda x: np.asarray(x).reshape(-1, *x.shape[2:]), outputs)
        if jax.process_count() == 1:
            return local, jax.tree.map(np.asarray, local_batch)
        return (multihost_utils.process_allgather(local, tiled=True),
                multihost_utils.process_allgather(local_batch, tiled=True))

    def to_host(self, tree):
        """The first device's copy of replicated outputs, as numpy."""
        return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)).reshape(x.shape[1:]),
                            tree)

    def to_saved(self, state):
        """One copy of the replicated state, on the first device."""
        return jax.tree.map(lambda x: x.addressable_data(0).reshape(x.shape[1:]), state)

    def from_saved(self, state):
        return self.replicate(state)

    def saved_abstract(self, abstract_state):
        sharding = SingleDeviceSharding(self.devices[0])
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                            abstract_state)


PARALLEL = {"jit": JitMesh, "pmap": Pmap}


def make_parallel(name: str):
    """The wrapper for `config.parallel` ('jit' or 'pmap')."""
    if name not in PARALLEL:
        raise ValueError(f"config.parallel: expected one of {tuple(PARALLEL)}, got {name!r}")
    return PARALLEL[name]()
