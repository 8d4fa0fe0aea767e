"""Helpers to compare a Flax model in train mode with an independent torch model: BatchNorm input
sizes, the running statistics Flax's rule gives, and tree comparison relative to each leaf's
scale."""

from __future__ import annotations

import numpy as np


def record_bn_counts(torch_model) -> dict[str, int]:
    """Registers hooks that record, per BatchNorm2d (by module name), how many values per channel
    its next forward normalises (N * H * W). Returns the dict the hooks fill."""
    import torch

    counts: dict[str, int] = {}
    for name, module in torch_model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            def hook(mod, args, name=name):
                counts[name] = args[0].numel() // args[0].shape[1]
            module.register_forward_pre_hook(hook)
    return counts


def flax_running_stats(torch_model, before: dict, counts: dict[str, int]) -> dict:
    """The torch-keyed running statistics Flax's BatchNorm rule gives after one train forward.

    `before`: the state dict before the forward. Means: torch's updated `running_mean` (the same
    rule, `(1 - m) old + m batch_mean`). Variances: torch updates with the unbiased batch
    variance, Flax with the biased one, so torch's update is converted: with n values per
    channel, `(1 - m) old + m biased = (1 - m) old + (torch_new - (1 - m) old) (n - 1) / n`.
    """
    import torch

    out = {}
    for name, module in torch_model.named_modules():
        if not isinstance(module, torch.nn.BatchNorm2d):
            continue
        m, n = module.momentum, counts[name]
        old = np.asarray(before[f"{name}.running_var"], np.float64)
        new = module.running_var.detach().numpy().astype(np.float64)
        out[f"{name}.running_mean"] = module.running_mean.detach().numpy().copy()
        out[f"{name}.running_var"] = ((1 - m) * old + (new - (1 - m) * old) * (n - 1) / n
                                      ).astype(np.float32)
    return out


def assert_trees_close(got, want, tol: float, what: str = "", floor: float = 0.0):
    """Every leaf: max |got - want| <= tol * max(max |want|, floor * M), M the largest |want| in
    the whole tree. Scale-relative, so small and large gradients are held to the same standard;
    `floor` keeps leaves whose exact value is 0 (a bias before a train-mode BatchNorm) from
    being compared on rounding noise alone."""
    import jax

    paths = jax.tree_util.tree_flatten_with_path(want)[0]
    got_leaves = jax.tree.leaves(got)
    assert len(got_leaves) == len(paths), (what, len(got_leaves), len(paths))
    top = max(float(np.max(np.abs(np.asarray(w)))) for _, w in paths)
    for (path, w), g in zip(paths, got_leaves, strict=True):
        w, g = np.asarray(w, np.float64), np.asarray(g, np.float64)
        assert g.shape == w.shape, (what, jax.tree_util.keystr(path), g.shape, w.shape)
        err = np.max(np.abs(g - w)) / max(np.max(np.abs(w)), floor * top, 1e-30)
        assert err <= tol, f"{what}{jax.tree_util.keystr(path)}: relative error {err:.2e}"
