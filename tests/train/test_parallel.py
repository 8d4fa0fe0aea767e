"""jit-with-mesh and pmap give the single-device numbers; one compile; accumulation, EMA,
non-finite handling and bfloat16 compute."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models import get_model
from jaxvision.tasks import get_task
from jaxvision.train import loop, train_and_evaluate
from jaxvision.train.config import base_config
from jaxvision.train.optim import build_optimizer
from jaxvision.train.parallel import JitMesh, Pmap, compile_init
from jaxvision.train.state import create_train_state
from jaxvision.train.step import make_train_step
from tests.train.conftest import checkpoint_steps, saved_state, tiny_unet_config

TASK = get_task("segmentation", ("circle", "square", "triangle"))


def _batches(count, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return [{"image": rng.normal(size=(size, 16, 16, 3)).astype(np.float32),
             "segmentation": rng.integers(0, 4, size=(size, 16, 16)).astype(np.int32)}
            for _ in range(count)]


def _run(parallel, *, batch_norm=True, steps=3, grad_accum_steps=1, ema_decay=0.0,
         dtype=jnp.float32, batches=None):
    """Trains a small U-Net `steps` steps under `parallel`; returns the unreplicated final state,
    the losses and the params after every step (index 0: initial)."""
    chex.clear_trace_counter()
    model = get_model("unet", num_classes=4, depth=2, base_width=4, padding="SAME",
                      batch_norm=batch_norm, dtype=dtype, axis_name=parallel.axis_name)
    opt = base_config().optimizer
    opt.update(dict(name="sgd", learning_rate=0.1, warmup_steps=0))
    tx = build_optimizer(opt, 10)
    batches = batches or _batches(steps)
    init = lambda rng, b: create_train_state(
        TASK.init(model.clone(axis_name=None), rng, b), tx, ema=ema_decay > 0)
    state = parallel.jit_init(init)(jax.random.key(0), batches[0])
    step = make_train_step(model, TASK, tx, axis_name=parallel.axis_name,
                           grad_accum_steps=grad_accum_steps, ema_decay=ema_decay)
    step = parallel.jit_step(chex.assert_max_traces(step, n=1))
    losses, params = [], [jax.device_get(parallel.to_saved(state).params)]
    for batch in batches[:steps]:
        state, metrics = step(state, parallel.put_batch(batch), jax.random.key(1))
        losses.append(float(parallel.to_host(metrics)["loss"]))
        params.append(jax.device_get(parallel.to_saved(state).params))
    return jax.device_get(parallel.to_saved(state)), losses, params


def _kernel_init(key):
    """One conv kernel drawn as Flax's default initialiser draws it (truncated normal)."""
    return {"kernel": jax.nn.initializers.lecun_normal()(key, (3, 3, 4, 8))}


@pytest.mark.parametrize("parallel", [lambda: JitMesh(jax.devices()[:2]),
                                      lambda: Pmap(jax.devices()[:2])], ids=["jit", "pmap"])
def test_init_compiles_at_llvm_o1_on_cpu_to_the_default_programs_bits(parallel, monkeypatch):
    """XLA:CPU at -O1 gives the bits of a default (-O2) compile (-O0 does not: 6e-8 off here),
    replicated as before; other platforms keep XLA's defaults."""
    seen, compile = [], jax.stages.Lowered.compile

    def spy(self, compiler_options=None):
        seen.append(compiler_options)
        return compile(self, compiler_options=compiler_options)

    monkeypatch.setattr(jax.stages.Lowered, "compile", spy)
    parallel = parallel()
    state = parallel.jit_init(_kernel_init)(jax.random.key(3))
    assert seen == [{"xla_backend_optimization_level": 1}]
    reference = np.asarray(jax.jit(_kernel_init)(jax.random.key(3))["kernel"])
    saved = parallel.to_saved(state)["kernel"]
    assert np.array_equal(np.asarray(saved), reference)
    assert len(state["kernel"].sharding.device_set) == parallel.num_devices == 2
    seen.clear()
    compile_init(_kernel_init, "tpu")(jax.random.key(3))
    assert seen == [None]


