"""ResNet: parameter counts and logits against torchvision, feature maps, train mode, errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models import get_model
from tests.weights.reference import (
    compare_logits,
    init_variables,
    jax_param_count,
    torch_param_count,
)

NAMES = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


@pytest.mark.parametrize("name", NAMES)
def test_param_count_equals_torchvision(name):
    assert jax_param_count(name) == torch_param_count(name)


def test_param_count_resnet50_known_value():
    assert jax_param_count("resnet50") == 25_557_032


@pytest.mark.parametrize("name", [
    "resnet18", "resnet34", "resnet50", "resnet101",
    pytest.param("resnet152", marks=pytest.mark.slow)])
def test_logits_match_torchvision(name):
    assert compare_logits(name, 224) < 1e-4


@pytest.mark.parametrize("name,width", [("resnet18", 64), ("resnet50", 256)])
def test_feature_maps(name, width):
    model = get_model(name, num_classes=None)
    x = jnp.zeros((2, 64, 96, 3))
    (logits, features), _ = jax.eval_shape(
        lambda: model.init_with_output(jax.random.key(0), x, train=False))
    assert logits is None
    chex.assert_shape(features["stem"], (2, 32, 48, 64))
    chex.assert_shape(features["stage1"], (2, 32, 48, 64))
    for k in range(2, 6):
        s = 2**k
        chex.assert_shape(features[f"stage{k}"], (2, 64 // s, 96 // s, width * 2 ** (k - 2)))
    chex.assert_shape(features["pooled"], (2, width * 8))


def test_train_mode_updates_batch_stats_and_bfloat16():
    model, variables = init_variables("resnet18", num_classes=10)
    x = jax.random.normal(jax.random.key(2), (2, 64, 64, 3))
    (logits, _), updates = jax.jit(
        lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(variables, x)
    chex.assert_shape(logits, (2, 10))
    before = variables["batch_stats"]["bn1"]["mean"]
    assert not np.allclose(updates["batch_stats"]["bn1"]["mean"], before)

    bf16 = get_model("resnet18", num_classes=10, dtype=jnp.bfloat16)
    v16 = jax.jit(lambda x: bf16.init(jax.random.key(0), x, train=False))(x)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(v16["params"]))
    logits16, features16 = jax.jit(lambda v, x: bf16.apply(v, x, train=False))(v16, x)
    assert logits16.dtype == jnp.float32 and features16["stage5"].dtype == jnp.bfloat16
    assert np.all(np.isfinite(np.asarray(logits16)))


def test_bn_axis_name_is_used_under_pmap_style_vmap():
    model = get_model("resnet18", num_classes=4, axis_name="batch")
    x = jax.random.normal(jax.random.key(0), (2, 1, 32, 32, 3))
    variables = jax.jit(jax.vmap(lambda xi: model.init(jax.random.key(0), xi, train=False),
                         axis_name="batch"))(x)
    _, updates = jax.jit(jax.vmap(
        lambda v, xi: model.apply(v, xi, train=True, mutable=["batch_stats"]),
        axis_name="batch"))(variables, x)
    mean = updates["batch_stats"]["bn1"]["mean"]
    np.testing.assert_allclose(mean[0], mean[1], rtol=1e-6)  # averaged across the axis


@pytest.mark.parametrize("shape,field", [((64, 64, 3), "rank"), ((1, 64, 64, 1), "channels")])
def test_bad_input_raises_value_error(shape, field):
    model = get_model("resnet18")
    with pytest.raises(ValueError, match=field):
        jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))
