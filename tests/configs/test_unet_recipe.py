"""The U-Net ISBI 2012 recipe (configs/isbi/unet.py): loads locked and valid with the paper's
settings, its model maps a 572 tile to 388 with the hand-counted parameters and the paper's
Gaussian initialisation. One full-size run (slow): the docstring's command on a tiny ISBI
folder (multi-page TIFFs), two steps on 572 tiles and an evaluation on a 572 tile."""

import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.isbi import unet as recipe
from jaxvision.models import get_model
from jaxvision.train.config import validate_config
from tests.data.isbi_stacks import write_isbi
from tests.train.conftest import REPO, records


def _conv(c_in, c_out, k):
    return k * k * c_in * c_out + c_out


def _hand_count(c_in, classes=2, width=64, depth=4):
    """The paper's Fig. 1 network layer by layer: two 3x3 convs per level and in the
    bottleneck, a 2x2 up-conv and two 3x3 convs (on the concatenation) per level back up, a
    1x1 head."""
    total, c = 0, c_in
    for level in range(depth + 1):
        w = width * 2**level
        total += _conv(c, w, 3) + _conv(w, w, 3)
        c = w
    for level in reversed(range(depth)):
        w = width * 2**level
        total += _conv(c, w, 2) + _conv(2 * w, w, 3) + _conv(w, w, 3)
        c = w
    return total + _conv(c, classes, 1)


def test_recipe_is_the_papers_setup():
    config = recipe.get_config()
    assert config.is_locked
    validate_config(config)
    assert (config.model, config.task, config.train.batch_size) == ("unet", "segmentation", 1)
    assert dict(config.model_kwargs) == dict(depth=4, base_width=64, padding="VALID",
                                             batch_norm=False, upsampling="transpose",
                                             kernel_init="he", dropout=0.5)
    opt = config.optimizer
    assert (opt.name, opt.momentum, opt.nesterov, opt.weight_decay) == ("sgd", 0.99, False, 0.0)
    assert (opt.learning_rate, opt.warmup_steps, opt.schedule, config.train.steps) == (
        0.01, 500, "constant", 20_000)
    data = config.data
    assert (data.elastic.sigma, data.elastic.grid) == (10.0, 3)
    assert (data.tile.size, data.tile.margin, data.tile.step) == (388, 92, 16)
    assert (data.weight_map.w0, data.weight_map.sigma) == (10.0, 5.0)
    assert config.task_kwargs.pixel_weights and data.builders.isbi.holdout == 5
    assert data.image_size == 512  # the slices' size (no resize with tiles: for pod_plan)
    assert config.dataset.startswith("isbi:")
    doc = " ".join(recipe.__doc__.split())
    for text in ("python train.py --config configs/isbi/unet.py", "0.000353", "20,000",
                 f"{_hand_count(1):,}", f"{_hand_count(3):,}", "momentum 0.99", "batch 1"):
        assert text in doc, text


@pytest.mark.parametrize("field,bad,edge,message", [
    ("elastic.grid", 1, 2, "an integer >= 2, got 1"),
    ("elastic.sigma", -0.5, 0.0, ">= 0, got -0.5"),
    ("tile.margin", -1, 0, "an integer >= 0, got -1"),
    ("tile.step", 0, 1, "an integer >= 1, got 0"),
    ("weight_map.w0", -1.0, 0.0, ">= 0, got -1.0"),
    ("weight_map.sigma", 0.0, 1e-3, "> 0, got 0.0")])
def test_unet_data_fields_are_validated_by_name(field, bad, edge, message):
    section, key = field.split(".")
    config = recipe.get_config()
    config.data[section][key] = edge  # the boundary value is allowed
    validate_config(config)
    config.data[section][key] = bad
    with pytest.raises(ValueError, match=f"config.data.{field}: expected {re.escape(message)}"):
        validate_config(config)


def test_model_maps_572_to_388_with_the_hand_counted_parameters():
    assert _hand_count(1) == 31_030_658  # a one-channel input, as the paper's EM slices
    config = recipe.get_config()
    model = get_model(config.model, num_classes=2, **config.model_kwargs)
    for channels in (1, 3):  # 3: the grayscale slices replicated to RGB, as fed here
        images = jnp.zeros((1, 572, 572, channels))
        variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), images)
        count = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables["params"]))
        assert count == _hand_count(channels)
        logits, _ = jax.eval_shape(lambda v, x: model.apply(v, x), variables, images)
        assert logits.shape == (1, 388, 388, 2)
    assert _hand_count(3) - _hand_count(1) == 2 * 9 * 64


def test_he_init_is_the_papers_gaussian():
    """std sqrt(2 / N), N the inputs of one neuron: 9 C_in for a 3x3 conv, C_in for the 2x2
    stride-2 up-conv; untruncated (values beyond 3 std occur)."""
    model = get_model("unet", num_classes=2, depth=1, base_width=32, padding="VALID",
                      kernel_init="he")
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 28, 28, 3)))["params"]
    kernels = {"down1/conv1": (params["down1"]["conv1"]["kernel"], 9 * 32),
               "bottleneck/conv1": (params["bottleneck"]["conv1"]["kernel"], 9 * 64),
               "up1": (params["up1"]["kernel"], 64),
               "decoder1/conv0": (params["decoder1"]["conv0"]["kernel"], 9 * 64)}
    for name, (kernel, fan_in) in kernels.items():
        kernel = np.asarray(kernel, np.float64)
        np.testing.assert_allclose(kernel.std(), np.sqrt(2 / fan_in), rtol=0.05, err_msg=name)
    big, fan_in = kernels["bottleneck/conv1"]
    assert np.abs(np.asarray(big)).max() > 3.5 * np.sqrt(2 / fan_in)


@pytest.mark.slow
def test_recipe_runs_at_full_size(tmp_path):
    """The docstring's command with only the dataset path and step counts overridden: 2 steps
    on 572 x 572 tiles of a 3-slice folder (elastic deformation, weight map), then the held-out
    128 x 128 slice evaluated from one 572 x 572 mirrored tile."""
    root = str(tmp_path / "isbi")
    write_isbi(root, count=3, size=128, test_count=1)
    workdir = str(tmp_path / "work")
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "--config",
           os.path.join(REPO, "configs", "isbi", "unet.py"), f"--workdir={workdir}",
           f"--config.dataset=isbi:{root}", "--config.data.builders.isbi.holdout=1",
           "--config.train.steps=2", "--config.train.eval_every=2", "--config.train.log_every=1",
           "--config.train.checkpoint_every=2", "--config.optimizer.warmup_steps=1"]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"unet: {_hand_count(3):,} parameters" in done.stderr
    logged = records(workdir)
    train = [r for r in logged if r["split"] == "train"]
    assert len(train) == 2 and all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in train)
    final = [r for r in logged if r["split"] == "test"][-1]
    assert 0.0 <= final["pixel_accuracy"] <= 1.0 and 0.0 <= final["miou"] <= 1.0
    assert set(final) >= {"iou/background", "iou/cell", "boundary_f"}
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "2"))
