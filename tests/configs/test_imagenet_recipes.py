"""The ImageNet recipes (configs/imagenet/): each loads locked and valid, its learning rate at
the epoch boundaries is the one its docstring states (float64 from the reference's own rule),
and its model has torchvision's parameter count at 224 (from jax.eval_shape, nothing
allocated)."""

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models import get_model
from jaxvision.train.config import validate_config
from jaxvision.train.optim import build_schedule

IMAGES = 1_281_167
# (module, variant) -> (model, global batch, steps); steps = floor(epochs * IMAGES / batch)
RECIPES = {
    ("resnet50", ""): ("resnet50", 256, 450_410),
    ("resnet50", "flax"): ("resnet50", 1024, 125_100),  # 100 x (IMAGES // 1024)
    ("efficientnet_b0", ""): ("efficientnet_b0", 4096, 109_474),
    ("vgg16", ""): ("vgg16", 256, 450_410),
    ("alexnet", ""): ("alexnet", 256, 450_410),
}
# torchvision's documented num_params of its IMAGENET1K_V1 weights
TORCHVISION_PARAMS = {"resnet50": 25_557_032, "vgg16": 138_357_544, "alexnet": 61_100_840,
                      "efficientnet_b0": 5_288_548}


def _config(module: str, variant: str = ""):
    get_config = importlib.import_module(f"configs.imagenet.{module}").get_config
    return get_config(variant) if variant else get_config()


@pytest.mark.parametrize("module,variant", sorted(RECIPES))
def test_recipe_loads_locked_and_valid(module, variant):
    config = _config(module, variant)
    model, batch, steps = RECIPES[module, variant]
    validate_config(config)
    assert config.is_locked
    with pytest.raises(AttributeError):
        config.train.epochs = 90  # a misspelt override is an error
    assert (config.model, config.task, config.train.batch_size, config.train.steps) == (
        model, "classification", batch, steps)
    assert config.dataset == "imagefolder:~/imagenet"
    assert (config.data.image_size, config.data.crop, config.data.random_flip) == (
        224, "random_resized", True)
    assert config.train.eval_every % config.train.checkpoint_every == 0
    doc = importlib.import_module(f"configs.imagenet.{module}").__doc__
    assert f"{steps:,}" in doc and "Target: top-1" in doc


def _lr(config, steps):
    schedule = build_schedule(config.optimizer, config.train.steps)
    return np.array([float(schedule(jnp.asarray(s))) for s in steps])


def _epoch(e: float, batch: int) -> int:
    return math.floor(e * IMAGES / batch)


@pytest.mark.parametrize("module,lr", [("resnet50", 0.1), ("vgg16", 0.01), ("alexnet", 0.01)])
def test_torchvision_step_schedule(module, lr):
    """lr, then x0.1 from the first step of epochs 30 and 60, up to the last of 90."""
    config = _config(module)
    e30, e60, e90 = _epoch(30, 256), _epoch(60, 256), _epoch(90, 256)
    assert (e30, e60, e90) == (150_136, 300_273, 450_410)  # the numbers the docstrings state
    steps = [0, 1, e30 - 1, e30, e60 - 1, e60, e90 - 1]
    want = [lr, lr, lr, lr / 10, lr / 10, lr / 100, lr / 100]
    np.testing.assert_allclose(_lr(config, steps), want, rtol=1e-6)


def test_efficientnet_schedule():
    """Linear warm-up from 0 over 5 epochs, then 0.256 x 0.97 ** floor(step / period) counted
    from step 0 (the reference's staircase), period round(2.4 epochs) = 751 steps."""
    config = _config("efficientnet_b0")
    warm, period, last = _epoch(5, 4096), round(2.4 * IMAGES / 4096), _epoch(350, 4096) - 1
    assert (warm, period) == (1563, 751)
    steps = np.array([0, 1, warm // 2, warm - 1, warm, 3 * period - 1, 3 * period,
                      100 * period, last])
    want = np.where(steps < warm, 0.256 * steps / warm,
                    0.256 * 0.97 ** np.floor(steps / period))
    assert want[4] == pytest.approx(0.256 * 0.97 ** 2)  # already decayed twice after warm-up
    # atol: optax's float32 linear warm-up cancels digits near 0 (1.6e-4 +- 6e-9 at step 1)
    np.testing.assert_allclose(_lr(config, steps), want, rtol=1e-5, atol=1e-7)


def test_flax_resnet_schedule():
    """0.4 (0.1 x 1024/256) reached linearly over 5 epochs of 1251 steps, then cosine to 0."""
    config = _config("resnet50", "flax")
    per_epoch, total = IMAGES // 1024, 125_100
    warm = 5 * per_epoch
    steps = np.array([0, warm // 2, warm, warm + 1000, 50 * per_epoch, total - 1])
    t = np.clip((steps - warm) / (total - warm), 0, 1)
    want = np.where(steps < warm, 0.4 * steps / warm, 0.4 * 0.5 * (1 + np.cos(np.pi * t)))
    np.testing.assert_allclose(_lr(config, steps), want, rtol=1e-5, atol=1e-7)
    assert config.optimizer.nesterov and config.dtype == "bfloat16"


@pytest.mark.parametrize("module", sorted(TORCHVISION_PARAMS))
def test_parameter_count_is_torchvision(module):
    config = _config(module)
    model = get_model(config.model, num_classes=1000, **config.model_kwargs)
    shapes = jax.eval_shape(lambda: model.init(
        {"params": jax.random.key(0), "dropout": jax.random.key(1)},
        jnp.zeros((1, 224, 224, 3)), train=False))
    count = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes["params"]))
    assert count == TORCHVISION_PARAMS[module]


def test_efficientnet_regularisation_is_tan_and_les():
    """Dropout 0.2 before the classifier, stochastic depth 0.2, AutoAugment's ImageNet policy
    (training only: the evaluation transform has none)."""
    from jaxvision.data.pipeline import make_transforms

    config = _config("efficientnet_b0")
    kwargs = config.model_kwargs
    assert (kwargs.dropout_rate, kwargs.stochastic_depth_rate) == (0.2, 0.2)
    assert config.data.autoaugment == "imagenet"
    train, evaluation = make_transforms(config, ("image", "label"))
    assert (train.autoaugment, evaluation.autoaugment) == ("imagenet", "none")
    assert _config("resnet50").data.autoaugment == "none"
