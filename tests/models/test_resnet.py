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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_cifar_stem_matches_torchvision_with_3x3_stem_in_train_mode():
    """stem='cifar' == torchvision resnet18 with conv1 a 3x3/1 conv and no max pool (He et al.
    Sec. 4.2): the known 11,173,962 parameters at 10 classes, and train-mode logits, input
    gradients and updated BN means equal torch's."""
    import torch
    import torchvision

    from jaxvision.weights import from_torchvision

    torch.manual_seed(0)
    tmodel = torchvision.models.resnet18(num_classes=10)
    tmodel.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    tmodel.maxpool = torch.nn.Identity()
    assert sum(p.numel() for p in tmodel.parameters()) == 11_173_962
    state = {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}
    stem = state.pop("conv1.weight")
    variables = from_torchvision("resnet18", {**state, "conv1.weight": np.zeros((64, 3, 7, 7))})
    variables["params"]["conv1"]["kernel"] = stem.transpose(2, 3, 1, 0)

    model = get_model("resnet18", num_classes=10, stem="cifar")
    assert jax_param_count_of(model) == 11_173_962
    x = np.random.default_rng(0).standard_normal((4, 32, 32, 3)).astype(np.float32)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    tmodel.train()
    expected = tmodel(xt)
    expected.square().sum().backward()

    def loss(x):
        (logits, features), updates = model.apply(variables, x, train=True,
                                                  mutable=["batch_stats"])
        return jnp.square(logits).sum(), (logits, features, updates)

    (_, (logits, features, updates)), grad = jax.value_and_grad(loss, has_aux=True)(x)
    chex.assert_shape(features["stage5"], (4, 4, 4, 512))
    np.testing.assert_allclose(logits, expected.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-3,
                               atol=1e-5)
    # running means agree; running variances do not: torch updates with the unbiased variance
    np.testing.assert_allclose(updates["batch_stats"]["layer4_1"]["bn2"]["mean"],
                               tmodel.layer4[1].bn2.running_mean.numpy(), rtol=1e-4, atol=1e-6)


def jax_param_count_of(model) -> int:
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)),
                                               train=False))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))


def test_unknown_stem_names_the_field():
    model = get_model("resnet18", stem="tiny")
    with pytest.raises(ValueError, match="stem: expected one of"):
        jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)),
                                          train=False))
