"""max_pool: the masked-backward CPU form against torch.nn.functional.max_pool2d and the plain
`lax.reduce_window` form: values and input gradients, with ties (first maximum in row-major
window order gets the gradient, as torch)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxvision.layers import max_pool

# (shape NHWC, window, stride, padding): ResNet stem, VGG/U-Net 2x2, AlexNet 3x3/2 on odd maps
CASES = [((2, 9, 9, 3), 3, 2, 1), ((2, 8, 6, 3), 2, 2, 0), ((1, 11, 7, 2), 3, 2, 0),
         ((1, 7, 7, 2), 3, 1, 1), ((1, 9, 9, 2), 2, 3, 0)]


def _torch(x, r, k, s, p):
    xt = torch.tensor(np.transpose(x, (0, 3, 1, 2)), dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.max_pool2d(xt, k, s, p)
    (y * torch.tensor(np.transpose(r, (0, 3, 1, 2)), dtype=torch.float64)).sum().backward()
    return (np.transpose(y.detach().numpy(), (0, 2, 3, 1)),
            np.transpose(xt.grad.numpy(), (0, 2, 3, 1)))


def _jax(x, r, k, s, p, impl):
    def f(x):
        y = max_pool(x, k, s, p, impl=impl)
        return jnp.sum(y * r), y
    (_, y), g = jax.jit(jax.value_and_grad(f, has_aux=True))(x)
    return y, g


@pytest.mark.parametrize("shape,k,s,p", CASES)
def test_values_and_grads_match_torch(shape, k, s, p):
    rng = np.random.default_rng(k * 10 + s + p)
    # half the channels with few distinct values (most windows hold their maximum twice or
    # more: ties), the others distinct
    x = rng.normal(size=shape).astype(np.float32)
    x[..., 0] = rng.integers(0, 3, size=shape[:3])
    y_t = torch.nn.functional.max_pool2d(torch.tensor(np.transpose(x, (0, 3, 1, 2))), k, s, p)
    r = rng.normal(size=np.transpose(y_t.numpy(), (0, 2, 3, 1)).shape).astype(np.float32)
    y_ref, g_ref = _torch(x, r, k, s, p)
    for impl in ("masked", "plain"):
        y, g = _jax(jnp.asarray(x), jnp.asarray(r), k, s, p, impl)
        np.testing.assert_array_equal(np.asarray(y), y_ref.astype(np.float32))
        np.testing.assert_allclose(np.asarray(g), g_ref, rtol=1e-6, atol=1e-6, err_msg=impl)


def test_tie_gradient_goes_to_first_maximum():
    x = jnp.ones((1, 2, 2, 1))
    g = jax.grad(lambda x: max_pool(x, 2, 2, impl="masked").sum())(x)
    np.testing.assert_array_equal(np.asarray(g)[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_auto_is_masked_on_cpu_and_plain_elsewhere(monkeypatch):
    from jaxvision.layers import cpu_conv

    x = jnp.ones((1, 4, 4, 1))

    def grad_jaxpr():
        return str(jax.make_jaxpr(jax.grad(lambda x: max_pool(x, 2).sum()))(x))

    assert jax.default_backend() == "cpu"
    assert "select_and_scatter" not in grad_jaxpr()
    with monkeypatch.context() as m:
        m.setattr(jax, "default_backend", lambda: "gpu")
        assert "select_and_scatter" in grad_jaxpr()
    monkeypatch.setattr(cpu_conv, "IMPL", "plain")
    assert "select_and_scatter" in grad_jaxpr()


def test_bad_impl_raises():
    with pytest.raises(ValueError, match="impl.*'fast'"):
        max_pool(jnp.ones((1, 4, 4, 1)), 2, impl="fast")
