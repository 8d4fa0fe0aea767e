"""U-Net: the paper's 572 -> 388 geometry, parameter count from the architecture, SAME shapes,
one compile per shape, clear errors for bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models import get_model
from jaxvision.ops.crop import center_crop


def _paper_param_count(in_ch, num_classes, depth, width):
    """Weights + biases of the paper's network, counted layer by layer from its description."""
    conv = lambda k, cin, cout: k * k * cin * cout + cout
    total, cin = 0, in_ch
    for level in range(depth + 1):  # contracting path and bottleneck: two 3x3 convs per level
        cout = width * 2**level
        total += conv(3, cin, cout) + conv(3, cout, cout)
        cin = cout
    for level in reversed(range(depth)):  # 2x2 up-conv halves channels, concat, two 3x3 convs
        cout = width * 2**level
        total += conv(2, cin, cout) + conv(3, 2 * cout, cout) + conv(3, cout, cout)
        cin = cout
    return total + conv(1, cin, num_classes)


def test_valid_padding_maps_572_to_388_like_the_paper():
    model = get_model("unet", num_classes=2)
    x = jax.ShapeDtypeStruct((1, 572, 572, 1), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    logits, features = jax.eval_shape(model.apply, variables, x)
    chex.assert_shape(logits, (1, 388, 388, 2))
    # the paper's figure 1: 568 -> 280 -> 136 -> 64 -> 28 at the end of each contracting level
    assert [features[f"stage{i}"].shape[1] for i in range(1, 5)] == [568, 280, 136, 64]
    assert features["bottleneck"].shape[1:] == (28, 28, 1024)
    count = sum(np.prod(p.shape) for p in jax.tree.leaves(variables["params"]))
    assert count == _paper_param_count(1, 2, 4, 64) == 31_030_658


def test_valid_padding_numbers_on_a_narrow_network():
    model = get_model("unet", num_classes=3, depth=2, base_width=4)
    x = jax.random.normal(jax.random.key(1), (2, 92, 92, 3))
    variables = model.init(jax.random.key(0), x)
    logits, _ = model.apply(variables, x)
    chex.assert_shape(logits, (2, 92 - 40, 92 - 40, 3))
    chex.assert_tree_all_finite(logits)


@pytest.mark.parametrize("upsampling", ["transpose", "bilinear"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_same_padding_keeps_size(upsampling, batch_norm):
    model = get_model("unet", num_classes=4, depth=3, base_width=4, padding="SAME",
                      batch_norm=batch_norm, upsampling=upsampling)
    x = jnp.ones((2, 32, 48, 3))
    variables = model.init(jax.random.key(0), x)
    logits, _ = model.apply(variables, x, train=False)
    chex.assert_shape(logits, (2, 32, 48, 4))
    assert ("batch_stats" in variables) == batch_norm


def test_compiles_once_per_shape():
    model = get_model("unet", num_classes=2, depth=2, base_width=4, padding="SAME")
    x = jnp.ones((1, 16, 16, 3))
    variables = model.init(jax.random.key(0), x)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def forward(v, images):
        return model.apply(v, images)[0]

    for i in range(3):
        forward(variables, x + i)


def test_bfloat16_compute_keeps_float32_params():
    model = get_model("unet", num_classes=2, depth=2, base_width=4, padding="SAME",
                      dtype=jnp.bfloat16)
    x = jnp.ones((1, 16, 16, 3))
    variables = model.init(jax.random.key(0), x)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
    assert model.apply(variables, x)[0].dtype == jnp.bfloat16


def test_wrong_rank_and_size_are_named():
    model = get_model("unet", num_classes=2, depth=2, base_width=4, padding="SAME")
    with pytest.raises(ValueError, match="rank 4"):
        model.init(jax.random.key(0), jnp.ones((16, 16, 3)))
    with pytest.raises(ValueError, match="multiple of 4"):
        model.init(jax.random.key(0), jnp.ones((1, 18, 18, 3)))
    with pytest.raises(ValueError, match="padding"):
        get_model("unet", padding="same").init(jax.random.key(0), jnp.ones((1, 16, 16, 3)))


def test_center_crop_takes_the_middle():
    x = jnp.arange(6 * 8).reshape(1, 6, 8, 1)
    np.testing.assert_array_equal(center_crop(x, 2, 4)[0, ..., 0],
                                  np.arange(48).reshape(6, 8)[2:4, 2:6])


def test_registry_names_and_errors():
    from jaxvision.models import list_models

    assert "unet" in list_models()
    design = ("alexnet vgg11 vgg13 vgg16 vgg19 vgg16_bn resnet18 resnet34 resnet50 resnet101 "
              "resnet152 fcn32s fcn16s fcn8s deconvnet unet rcnn fast_rcnn faster_rcnn "
              "mask_rcnn ssd300 yolov3").split() + [f"efficientnet_b{i}" for i in range(8)]
    assert set(design) <= set(list_models(available_only=False))
    with pytest.raises(ValueError, match="unet"):
        get_model("unett")
