"""DeconvNet: unpooling puts values at the encoder's argmax positions, output size equals input
size, the paper's parameter count, errors."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models import get_model

TINY = dict(widths=(4, 8, 8, 16, 16), fc_width=16)


def _window_argmax_mask(x):
    """Float64 numpy reference: True at the first maximum of every 2x2/2 window of x [B,H,W,C]
    (windows that do not fit, at an odd border, have none)."""
    x = np.asarray(x, np.float64)
    b, h, w, c = x.shape
    mask = np.zeros(x.shape, bool)
    for i in range(h // 2):
        for j in range(w // 2):
            win = x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2].reshape(b, 4, c)
            k = win.argmax(1)  # first maximum, row-major in the window
            for bb in range(b):
                for cc in range(c):
                    mask[bb, 2 * i + k[bb, cc] // 2, 2 * j + k[bb, cc] % 2, cc] = True
    return mask


@pytest.mark.slow
@pytest.mark.parametrize("size", [(32, 32), (36, 42)])
def test_unpooling_places_values_at_the_encoders_argmax(size):
    model = get_model("deconvnet", num_classes=3, **TINY)
    x = jax.random.normal(jax.random.key(0), (2, *size, 3))
    variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(1), x)
    _, f = jax.jit(functools.partial(model.apply, train=False))(variables, x)
    for k in (1, 2, 3):
        encoder = np.asarray(f[f"conv{k}"])
        mask = _window_argmax_mask(encoder)
        unpooled = np.asarray(f[f"unpool{k}"])
        chex.assert_shape(unpooled, encoder.shape)
        # zero everywhere except at the argmax positions ...
        assert not np.any(unpooled[~mask])
        # ... where it holds the decoder map being unpooled, window by window
        source = np.asarray(f[f"deconv{k + 1}"])
        h, w = source.shape[1:3]
        blocks = unpooled[:, :2 * h, :2 * w].reshape(2, h, 2, w, 2, -1).sum((2, 4))
        np.testing.assert_allclose(blocks, source, rtol=1e-6, atol=1e-6)
        assert np.count_nonzero(source) > 0.2 * source.size  # not a vacuous all-zero check


@pytest.mark.parametrize("size", [(64, 64), (50, 70), (32, 96)])
def test_output_size_equals_input_size(size):
    model = get_model("deconvnet", num_classes=4, **TINY)
    x = jnp.zeros((2, *size, 3))
    variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), x)
    logits, f = jax.eval_shape(functools.partial(model.apply, train=False), variables, x)
    chex.assert_shape(logits, (2, *size, 4))
    chex.assert_shape(f["fc7"], (2, 1, 1, 16))  # fc6 spans the whole pool5 map by default


def test_paper_sized_network_has_252m_parameters():
    model = get_model("deconvnet", num_classes=21)
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), x)
    count = sum(np.prod(p.shape) for p in jax.tree.leaves(variables["params"]))
    assert 251e6 < count < 253e6  # Noh et al.: 252M
    assert variables["params"]["fc6"]["kernel"].shape == (7, 7, 512, 4096)
    assert variables["params"]["deconv_fc6"]["kernel"].shape == (7, 7, 4096, 512)


def test_fc_kernel_too_large_raises():
    model = get_model("deconvnet", num_classes=2, fc_kernel=3, **TINY)
    with pytest.raises(ValueError, match=r"deconvnet fc_kernel: expected 1..2 .* got 3"):
        jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0),
                       jnp.zeros((1, 64, 64, 3)))
