"""Frozen backbone layers, as torchvision freezes them: the detectors' `trainable_mask` (what the
optimiser leaves unchanged) against torchvision's `requires_grad`, and the train-mode gradients
through the task's loss (BatchNorm statistics mutable, as the trainer runs it): exactly zero on
every frozen leaf, non-zero on trainable backbone layers. The SSD300 `scales` kwarg gives
torchvision's DefaultBoxGenerator boxes for the same scales."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data

from jaxvision.models import get_model
from jaxvision.models.backbones import trainable_mask
from jaxvision.tasks import get_task
from jaxvision.weights.torchvision import _ssd300_prefix

TASK = get_task("detection", ("a", "b"))


def _flat(tree):
    return {tuple(k.key for k in path): v
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.mark.slow
@pytest.mark.parametrize("k", range(6))
def test_ssd300_mask_is_torchvision_vgg_extractor_requires_grad(k):
    import torchvision
    from torchvision.models.detection.ssd import _vgg_extractor

    extractor = _vgg_extractor(torchvision.models.vgg16(weights=None), False, k)
    frozen = {f"backbone.{n}" for n, p in extractor.named_parameters() if not p.requires_grad}
    model = get_model("ssd300", num_classes=3, width=0.125, trainable_layers=k)
    params = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                               jnp.zeros((1, 300, 300, 3))))["params"]
    ours = set()
    for path, train in _flat(model.trainable_mask(params)).items():
        if not train:
            ours.add(f"{_ssd300_prefix(path[0])}.{'weight' if path[1] == 'kernel' else 'bias'}")
    assert ours == frozen
    assert len(frozen) == 2 * (0, 2, 4, 7, 10, 13)[5 - k]


def _photo_batch(size):
    image = skimage.data.astronaut()[:size, :size].astype(np.float32) / 255.0 - 0.45
    return {"image": jnp.asarray(image[None]), "boxes": jnp.array([[[40.0, 30.0, 150.0, 160.0]]]),
            "labels": jnp.array([[1]]), "boxes_valid": jnp.array([[True]]),
            "iscrowd": jnp.array([[False]]), "image_size": jnp.array([[size, size]])}


def _he_variables(model, batch):
    """He-normal kernels, BatchNorm at scale 1 / mean 0 / var 1, zero biases, in the model's
    variable shapes (from `jax.eval_shape`: running the detector's init eagerly is slow)."""
    rng = np.random.default_rng(0)

    def leaf(path, spec):
        name = path[-1].key
        if name in ("scale", "var", "scale_weight"):
            return jnp.ones(spec.shape, spec.dtype)
        if name in ("bias", "mean"):
            return jnp.zeros(spec.shape, spec.dtype)
        fan_in = int(np.prod(spec.shape[:-1]))
        return jnp.asarray(rng.normal(0, np.sqrt(2 / fan_in), spec.shape), spec.dtype)

    abstract = jax.eval_shape(lambda: TASK.init(model, jax.random.key(0), batch))
    return jax.tree_util.tree_map_with_path(leaf, abstract)


def _grads(model, batch):
    variables = _he_variables(model, batch)
    grads = jax.jit(jax.grad(lambda p: TASK.loss(model, {**variables, "params": p}, batch,
                                                 jax.random.key(1))[0]))(variables["params"])
    return variables["params"], _flat(grads)


@pytest.mark.slow
@pytest.mark.parametrize("name, kwargs, size, frozen_layers, trained", [
    ("faster_rcnn", dict(backbone="resnet18_fpn", backbone_kwargs=dict(trainable_layers=3)),
     128, None, ("backbone", "body", "layer2_0", "conv1", "kernel")),
    ("faster_rcnn", dict(backbone="vgg16", representation_size=64,
                         backbone_kwargs=dict(trainable_layers=3, widths=(8, 8, 16, 16, 16))),
     128, {"conv1_1", "conv1_2", "conv2_1", "conv2_2"}, ("backbone", "conv3_1", "kernel")),
    ("ssd300", dict(width=0.125, trainable_layers=4), 268, {"conv1_1", "conv1_2"},
     ("conv2_1", "kernel")),
])
def test_frozen_leaves_get_zero_gradient_through_the_task(name, kwargs, size, frozen_layers,
                                                          trained):
    model = get_model(name, num_classes=3, **kwargs)
    params, grads = _grads(model, _photo_batch(size))
    mask = _flat(model.trainable_mask(params))
    if frozen_layers is None:  # ResNet-FPN: torchvision's rule, checked in test_rcnn_parity
        assert mask == _flat(trainable_mask(params, 3, frozen_bn=True))
    else:
        assert {p[-2] for p, train in mask.items() if not train} == frozen_layers
    assert not all(mask.values())
    for path, train in mask.items():
        if not train:
            assert not np.any(np.asarray(grads[path])), path
    assert mask[trained] and np.any(np.asarray(grads[trained]))


def test_ssd300_scales_give_torchvisions_default_boxes():
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator

    scales = (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05)  # the paper's VOC boxes
    got = np.asarray(get_model("ssd300", scales=scales).default_boxes((300, 300)))
    ratios = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    gen = DefaultBoxGenerator(ratios, scales=list(scales), steps=[8, 16, 32, 64, 100, 300])
    sizes = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    d = gen._grid_default_boxes(sizes, [300, 300]).numpy() * 300.0
    want = np.concatenate([d[:, :2] - 0.5 * d[:, 2:], d[:, :2] + 0.5 * d[:, 2:]], 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    assert np.abs(got - np.asarray(get_model("ssd300").default_boxes((300, 300)))).max() > 1
