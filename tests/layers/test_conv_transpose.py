"""layers.ConvTranspose: the kernel == stride matmul form against flax's nn.ConvTranspose
(`lax.conv_transpose`) on the same parameters: outputs, input and parameter gradients, the
parameter tree, and the fallback for every case the matmul form does not cover."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.layers import ConvTranspose


def _loss(module, variables, x, r):
    return jnp.sum(module.apply(variables, x) * r)


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=(2, 2), strides=(2, 2)),                           # U-Net up-conv, 'SAME'
    dict(kernel_size=(2, 2), strides=(2, 2), padding="VALID", use_bias=False),
    dict(kernel_size=(3, 3), strides=3),
    dict(kernel_size=(2, 3), strides=(2, 3), padding="VALID"),
    # not covered: the fallback must equal flax too
    dict(kernel_size=(4, 4), strides=(2, 2), padding="VALID"),        # FCN-style overlap
    dict(kernel_size=(2, 2), strides=(2, 2), transpose_kernel=True),
    dict(kernel_size=(2, 2), strides=(2, 2), padding=((1, 0), (0, 1))),
])
def test_matches_flax_conv_transpose(kwargs):
    ours, ref = ConvTranspose(6, **kwargs), nn.ConvTranspose(6, **kwargs)
    x = jax.random.normal(jax.random.key(0), (2, 5, 4, 3))
    variables = ref.init(jax.random.key(1), x)
    if "bias" in variables["params"]:  # a nonzero bias, so a dropped bias would show
        variables = {"params": {**variables["params"],
                                "bias": jnp.arange(6.0) / 7}}
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(1), x)) == \
        jax.tree.map(jnp.shape, variables)
    y, y_ref = ours.apply(variables, x), ref.apply(variables, x)
    assert y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    r = jax.random.normal(jax.random.key(2), y.shape)
    grads = jax.grad(_loss, argnums=(1, 2))(ours, variables, x, r)
    grads_ref = jax.grad(_loss, argnums=(1, 2))(ref, variables, x, r)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4),
                 grads, grads_ref)


def test_uses_a_matmul_not_a_convolution_when_kernel_equals_stride():
    x = jnp.ones((1, 4, 4, 3))
    for module, convs in ((ConvTranspose(5, (2, 2), strides=(2, 2)), 0),
                          (ConvTranspose(5, (4, 4), strides=(2, 2)), 1)):
        variables = module.init(jax.random.key(0), x)
        text = str(jax.make_jaxpr(module.apply)(variables, x))
        assert text.count("conv_general_dilated") == convs, module
