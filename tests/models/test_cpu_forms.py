"""ResNet-18 with the CPU layer forms (max pool masked backward, 1x1 convs as dot_general,
strided-conv input gradient) against the same model with the plain forms: logits and
parameter gradients. Inference-mode BatchNorm: in train mode at this tiny size (1x1 maps, batch
2) BN's normalisation amplifies float32 rounding differences far beyond the layers' own."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.layers import cpu_conv
from jaxvision.models import get_model


@pytest.mark.slow
def test_resnet18_cpu_forms_match_plain(monkeypatch):
    model = get_model("resnet18", num_classes=10)
    x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
    variables = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(x)

    def loss(params):
        logits, _ = model.apply({**variables, "params": params}, x, train=False)
        return jnp.sum(jax.nn.log_softmax(logits)[:, :3]), logits

    out = {}
    for impl in ("cpu", "plain"):
        monkeypatch.setattr(cpu_conv, "IMPL", impl)
        out[impl] = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
    (l_cpu, y_cpu), g_cpu = out["cpu"]
    (l_plain, y_plain), g_plain = out["plain"]
    np.testing.assert_allclose(l_cpu, l_plain, rtol=1e-5)
    np.testing.assert_allclose(y_cpu, y_plain, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(g_cpu), jax.tree.leaves(g_plain), strict=True):
        scale = float(jnp.max(jnp.abs(b))) or 1.0
        np.testing.assert_allclose(np.asarray(a) / scale, np.asarray(b) / scale, atol=1e-5)
