"""FCN-32s/16s/8s: bilinear-initialised upsampling vs jax.image.resize, output sizes, the three
variants differing only in their fusion layers, backbones, errors."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models import get_model
from jaxvision.models.fcn import BilinearUpsample

TINY = dict(backbone_widths=(4, 8, 8, 16, 16), fc_width=16, fc_kernel=3, batch_norm=True)
FUSION = {"fcn32s": set(), "fcn16s": {"score_pool4", "upscore2"},
          "fcn8s": {"score_pool4", "upscore2", "score_pool3", "upscore_pool4"}}


def _init(model, x):
    return jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), x)


def _shapes(model, x):
    return jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), x)


@pytest.mark.parametrize("factor", [2, 4, 8, 32])
def test_bilinear_init_matches_image_resize_on_the_interior(factor):
    x = jax.random.normal(jax.random.key(1), (2, 5, 7, 3))
    up = BilinearUpsample(factor, 3)
    variables = up.init(jax.random.key(0), x)
    y = up.apply(variables, x)
    ref = jax.image.resize(x, (2, 5 * factor, 7 * factor, 3), "bilinear")
    chex.assert_shape(y, ref.shape)
    m = factor  # the border half-cell where resize clamps to the edge and the deconv fades out
    np.testing.assert_allclose(y[:, m:-m, m:-m], ref[:, m:-m, m:-m], atol=1e-5)
    # ... and the border does differ, so the comparison above is not vacuous
    assert np.abs(np.asarray(y[:, :1] - ref[:, :1])).max() > 1e-2


def test_upsampling_is_learnable():
    x = jax.random.normal(jax.random.key(1), (1, 4, 4, 2))
    up = BilinearUpsample(4, 2)
    variables = up.init(jax.random.key(0), x)
    grads = jax.grad(lambda v: jnp.sum(up.apply(v, x) ** 3))(variables)
    assert np.abs(np.asarray(grads["params"]["deconv"]["kernel"])).max() > 0
    assert "bias" not in variables["params"]["deconv"]


@pytest.mark.parametrize("name", ["fcn32s", "fcn16s", "fcn8s"])
@pytest.mark.parametrize("size", [(64, 64), (50, 70), (32, 96)])
def test_output_size_equals_input_size(name, size):
    model = get_model(name, num_classes=5, **TINY)
    x = jnp.zeros((2, *size, 3))
    variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), x)
    logits, features = jax.eval_shape(functools.partial(model.apply, train=False), variables, x)
    chex.assert_shape(logits, (2, *size, 5))
    stride = int(name[3:-1])
    padded = [-(-s // 32) * 32 for s in size]
    chex.assert_shape(features["fused"], (2, padded[0] // stride, padded[1] // stride, 5))


@pytest.mark.slow
def test_variants_differ_only_in_fusion_layers():
    x = jax.random.normal(jax.random.key(2), (1, 32, 32, 3))
    shapes = {n: jax.tree.map(jnp.shape, _shapes(get_model(n, num_classes=3, **TINY), x)["params"],
                              is_leaf=lambda a: isinstance(a, jax.ShapeDtypeStruct))
              for n in FUSION}
    for name, extra in FUSION.items():
        assert set(shapes[name]) - set(shapes["fcn32s"]) == extra
        assert set(shapes["fcn32s"]) <= set(shapes[name])
        for key in set(shapes["fcn32s"]) - {"upscore"}:
            assert shapes[name][key] == shapes["fcn32s"][key], key
    # the final upsampling is 2f x 2f for stride f
    for name, f in (("fcn32s", 32), ("fcn16s", 16), ("fcn8s", 8)):
        assert shapes[name]["upscore"]["deconv"]["kernel"] == (2 * f, 2 * f, 3, 3)
    # with the shared layers' weights copied, the shared computation is identical
    m32, m8 = get_model("fcn32s", num_classes=3, **TINY), get_model("fcn8s", num_classes=3, **TINY)
    v32, v8 = _init(m32, x), _init(m8, x)
    v8 = {"params": {**v8["params"], **{k: v32["params"][k] for k in v32["params"]
                                        if k != "upscore"}},
          "batch_stats": v32["batch_stats"]}
    f32 = jax.jit(functools.partial(m32.apply, train=False))(v32, x)[1]["score_fr"]
    f8 = jax.jit(functools.partial(m8.apply, train=False))(v8, x)[1]["score_fr"]
    np.testing.assert_array_equal(f32, f8)


@pytest.mark.slow
def test_fusion_layers_start_at_zero_so_fcn16s_starts_as_upsampled_score_fr():
    x = jax.random.normal(jax.random.key(3), (1, 32, 32, 3))
    model = get_model("fcn16s", num_classes=3, **TINY)
    variables = _init(model, x)
    params = dict(variables["params"])
    params["score_fr"] = jax.tree.map(lambda a: jnp.ones_like(a) * 0.1, params["score_fr"])
    _, feats = jax.jit(functools.partial(model.apply, train=False))(
        {**variables, "params": params}, x)
    up = BilinearUpsample(2, 3).apply(
        {"params": params["upscore2"]}, feats["score_fr"])
    np.testing.assert_allclose(feats["fused"], up, atol=1e-6)


def test_paper_sized_fcn32s_on_vgg16_has_the_papers_parameter_count():
    model = get_model("fcn32s", num_classes=21)
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), x)
    count = sum(np.prod(p.shape) for p in jax.tree.leaves(variables["params"]))
    # VGG16 convs 14,714,688 + fc6 7x7x512x4096 + fc7 + score_fr 4096x21 + upscore 64x64x21x21
    assert count == 14_714_688 + (25088 * 4096 + 4096) + (4096 * 4096 + 4096) + \
        (4096 * 21 + 21) + 64 * 64 * 21 * 21


def test_resnet_backbone_and_train_mode_dropout():
    model = get_model("fcn8s", num_classes=2, backbone="resnet18", fc_width=8, fc_kernel=1)
    x = jnp.zeros((1, 64, 64, 3))
    variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), x)
    assert "layer4_1" in variables["params"]["backbone"]
    logits, _ = jax.eval_shape(
        lambda v: model.apply(v, x, train=True, rngs={"dropout": jax.random.key(1)},
                              mutable=["batch_stats"])[0], variables)
    chex.assert_shape(logits, (1, 64, 64, 2))


@pytest.mark.parametrize("kwargs, match", [
    (dict(stride=4), "fcn stride: expected one of"),
    (dict(backbone="alexnet"), "backbone: expected"),
    (dict(backbone_widths=(4, 8)), "backbone_widths: expected 5"),
    (dict(fc_width=0), "fcn fc_width: expected a positive integer"),
])
def test_bad_configuration_raises_naming_the_field(kwargs, match):
    from jaxvision.models.fcn import FCN

    model = FCN(num_classes=2, **{**TINY, **kwargs})
    with pytest.raises(ValueError, match=match):
        model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)), train=False)


def test_bad_input_raises():
    model = get_model("fcn8s", num_classes=2, **TINY)
    with pytest.raises(ValueError, match="input channels: expected 3, got 1"):
        model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 1)), train=False)
    with pytest.raises(ValueError, match="height/width: expected at least 32"):
        model.init(jax.random.key(0), jnp.zeros((1, 16, 64, 3)), train=False)
