"""AlexNet: parameter count and logits against torchvision, feature maps, errors."""

import chex
import jax
import jax.numpy as jnp
import pytest

from jaxvision.models import get_model
from tests.weights.reference import compare_logits, jax_param_count, torch_param_count


def test_param_count_equals_torchvision():
    assert jax_param_count("alexnet") == torch_param_count("alexnet") == 61_100_840


@pytest.mark.parametrize("size", [224, 100])  # 100 px: 2x2 pool5 adaptive-pooled to 6x6
def test_logits_match_torchvision(size):
    assert compare_logits("alexnet", size) < 1e-4


def test_feature_maps():
    model = get_model("alexnet", num_classes=None)
    (logits, features), _ = jax.eval_shape(
        lambda: model.init_with_output(jax.random.key(0), jnp.zeros((2, 224, 224, 3)),
                                       train=False))
    assert logits is None
    chex.assert_shape(features["pool1"], (2, 27, 27, 64))
    chex.assert_shape(features["pool2"], (2, 13, 13, 192))
    chex.assert_shape(features["pool5"], (2, 6, 6, 256))


@pytest.mark.parametrize("shape,field", [((1, 224, 224), "rank"), ((1, 40, 40, 3), "height")])
def test_bad_input_raises_value_error(shape, field):
    model = get_model("alexnet")
    with pytest.raises(ValueError, match=field):
        jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))
