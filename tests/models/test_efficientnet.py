"""EfficientNet B0-B7: compound scaling, parameter counts (torchvision and the lecture table),
logits against torchvision at each variant's native resolution, stochastic depth, errors."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.layers import make_divisible, stochastic_depth
from jaxvision.models import get_model
from jaxvision.models.efficientnet import RESOLUTIONS, scaled_stages
from tests.weights.reference import (
    compare_logits,
    init_variables,
    jax_param_count,
    torch_param_count,
)

NAMES = [f"efficientnet_b{i}" for i in range(8)]
SLOW = {f"efficientnet_b{i}" for i in (4, 5, 6, 7)}
# The lecture's EfficientNet table: resolution and parameters (millions, as printed).
LECTURE = {"efficientnet_b0": (224, "5.3M"), "efficientnet_b1": (240, "7.8M"),
           "efficientnet_b2": (260, "9.2M"), "efficientnet_b3": (300, "12M"),
           "efficientnet_b4": (380, "19M"), "efficientnet_b5": (456, "30M"),
           "efficientnet_b6": (528, "43M"), "efficientnet_b7": (600, "66M")}


def _lecture_rounding(n: int, printed: str) -> str:
    """Rounds `n` like the table: one decimal below 10M, whole millions above."""
    m = n / 1e6
    return f"{m:.1f}M" if "." in printed else f"{round(m)}M"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_param_count_equals_torchvision_and_lecture(name):
    n = jax_param_count(name, size=64)
    assert n == torch_param_count(name)
    resolution, printed = LECTURE[name]
    if name == "efficientnet_b2":
        # torchvision's B2 has 9,109,994 parameters (9.1M, as its docs say); the lecture copies
        # the paper's 9.2M. Agree to 1.5% there, to the printed rounding everywhere else.
        assert abs(n / 9.2e6 - 1) < 0.015
    else:
        assert _lecture_rounding(n, printed) == printed
    assert RESOLUTIONS[name] == get_model(name).native_resolution == resolution


def test_known_param_counts():
    assert jax_param_count("efficientnet_b0", size=64) == 5_288_548
    assert jax_param_count("efficientnet_b7", size=64) == 66_347_960


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in NAMES])
def test_logits_match_torchvision_at_native_resolution(name):
    assert compare_logits(name, RESOLUTIONS[name]) < 1e-4


def test_compound_scaling_rules():
    assert make_divisible(32 * 1.1) == 32 and make_divisible(16 * 1.4) == 24
    assert make_divisible(12.0) == 16  # rounding must not lose more than 10%
    b0 = scaled_stages(1.0, 1.0)
    assert [s.repeats for s in b0] == [1, 2, 2, 3, 3, 4, 1]
    b7 = scaled_stages(2.0, 3.1)
    assert [s.repeats for s in b7] == [4, 7, 7, 10, 10, 13, 4]  # ceil(r * 3.1)
    assert [s.out_channels for s in b7] == [32, 48, 80, 160, 224, 384, 640]
    assert all(s.out_channels % 8 == 0 for s in scaled_stages(1.1, 1.2))


def test_feature_maps():
    model = get_model("efficientnet_b0", num_classes=None)
    (logits, features), _ = jax.eval_shape(
        lambda: model.init_with_output(jax.random.key(0), jnp.zeros((1, 224, 224, 3)),
                                       train=False))
    assert logits is None
    chex.assert_shape(features["stem"], (1, 112, 112, 32))
    chex.assert_shape(features["stage1"], (1, 112, 112, 16))
    chex.assert_shape(features["stage2"], (1, 56, 56, 24))
    chex.assert_shape(features["stage3"], (1, 28, 28, 40))
    chex.assert_shape(features["stage4"], (1, 14, 14, 112))
    chex.assert_shape(features["stage5"], (1, 7, 7, 1280))
    chex.assert_shape(features["block7"], (1, 7, 7, 320))


def test_batchnorm_settings_follow_torchvision():
    b0, b5 = get_model("efficientnet_b0"), get_model("efficientnet_b5")
    assert (b0.bn_epsilon, b0.bn_momentum) == (1e-5, 0.9)  # torch BatchNorm2d defaults
    assert (b5.bn_epsilon, b5.bn_momentum) == (1e-3, 0.99)  # eps 1e-3, torch momentum 0.01
    assert (b0.dropout_rate, b5.dropout_rate) == (0.2, 0.4)


def test_stochastic_depth_drops_whole_samples_and_keeps_the_mean():
    x = jnp.ones((4000, 2, 2, 3))
    y = stochastic_depth(x, 0.25, deterministic=False, rng=jax.random.key(0))
    per_sample = np.asarray(y).reshape(4000, -1)
    assert np.all((per_sample == 0).all(1) | np.isclose(per_sample, 1 / 0.75).all(1))
    assert abs(per_sample.mean() - 1.0) < 0.05
    np.testing.assert_array_equal(stochastic_depth(x, 0.25, deterministic=True), x)


@pytest.mark.slow
def test_train_mode_uses_dropout_rng():
    model, variables = init_variables("efficientnet_b0", num_classes=3, size=32)
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
    train = jax.jit(lambda v, x, key: model.apply(v, x, train=True, mutable=["batch_stats"],
                                                  rngs={"dropout": key}))
    (a, _), updates = train(variables, x, jax.random.key(1))
    (b, _), _ = train(variables, x, jax.random.key(2))
    assert not np.allclose(a, b)
    assert not np.allclose(updates["batch_stats"]["stem"]["bn"]["mean"],
                           variables["batch_stats"]["stem"]["bn"]["mean"])


def test_bad_input_raises_value_error():
    model = get_model("efficientnet_b0")
    with pytest.raises(ValueError, match="channels"):
        jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 1)),
                                          train=False))


@pytest.mark.slow
@pytest.mark.parametrize("k,s,size", [(3, 1, 9), (3, 2, 10), (5, 2, 11), (5, 1, 7)])
def test_shifted_depthwise_conv_equals_grouped_conv(k, s, size):
    from jaxvision.layers import DepthwiseConv

    x = jax.random.normal(jax.random.key(0), (2, size, size, 6))
    shifted, grouped = DepthwiseConv(k, s, impl="shifted"), DepthwiseConv(k, s, impl="conv")
    params = shifted.init(jax.random.key(1), x)
    np.testing.assert_allclose(shifted.apply(params, x), grouped.apply(params, x), rtol=1e-5,
                               atol=1e-5)
    grads = [jax.grad(lambda p, m=m: (m.apply(p, x) ** 2).sum())(params)
             for m in (shifted, grouped)]
    chex.assert_trees_all_close(grads[0], grads[1], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="impl"):
        DepthwiseConv(k, s, impl="fft").apply(params, x)


@pytest.mark.slow
def test_train_mode_with_b5_batchnorm_matches_torchvision(monkeypatch):
    """A narrow, shallow EfficientNet built by the B5 factory (so with B5's BatchNorm: eps 1e-3,
    flax momentum 0.99 = torch momentum 0.01) against torchvision's EfficientNet with the norm
    layer torchvision's B5 uses, in train mode: logits, parameter and input gradients, and the
    updated running statistics of every BatchNorm."""
    from functools import partial

    import torch
    import torchvision
    from torchvision.models.efficientnet import EfficientNet as TorchEfficientNet
    from torchvision.models.efficientnet import _efficientnet_conf

    import jaxvision.weights.torchvision as tv_weights
    from tests.models.train_mode import (
        assert_trees_close,
        flax_running_stats,
        record_bn_counts,
    )

    with torch.device("meta"):  # B5's norm layer as torchvision builds it, without allocating
        tv_b5_bn = torchvision.models.efficientnet_b5().features[0][1]
    assert (tv_b5_bn.eps, tv_b5_bn.momentum) == (1e-3, 0.01)
    width, depth = 0.25, 0.1  # one block per stage; block1_0 is residual
    torch.manual_seed(0)
    setting, last_channel = _efficientnet_conf("efficientnet_b0", width_mult=width,
                                               depth_mult=depth)
    tmodel = TorchEfficientNet(setting, dropout=0.0, stochastic_depth_prob=0.0, num_classes=5,
                               norm_layer=partial(torch.nn.BatchNorm2d, eps=tv_b5_bn.eps,
                                                  momentum=tv_b5_bn.momentum),
                               last_channel=last_channel)
    with torch.no_grad():  # running statistics away from (0, 1) so the momentum shows
        for m in tmodel.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.6, 1.2)
                m.bias.uniform_(-0.2, 0.2)
    before = {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}

    model = get_model("efficientnet_b5", width_mult=width, depth_mult=depth, num_classes=5,
                      dropout_rate=0.0, stochastic_depth_rate=0.0)
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)),
                                                 train=False))
    monkeypatch.setattr(tv_weights, "abstract_variables", lambda name, num_classes: abstract)
    variables = tv_weights.from_torchvision("efficientnet_b5", before)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 32, 3)).astype(np.float32)
    probe = rng.standard_normal((4, 5)).astype(np.float32)
    counts = record_bn_counts(tmodel)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    tmodel.train()
    t_logits = tmodel(xt)
    (t_logits * torch.from_numpy(probe)).sum().backward()

    def loss(params, x):
        (logits, _), updates = model.apply({**variables, "params": params}, x, train=True,
                                           mutable=["batch_stats"])
        return jnp.sum(logits * probe), (logits, updates)

    (_, (logits, updates)), (g_params, g_x) = jax.jit(jax.value_and_grad(
        loss, argnums=(0, 1), has_aux=True))(variables["params"], jnp.asarray(x))

    assert_trees_close(logits, t_logits.detach().numpy(), 1e-4, "logits")
    assert_trees_close(g_x, xt.grad.numpy().transpose(0, 2, 3, 1), 1e-3, "input grad")
    t_grads = {**before, **{k: p.grad.numpy() for k, p in tmodel.named_parameters()}}
    assert_trees_close(g_params, tv_weights.from_torchvision("efficientnet_b5", t_grads)["params"],
                       1e-3, "param grad", floor=1e-2)
    expected = tv_weights.from_torchvision(
        "efficientnet_b5", {**before, **flax_running_stats(tmodel, before, counts)})
    assert_trees_close(updates["batch_stats"], expected["batch_stats"], 1e-4, "batch_stats")


def test_stochastic_depth_rate_rises_linearly_over_the_blocks():
    """Block i of n (counted over every MBConv, 0-based) drops its residual branch with rate
    0.2 * i / n (torchvision and the TF reference's drop_connect_rate * idx / len(blocks)); a
    kept sample is scaled by 1 / (1 - rate), float64 reference of the rule."""
    from jaxvision.layers import MBConv

    rates = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, MBConv) and context.method_name == "__call__":
            rates.append(context.module.stochastic_depth_rate)
        return next_fun(*args, **kwargs)

    model = get_model("efficientnet_b0", num_classes=10)
    with nn.intercept_methods(record):
        jax.eval_shape(lambda: model.init({"params": jax.random.key(0)},
                                          jnp.zeros((1, 32, 32, 3)), train=False))
    n = 16
    np.testing.assert_allclose(rates, 0.2 * np.arange(n, dtype=np.float64) / n, rtol=1e-12)
    x = np.random.default_rng(0).normal(size=(64, 3, 3, 2))
    key, rate = jax.random.key(5), rates[-1]
    keep = np.asarray(jax.random.bernoulli(key, 1 - rate, (64, 1, 1, 1)))
    assert 0 < keep.sum() < 64
    want = np.where(keep, x / (1 - rate), 0.0)
    got = stochastic_depth(jnp.asarray(x, jnp.float32), rate, deterministic=False, rng=key)
    np.testing.assert_allclose(got, want, rtol=1e-6)
