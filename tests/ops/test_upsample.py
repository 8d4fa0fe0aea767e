import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jaxvision.ops import max_pool_with_argmax, max_unpool
from jaxvision.ops.upsample import (
    bilinear_init,
    bilinear_kernel,
    block_upsample,
    nearest_upsample,
)


def test_lecture_example():
    x = jnp.array([[1.0, 3.0], [5.0, 2.0]]).reshape(1, 2, 2, 1)
    y, s = max_pool_with_argmax(x, 2)
    assert float(y[0, 0, 0, 0]) == 5 and int(s[0, 0, 0, 0]) == 2  # row 1, column 0
    np.testing.assert_array_equal(np.asarray(max_unpool(y, s, (2, 2)))[0, :, :, 0],
                                  [[0, 0], [5, 0]])


@pytest.mark.parametrize("window,stride,shape", [(2, 2, (2, 6, 8, 3)), (3, 2, (1, 7, 9, 2)),
                                                  ((2, 3), (1, 2), (1, 5, 7, 2))])
def test_max_pool_and_unpool_match_torch(window, stride, shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    x[0, 0, :2, 0] = 1.0  # a tie: first index wins
    y, s = max_pool_with_argmax(x, window, stride)
    xt = torch.tensor(x.transpose(0, 3, 1, 2))
    yt, st = F.max_pool2d(xt, window, stride, return_indices=True)
    np.testing.assert_array_equal(np.asarray(y), yt.numpy().transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(np.asarray(s), st.numpy().transpose(0, 2, 3, 1))
    if window == stride:
        u = max_unpool(y, s, shape)
        ut = F.max_unpool2d(yt, st, window, stride, output_size=shape[1:3])
        np.testing.assert_array_equal(np.asarray(u), ut.numpy().transpose(0, 2, 3, 1))


def test_max_pool_grad_goes_to_switches():
    x = np.random.default_rng(1).normal(size=(1, 4, 4, 2)).astype(np.float32)
    g = jax.grad(lambda v: jnp.sum(max_pool_with_argmax(v, 2)[0]))(jnp.asarray(x))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    F.max_pool2d(xt, 2).sum().backward()
    np.testing.assert_array_equal(np.asarray(g), xt.grad.numpy().transpose(0, 2, 3, 1))


def test_nearest_upsample():
    x = np.arange(6.0).reshape(1, 2, 3, 1)
    got = np.asarray(nearest_upsample(x, 2))
    want = np.array([[x[0, i // 2, j // 2, 0] for j in range(6)] for i in range(4)])
    np.testing.assert_array_equal(got[0, :, :, 0], want)


@pytest.mark.parametrize("k", [4, 3, 16])
def test_bilinear_kernel_definition_and_upsampling(k):
    w = np.asarray(bilinear_kernel(k, 2))
    s = (k + 1) // 2
    c = s - 1 if k % 2 else s - 0.5
    for i in range(k):
        for j in range(k):
            want = (1 - abs(i - c) / s) * (1 - abs(j - c) / s)
            np.testing.assert_allclose(w[i, j], np.eye(2) * want, rtol=1e-6)
    if k == 4:  # stride-2 transposed conv with it doubles a linear ramp linearly
        conv = nn.ConvTranspose(2, (4, 4), (2, 2), padding=((2, 2), (2, 2)), use_bias=False,
                                kernel_init=bilinear_init, transpose_kernel=True)
        x = jnp.tile(jnp.arange(6.0)[None, :, None, None], (1, 1, 6, 2)).transpose(0, 2, 1, 3)
        out = conv.apply(conv.init(jax.random.key(0), x), x)
        assert out.shape == (1, 12, 12, 2)
        row = np.asarray(out[0, 5, 2:10, 0])
        np.testing.assert_allclose(np.diff(row), 0.5, atol=1e-6)


def test_upsample_errors():
    with pytest.raises(ValueError, match="switches"):
        max_unpool(jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 2), jnp.int32), (4, 4))
    with pytest.raises(ValueError, match="shape"):
        bilinear_init(None, (4, 4, 2, 3))


@pytest.mark.parametrize("kh,kw", [(2, 2), (2, 3)])
def test_block_upsample_equals_torch_conv_transpose(kh, kw):
    """torch's ConvTranspose2d with stride == kernel (float64) is the definition:
    out[kh*i + a, kw*j + b] = x[i, j] @ w[a, b]."""
    rng = np.random.default_rng(kh * kw)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    w = rng.normal(size=(kh, kw, 5, 6)).astype(np.float32)  # [kh, kw, Cin, Cout]
    ref = F.conv_transpose2d(torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2),
                             torch.tensor(w, dtype=torch.float64).permute(2, 3, 0, 1),
                             stride=(kh, kw)).permute(0, 2, 3, 1).numpy()
    y = block_upsample(jnp.asarray(x), jnp.asarray(w))
    assert y.shape == (2, 3 * kh, 4 * kw, 6)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-5)
