"""cpu_conv: the CPU conv forms (1x1 as dot_general, strided convs with a per-phase input
gradient) against torch.nn.functional.conv2d in float64 and against `lax.conv_general_dilated`:
outputs, input and kernel gradients; dispatch; `Conv` keeps flax.linen.Conv's parameters."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxvision.layers import Conv, cpu_conv

NHWC = ("NHWC", "HWIO", "NHWC")
# (x shape NHWC, kernel, stride, padding; 6 output channels): bottleneck 1x1 expand (stays a
# conv) and reduce (a dot), downsample 1x1/2, 3x3/2 on even and odd maps, ResNet stem 7x7/2,
# AlexNet 11x11/4, asymmetric padding
CASES = [((2, 6, 6, 5), 1, 1, 0), ((2, 6, 6, 9), 1, 1, 0), ((2, 7, 6, 5), 1, 2, 0),
         ((2, 8, 8, 4), 3, 2, 1),
         ((1, 9, 7, 3), 3, 2, 1), ((1, 12, 12, 3), 7, 2, 3), ((1, 19, 19, 3), 11, 4, 2),
         ((1, 9, 9, 2), 3, 2, ((0, 1), (1, 0)))]


def _pads(p):
    return ((p, p), (p, p)) if isinstance(p, int) else p


def _torch(x, w, r, s, p):
    (pt, pb), (pl, pr) = _pads(p)
    xt = torch.tensor(np.transpose(x, (0, 3, 1, 2)), dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(np.transpose(w, (3, 2, 0, 1)), dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.conv2d(torch.nn.functional.pad(xt, (pl, pr, pt, pb)), wt, stride=s)
    (y * torch.tensor(np.transpose(r, (0, 3, 1, 2)), dtype=torch.float64)).sum().backward()
    return (np.transpose(y.detach().numpy(), (0, 2, 3, 1)),
            np.transpose(xt.grad.numpy(), (0, 2, 3, 1)),
            np.transpose(wt.grad.numpy(), (2, 3, 1, 0)))


def _jax(x, w, r, s, p):
    def f(x, w):
        y = cpu_conv.conv_general_dilated(x, w, (s, s), _pads(p), dimension_numbers=NHWC)
        return jnp.sum(y * r), y
    (_, y), (gx, gw) = jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))(x, w)
    return y, gx, gw


@pytest.mark.parametrize("shape,k,s,p", CASES)
def test_matches_torch_and_plain(shape, k, s, p, monkeypatch):
    rng = np.random.default_rng(k + 10 * s)
    x = rng.normal(size=shape).astype(np.float32)
    w = rng.normal(size=(k, k, shape[-1], 6)).astype(np.float32)
    (pt, pb), (pl, pr) = _pads(p)
    oh = (shape[1] + pt + pb - k) // s + 1
    ow = (shape[2] + pl + pr - k) // s + 1
    r = rng.normal(size=(shape[0], oh, ow, 6)).astype(np.float32)
    ref = _torch(x, w, r, s, p)
    got = {}
    for impl in ("cpu", "plain"):
        monkeypatch.setattr(cpu_conv, "IMPL", impl)
        got[impl] = _jax(x, w, r, s, p)
        for a, b, what in zip(got[impl], ref, ("y", "dx", "dw"), strict=True):
            scale = np.abs(b).max()
            np.testing.assert_allclose(np.asarray(a) / scale, b / scale, atol=2e-6,
                                       err_msg=f"{impl} {what}")


def _jaxpr(k, s, p, argnums, cin=4, cout=4):
    x, w = jnp.ones((1, 8, 8, cin)), jnp.ones((k, k, cin, cout))

    def f(x, w):
        return cpu_conv.conv_general_dilated(x, w, (s, s), p, dimension_numbers=NHWC).sum()
    return str(jax.make_jaxpr(jax.grad(f, argnums=argnums))(x, w))


def test_dispatch(monkeypatch):
    assert jax.default_backend() == "cpu"
    # strided 1x1 (zero padding, also 'SAME'), and 1x1 with Cin > Cout: no convolution at all,
    # forward or backward; Cin <= Cout (exactly at the threshold: equal) stays a convolution
    assert "conv_general_dilated" not in _jaxpr(1, 2, "SAME", (0, 1))
    assert "conv_general_dilated" not in _jaxpr(1, 1, "VALID", (0, 1), cin=5, cout=4)
    assert "conv_general_dilated" in _jaxpr(1, 1, "VALID", (0, 1), cin=4, cout=4)
    assert "conv_general_dilated" in _jaxpr(1, 1, "VALID", (0, 1), cin=4, cout=16)
    # a padded 1x1 conv is no matmul: it stays a convolution
    assert "conv_general_dilated" in _jaxpr(1, 1, ((1, 1), (1, 1)), (0, 1))
    # strided 3x3: the input gradient has no lhs-dilated (transposed) convolution
    assert "lhs_dilation=(2, 2)" not in _jaxpr(3, 2, ((1, 1), (1, 1)), 0)
    with monkeypatch.context() as m:
        m.setattr(jax, "default_backend", lambda: "gpu")
        assert "conv_general_dilated" in _jaxpr(1, 2, "SAME", (0, 1))
        assert "lhs_dilation=(2, 2)" in _jaxpr(3, 2, ((1, 1), (1, 1)), 0)
    monkeypatch.setattr(cpu_conv, "IMPL", "plain")
    assert "conv_general_dilated" in _jaxpr(1, 1, "VALID", (0, 1), cin=5, cout=4)
    monkeypatch.setattr(cpu_conv, "IMPL", "fast")
    with pytest.raises(ValueError, match="IMPL.*'fast'"):
        _jaxpr(1, 1, "VALID", 0)


def test_conv_module_has_flax_conv_parameters():
    x = jnp.ones((1, 8, 8, 3))
    for kw in (dict(kernel_size=(1, 1)), dict(kernel_size=(3, 3), strides=(2, 2), use_bias=False)):
        def shapes(cls, kw=kw):
            tree = jax.eval_shape(lambda: cls(5, name="c", **kw).init(jax.random.key(0), x))
            return jax.tree.map(lambda a: (a.shape, a.dtype), tree)
        assert shapes(Conv) == shapes(nn.Conv)
        params = jax.jit(nn.Conv(5, **kw).init)(jax.random.key(0), x)
        y = jax.jit(Conv(5, **kw).apply)(params, x)
        np.testing.assert_allclose(y, jax.jit(nn.Conv(5, **kw).apply)(params, x),
                                   rtol=1e-6, atol=1e-6)
