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


@pytest.mark.slow
def test_valid_padding_numbers_on_a_narrow_network():
    model = get_model("unet", num_classes=3, depth=2, base_width=4)
    x = jax.random.normal(jax.random.key(1), (2, 92, 92, 3))
    variables = model.init(jax.random.key(0), x)
    logits, _ = model.apply(variables, x)
    chex.assert_shape(logits, (2, 92 - 40, 92 - 40, 3))
    chex.assert_tree_all_finite(logits)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def _torch_unet(depth, width, num_classes, padding, batch_norm, upsampling):
    """The U-Net written independently in torch (NCHW), children named as the Flax modules.
    BatchNorm: torch's defaults (momentum 0.1, eps 1e-5). The 2x2 up-convolution paints each
    input pixel's 2x2 patch: out[2i + a, 2j + b] = sum_c x[i, j, c] W[c, :, a, b] + bias."""
    import torch
    from torch import nn as tnn

    pad = 1 if padding == "SAME" else 0

    class Double(tnn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv0 = tnn.Conv2d(cin, cout, 3, padding=pad, bias=not batch_norm)
            self.conv1 = tnn.Conv2d(cout, cout, 3, padding=pad, bias=not batch_norm)
            if batch_norm:
                self.bn0, self.bn1 = tnn.BatchNorm2d(cout), tnn.BatchNorm2d(cout)

        def forward(self, x):
            for i in range(2):
                x = getattr(self, f"conv{i}")(x)
                if batch_norm:
                    x = getattr(self, f"bn{i}")(x)
                x = torch.relu(x)
            return x

    class UNetRef(tnn.Module):
        def __init__(self):
            super().__init__()
            cin = 3
            for level in range(depth):
                setattr(self, f"down{level + 1}", Double(cin, width * 2**level))
                cin = width * 2**level
            self.bottleneck = Double(cin, width * 2**depth)
            cin = width * 2**depth
            for level in reversed(range(depth)):
                w = width * 2**level
                up = (tnn.ConvTranspose2d(cin, w, 2, stride=2) if upsampling == "transpose"
                      else tnn.Conv2d(cin, w, 1))
                setattr(self, f"up{level + 1}", up)
                setattr(self, f"decoder{level + 1}", Double(2 * w, w))
                cin = w
            self.head = tnn.Conv2d(cin, num_classes, 1)

        def forward(self, x):
            skips = []
            for level in range(depth):
                x = getattr(self, f"down{level + 1}")(x)
                skips.append(x)
                x = torch.nn.functional.max_pool2d(x, 2)
            x = self.bottleneck(x)
            for level in reversed(range(depth)):
                if upsampling == "bilinear":
                    x = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear",
                                                        align_corners=False)
                x = getattr(self, f"up{level + 1}")(x)
                s = skips[level]
                top, left = (s.shape[2] - x.shape[2]) // 2, (s.shape[3] - x.shape[3]) // 2
                s = s[:, :, top:top + x.shape[2], left:left + x.shape[3]]
                x = getattr(self, f"decoder{level + 1}")(torch.cat([s, x], 1))
            return self.head(x)

    return UNetRef().double()


def _torch_tensor(tmodel, collection, path):
    """The torch tensor behind the Flax leaf `collection/path`, with the maps from its layout to
    Flax's and back (None: same layout)."""
    module = tmodel
    for name in path[:-1]:
        module = getattr(module, name)
    leaf = path[-1]
    if collection == "batch_stats":
        return getattr(module, {"mean": "running_mean", "var": "running_var"}[leaf]), None, None
    if leaf == "kernel":
        if module.__class__.__name__ == "ConvTranspose2d":  # torch [in, out, kh, kw]
            # Flax's ConvTranspose (transpose_kernel=False) correlates the stride-dilated input
            # with its kernel, so the patch it paints is the kernel flipped in both axes:
            # torch's weight [c, o, a, b] is Flax's kernel [kh - 1 - a, kw - 1 - b, c, o].
            swap = lambda w: w.transpose(2, 3, 0, 1)[::-1, ::-1]  # noqa: E731  (own inverse)
            return module.weight, swap, lambda w: w[::-1, ::-1].transpose(2, 3, 0, 1)
        return (module.weight, lambda w: w.transpose(2, 3, 1, 0),  # torch [out, in, kh, kw]
                lambda w: w.transpose(3, 2, 0, 1))
    return getattr(module, {"scale": "weight", "bias": "bias"}[leaf]), None, None


