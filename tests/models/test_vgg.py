"""VGG (plain and BN): parameter counts and logits against torchvision, FCN/DeconvNet maps."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.layers import adaptive_avg_pool
from jaxvision.models import get_model
from tests.weights.reference import compare_logits, jax_param_count, torch_param_count

NAMES = [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
SLOW = {"vgg19", "vgg19_bn"}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_param_count_equals_torchvision(name):
    assert jax_param_count(name) == torch_param_count(name)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in NAMES])
def test_logits_match_torchvision(name):
    assert compare_logits(name, 224) < 1e-4


@pytest.mark.slow
def test_logits_match_torchvision_non_standard_size():
    # 96 px -> 3x3 pool5 map, adaptive-pooled to 7x7 with overlapping bins as in torch.
    assert compare_logits("vgg11", 96) < 1e-4


def test_adaptive_avg_pool_matches_torch():
    import torch

    x = np.random.default_rng(0).standard_normal((2, 3, 11, 5)).astype(np.float32)
    for out in [(7, 7), (6, 6), (3, 2), (11, 5)]:
        expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), out).numpy()
        got = adaptive_avg_pool(jnp.asarray(x.transpose(0, 2, 3, 1)), out)
        np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), expected, rtol=1e-6,
                                   atol=1e-6)


def test_feature_maps_for_fcn():
    model = get_model("vgg16", num_classes=None)
    (logits, features), _ = jax.eval_shape(
        lambda: model.init_with_output(jax.random.key(0), jnp.zeros((1, 224, 224, 3)),
                                       train=False))
    assert logits is None
    for k, c in zip(range(1, 6), (64, 128, 256, 512, 512), strict=True):
        chex.assert_shape(features[f"pool{k}"], (1, 224 // 2**k, 224 // 2**k, c))
        chex.assert_shape(features[f"conv{k}"], (1, 224 // 2 ** (k - 1), 224 // 2 ** (k - 1), c))


@pytest.mark.slow
def test_dropout_only_in_train_mode():
    """Eval mode equals torchvision's eval-mode VGG-11-BN with the same weights (no dropout, BN
    on running statistics); train mode draws a different dropout mask per key."""
    import torch
    import torchvision

    from jaxvision.weights import from_torchvision

    torch.manual_seed(0)
    tmodel = torchvision.models.vgg11_bn(num_classes=5)
    with torch.no_grad():
        for m in tmodel.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    tmodel.eval()
    variables = from_torchvision("vgg11_bn", tmodel.state_dict())
    model = get_model("vgg11_bn", num_classes=5)
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
    evaluate = jax.jit(lambda v, x: model.apply(v, x, train=False)[0])
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(np.array(x).transpose(0, 3, 1, 2))).numpy()
    got = np.asarray(evaluate(variables, x))
    assert np.max(np.abs(got - expected)) <= 1e-4 * np.max(np.abs(expected))
    train = jax.jit(lambda v, x, key: model.apply(v, x, train=True, mutable=["batch_stats"],
                                                  rngs={"dropout": key})[0][0])
    outs = [train(variables, x, jax.random.key(i)) for i in (1, 2)]
    assert not np.allclose(outs[0], outs[1])
    with pytest.raises(Exception, match="dropout"):  # no rng given in train mode
        model.apply(variables, x, train=True, mutable=["batch_stats"])


def test_bad_input_raises_value_error():
    model = get_model("vgg11")
    with pytest.raises(ValueError, match="channels"):
        jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 4)),
                                          train=False))