@pytest.fixture(scope="module")
def single_device():
    return _run(JitMesh(devices=jax.devices()[:1]))


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [JitMesh, Pmap], ids=["jit", "pmap"])
def test_data_parallel_matches_single_device(parallel, single_device):
    assert len(jax.devices()) == 8
    state, losses, _ = _run(parallel())
    ref_state, ref_losses, _ = single_device
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-5)
    chex.assert_trees_all_close(state.params, ref_state.params, rtol=2e-4, atol=2e-6)
    chex.assert_trees_all_close(state.batch_stats, ref_state.batch_stats, rtol=2e-4, atol=2e-6)
    assert int(state.step) == 3


@pytest.mark.slow
def test_grad_accumulation_equals_the_full_batch_without_batchnorm():
    full, _, _ = _run(JitMesh(), batch_norm=False)
    accumulated, _, _ = _run(JitMesh(), batch_norm=False, grad_accum_steps=4)
    chex.assert_trees_all_close(accumulated.params, full.params, rtol=2e-4, atol=2e-6)


@pytest.mark.slow
def test_grad_accumulation_rejects_a_non_divisor():
    with pytest.raises(ValueError, match="grad_accum_steps"):
        _run(JitMesh(devices=jax.devices()[:1]), grad_accum_steps=3)


@pytest.mark.slow
def test_ema_follows_its_definition():
    state, _, params = _run(JitMesh(), steps=3, ema_decay=0.5)
    expected = params[0]
    for p in params[1:]:
        expected = jax.tree.map(lambda e, q: 0.5 * e + 0.5 * q, expected, p)
    chex.assert_trees_all_close(state.ema_params, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_bfloat16_compute_float32_state():
    state, losses, _ = _run(JitMesh(), dtype=jnp.bfloat16)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))
    assert all(np.isfinite(losses))


@pytest.mark.slow
def test_nonfinite_batch_skips_the_update():
    batches = _batches(2)
    batches[1]["image"][0, 0, 0, 0] = np.nan
    state, _, params = _run(JitMesh(), steps=2, batches=batches)
    chex.assert_trees_all_equal(params[2], params[1])
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params[1]),
                                                        jax.tree.leaves(params[0]), strict=True))
    assert (int(state.step), int(state.skipped), int(state.first_skipped)) == (2, 1, 1)


def _poison_from(step_number):
    """make_train_step whose batches hold a NaN from `step_number` (0-based) on."""
    real = loop.make_train_step

    def make(*args, **kwargs):
        step = real(*args, **kwargs)

        def poisoned(state, batch, key):
            scale = jnp.where(state.step >= step_number, jnp.nan, 1.0)
            return step(state, {**batch, "image": batch["image"] * scale}, key)

        return poisoned

    return make


@pytest.mark.slow
def test_nonfinite_loss_stops_the_run_naming_the_step(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "make_train_step", _poison_from(4))
    with pytest.raises(loop.NonFiniteLossError, match="at step 5"):
        train_and_evaluate(tiny_unet_config(data_dir), str(tmp_path))
    assert checkpoint_steps(str(tmp_path)) == [3]
    state = saved_state(str(tmp_path), 3)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))


@pytest.mark.slow
def test_nonfinite_skip_mode_finishes_with_finite_params(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "make_train_step", _poison_from(10))
    config = tiny_unet_config(data_dir)
    config.train.nonfinite = "skip"
    final = train_and_evaluate(config, str(tmp_path))
    state = saved_state(str(tmp_path), 12)
    assert int(state["skipped"]) == 2 and int(state["first_skipped"]) == 10
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))
    assert np.isfinite(final["miou"])


@pytest.mark.slow
def test_pmap_training_run_matches_jit(data_dir, tmp_path):
    """The whole loop under pmap (replicated init, checkpoints of one copy, psum'd evaluation).
    SGD, because Adam's normalisation magnifies float32 rounding in near-zero gradients."""
    finals = {}
    for parallel in ("jit", "pmap"):
        config = tiny_unet_config(data_dir, steps=6)
        config.parallel = parallel
        config.optimizer.update(dict(name="sgd", learning_rate=0.05))
        finals[parallel] = train_and_evaluate(config, str(tmp_path / parallel))
    jit_final, pmap_final = finals["jit"], finals["pmap"]
    chex.assert_trees_all_close(saved_state(str(tmp_path / "pmap"), 6)["params"],
                                saved_state(str(tmp_path / "jit"), 6)["params"],
                                rtol=2e-4, atol=2e-6)
    assert abs(pmap_final["miou"] - jit_final["miou"]) < 1e-3