def _from_torch(tmodel, template, collection, grad=False):
    """A tree shaped like `template` holding torch's values (or gradients) in Flax layout."""
    def get(path, _):
        tensor, to_flax, _ = _torch_tensor(tmodel, collection, tuple(k.key for k in path))
        value = (tensor.grad if grad else tensor).detach().numpy()
        return to_flax(value) if to_flax else value

    return jax.tree_util.tree_map_with_path(get, template)


def _to_torch(tmodel, variables):
    """Copies Flax `variables` into the torch model."""
    import torch

    for collection, tree in variables.items():
        def put(path, value, collection=collection):
            tensor, _, to_torch = _torch_tensor(tmodel, collection, tuple(k.key for k in path))
            value = np.asarray(value, np.float64)
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(
                to_torch(value) if to_torch else value)))

        with torch.no_grad():
            jax.tree_util.tree_map_with_path(put, tree)


@pytest.mark.slow
@pytest.mark.parametrize("padding,batch_norm,upsampling,size", [
    ("SAME", True, "transpose", 16), ("VALID", False, "bilinear", 44)])
def test_train_mode_matches_an_independent_torch_unet(padding, batch_norm, upsampling, size):
    """Train-mode logits, gradients (parameters and input) and updated BatchNorm statistics
    against the torch U-Net above, computed in float64."""
    import torch

    from tests.models.train_mode import assert_trees_close, flax_running_stats, record_bn_counts

    depth, width, classes = 2, 4, 3
    model = get_model("unet", num_classes=classes, depth=depth, base_width=width,
                      padding=padding, batch_norm=batch_norm, upsampling=upsampling)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, size, size, 3)).astype(np.float32)
    variables = model.init(jax.random.key(0), jnp.asarray(x))
    if batch_norm:  # statistics and affines away from (0, 1) so that momentum and eps show
        def jitter(path, v):
            low, high = {"mean": (-0.5, 0.5), "var": (0.5, 2.0), "scale": (0.6, 1.4),
                         "bias": (-0.3, 0.3)}[path[-1].key]
            return rng.uniform(low, high, v.shape).astype(np.float32)

        variables = {"params": variables["params"],
                     "batch_stats": jax.tree_util.tree_map_with_path(
                         jitter, variables["batch_stats"])}
        for block in variables["params"].values():
            for bn in ("bn0", "bn1"):
                if bn in block:
                    block[bn] = jax.tree_util.tree_map_with_path(jitter, block[bn])
    tmodel = _torch_unet(depth, width, classes, padding, batch_norm, upsampling)
    _to_torch(tmodel, variables)
    before = {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}

    probe = rng.standard_normal((2, *model.apply(variables, x)[0].shape[1:]))
    counts = record_bn_counts(tmodel)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64, requires_grad=True)
    tmodel.train()
    t_logits = tmodel(xt)
    (t_logits * torch.from_numpy(probe.transpose(0, 3, 1, 2))).sum().backward()

    def loss(params, x):
        (logits, _), updates = model.apply({**variables, "params": params}, x, train=True,
                                           mutable=["batch_stats"])
        return jnp.sum(logits * probe), (logits, updates)

    (_, (logits, updates)), (g_params, g_x) = jax.jit(jax.value_and_grad(
        loss, argnums=(0, 1), has_aux=True))(variables["params"], jnp.asarray(x))
    assert_trees_close(logits, t_logits.detach().numpy().transpose(0, 2, 3, 1), 1e-4, "logits")
    assert_trees_close(g_x, xt.grad.numpy().transpose(0, 2, 3, 1), 1e-3, "input grad")
    assert_trees_close(g_params, _from_torch(tmodel, g_params, "params", grad=True), 1e-3,
                       "param grad", floor=1e-2)
    if batch_norm:
        expected = flax_running_stats(tmodel, before, counts)
        with torch.no_grad():  # torch's updated statistics, variances by Flax's (biased) rule
            for name, module in tmodel.named_modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_var.copy_(torch.from_numpy(expected[f"{name}.running_var"]))
        assert_trees_close(updates["batch_stats"],
                           _from_torch(tmodel, updates["batch_stats"], "batch_stats"), 1e-4,
                           "batch_stats")
    else:
        assert set(updates) <= {"batch_stats"} and not updates.get("batch_stats")
