"""Shared helpers for comparing jaxvision backbones with torchvision (used by tests/models too).

torchvision's schemas are defined by tests/conftest.py before these helpers import it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.models import get_model
from jaxvision.train.parallel import compile_init
from jaxvision.weights import from_torchvision


def torchvision_model(name: str, seed: int = 0):
    """torchvision's `name` with random weights and randomised BatchNorm statistics, in eval mode.

    BN running means/vars and affine parameters are drawn away from their (0, 1) init so that a
    mapping mistake (mean/var swapped, eps, layout) changes the logits.
    """
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.6, 1.2)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


def torch_param_count(name: str) -> int:
    import torchvision

    return sum(p.numel() for p in getattr(torchvision.models, name)().parameters())


def jax_param_count(name: str, size: int = 224) -> int:
    model = get_model(name)
    shapes = jax.eval_shape(lambda: model.init(
        {"params": jax.random.key(0), "dropout": jax.random.key(1)},
        jnp.zeros((1, size, size, 3), jnp.float32), train=False))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))


@functools.cache
def _jitted_apply(name: str):
    model = get_model(name)
    return jax.jit(lambda variables, x: model.apply(variables, x, train=False)[0])


def compare_logits(name: str, size: int, seed: int = 0) -> float:
    """Max |jax - torch| / max |torch| of eval-mode logits for one random image of `size`."""
    import torch

    tmodel = torchvision_model(name, seed)
    variables = from_torchvision(name, tmodel.state_dict())
    x = np.random.default_rng(seed).standard_normal((1, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    del tmodel
    got = np.asarray(_jitted_apply(name)(variables, jnp.asarray(x.transpose(0, 2, 3, 1))))
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert np.all(np.isfinite(got))
    err = float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))
    print(f"logits {name} @ {size}px: max relative error {err:.2e}")  # shown by pytest -rP
    return err


def init_variables(name: str, size: int = 64, **kwargs):
    """`(model, variables)` of `get_model(name, **kwargs)` initialised on `[1, size, size, 3]`."""
    model = get_model(name, **kwargs)
    variables = compile_init(lambda x: model.init(
        {"params": jax.random.key(0), "dropout": jax.random.key(1)}, x, train=False),
        jax.default_backend())(jnp.zeros((1, size, size, 3), jnp.float32))
    return model, variables
