"""The reference detection recipes (configs/coco/, configs/voc/): each loads locked and valid, its
schedule is the reference's epochs or steps (and its docstring says the same numbers), and its
model, built abstractly at the recipe's real input size, has the reference model's parameter
count. One full-size run (slow): the COCO Faster R-CNN recipe from the docstring's commands on a
folder of photographs at COCO's sizes, two steps and an evaluation."""

import importlib
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import skimage.data

from jaxvision.data import make_transforms
from jaxvision.models import get_model
from jaxvision.tasks import get_task
from jaxvision.train.config import validate_config
from jaxvision.train.loop import blank_example
from jaxvision.train.optim import build_schedule
from tests.data.coco_photos import write_coco_photos
from tests.models.detection.test_yolo import YOLOV3_COCO_PARAMS
from tests.train.conftest import REPO, records, saved_state

COCO = 117_266  # train2017 images with annotations (torchvision's training set)
VOC07, VOC0712 = 5_011, 16_551  # VOC 2007 trainval; + VOC 2012 trainval (11,540)


def _epochs(images, batch, epochs, lr_epochs):
    per_epoch = images // batch
    return epochs * per_epoch, tuple(e * per_epoch for e in lr_epochs)


# recipe -> the reference's numbers: (global batch, steps, lr boundaries, lr, weight decay,
# warm-up steps, real input side), typed from the sources the docstrings cite
REFERENCE = {
    "coco.faster_rcnn_r50_fpn": (16, *_epochs(COCO, 16, 26, (16, 22)), 0.02, 1e-4, 1000, 1344),
    "coco.mask_rcnn_r50_fpn": (16, *_epochs(COCO, 16, 26, (16, 22)), 0.02, 1e-4, 1000, 1344),
    "coco.ssd300_vgg16": (32, *_epochs(COCO, 32, 120, (80, 110)), 0.002, 5e-4, 1000, 300),
    "coco.yolov3_416": (64, 500_200, (400_000, 450_000), 1e-3, 5e-4, 1000, 416),
    "voc.faster_rcnn_vgg16": (1, 80_000, (60_000,), 1e-3, 5e-4, 0, 1008),
    "voc.fast_rcnn_vgg16": (2, 40_000, (30_000,), 1e-3, 5e-4, 0, 1008),
    "voc.rcnn_vgg16": (2, 100_000, (20_000, 40_000, 60_000, 80_000), 1e-3, 5e-4, 0, 500),
    "voc.ssd300_vgg16": (32, 120_000, (80_000, 100_000), 1e-3, 5e-4, 0, 300),
}


# recipes whose reference counts steps -> the training set the docstring's epochs are of
STEP_RECIPES = {"coco.yolov3_416": COCO, "voc.faster_rcnn_vgg16": VOC07,
                "voc.fast_rcnn_vgg16": VOC07, "voc.rcnn_vgg16": VOC07, "voc.ssd300_vgg16": VOC0712}


def _recipe(name):
    return importlib.import_module(f"configs.{name}")


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_recipe_is_the_references_schedule(name):
    module = _recipe(name)
    config = module.get_config()
    assert config.is_locked
    validate_config(config)
    batch, steps, bounds, lr, decay, warmup, _ = REFERENCE[name]
    opt = config.optimizer
    assert (config.train.batch_size, config.train.steps, tuple(opt.boundaries)) == (
        batch, steps, bounds)
    assert (opt.name, opt.learning_rate, opt.momentum, opt.weight_decay, opt.warmup_steps) == (
        "sgd", lr, 0.9, decay, warmup)
    schedule = build_schedule(opt, steps)
    for k, b in enumerate(bounds):  # x0.1 exactly at each boundary
        np.testing.assert_allclose([schedule(b - 1), schedule(b)],
                                   [lr * 0.1 ** k, lr * 0.1 ** (k + 1)], rtol=1e-6)
    doc = " ".join(module.__doc__.split())
    for number in (steps, *bounds):  # the docstring states the same steps
        assert f"{number:,}" in doc, (name, number)
    if name in STEP_RECIPES:  # counted in steps: the docstring gives the epochs they make
        epochs = round(steps * batch / STEP_RECIPES[name])
        assert f"about {epochs} epochs of the {STEP_RECIPES[name]:,}" in doc, (name, epochs)
    assert "python train.py --config configs/" + name.replace(".", "/") + ".py" in doc
    cli = ("python -m jaxvision.weights.darknet --cfg" if name == "coco.yolov3_416" else
           "python -m jaxvision.weights.torchvision --model")  # Darknet-53: darknet53.conv.74
    assert cli in doc
    assert "--config.init_from=" in doc and config.init_from_map


def test_voc_ssd_scales_are_ssd_pascal_sizes():
    # ssd_pascal.py: conv4_3 at 10% of 300 px, then min_ratio 20 to max_ratio 90 in steps of
    # floor(70 / 4) = 17 percent; each map's max size is the next one's min size
    ratios = [10] + list(range(20, 91, 17)) + [105]
    expected = [300 * r / 100 for r in ratios]
    scales = _recipe("voc.ssd300_vgg16").get_config().model_kwargs.scales
    np.testing.assert_allclose(np.array(scales) * 300, expected, atol=1e-9)
    assert expected[:6] == [30, 60, 111, 162, 213, 264] and expected[6] == 315


def _abstract_model(config, num_classes):
    """(eval input [H, W, 3], abstract variables) of the recipe's model for `num_classes`, at the
    size its eval transform gives a photograph."""
    task = get_task(config.task, tuple(f"c{k}" for k in range(1, num_classes)),
                    **config.task_kwargs)
    model = get_model(config.model, num_classes=num_classes, **config.model_kwargs)
    _, eval_transform = make_transforms(config, task.fields)
    example = eval_transform(blank_example(config, skimage.data.astronaut()), 0)
    batch = {k: np.asarray(v)[None] for k, v in example.items()}
    return example["image"].shape, jax.eval_shape(
        lambda: task.init(model, jax.random.key(0), batch))


def _count(tree):
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def _torchvision_count(builder, **kwargs):
    """torchvision's parameters and BatchNorm statistics: (learnable, running) element counts
    of the randomly initialised model's state dict."""
    from torchvision.models import detection

    import tests.conftest  # noqa: F401  (torchvision importable without its compiled ops)

    sd = getattr(detection, builder)(weights=None, weights_backbone=None, **kwargs).state_dict()
    running = ("running_mean", "running_var")
    stats = sum(v.numel() for k, v in sd.items() if k.endswith(running))
    learn = sum(v.numel() for k, v in sd.items()
                if not k.endswith(running + ("num_batches_tracked",)))
    return learn, stats


def _vgg16_convs():
    """VGG-16 (configuration D): 13 3x3 convs with biases."""
    widths = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
              (256, 512)] + [(512, 512)] * 5
    return sum(9 * cin * cout + cout for cin, cout in widths)


def _dense(n_in, n_out):
    return n_in * n_out + n_out


@pytest.mark.slow
def test_vgg16_conv_count_is_torchvisions():
    import torchvision

    import tests.conftest  # noqa: F401

    features = torchvision.models.vgg16(weights=None).features
    assert _vgg16_convs() == sum(p.numel() for p in features.parameters()) == 14_714_688


# VOC, 21 classes: the VGG-16 convs, then per model (Ren et al.; Girshick 2015; Girshick et al.)
FC67 = _dense(7 * 7 * 512, 4096) + _dense(4096, 4096)
FAST_HEAD = FC67 + _dense(4096, 21) + _dense(4096, 4 * 21)
RPN = 9 * 512 * 512 + 512 + _dense(512, 9) + _dense(512, 4 * 9)  # 3x3 conv, 1x1 cls and deltas
# R-CNN: softmax (fine-tuning), one linear SVM per output on fc7 and the class-specific box
# regressor on pool5 (both with K = 21 columns here, the background's unused)
RCNN_HEAD = FC67 + _dense(4096, 21) + _dense(4096, 21) + _dense(7 * 7 * 512, 4 * 21)
PARAMS = {
    "voc.faster_rcnn_vgg16": _vgg16_convs() + RPN + FAST_HEAD,
    "voc.fast_rcnn_vgg16": _vgg16_convs() + FAST_HEAD,
    "voc.rcnn_vgg16": _vgg16_convs() + RCNN_HEAD,
    "coco.yolov3_416": YOLOV3_COCO_PARAMS,
}
TORCHVISION = {  # recipe -> (torchvision builder, its num_classes)
    "coco.faster_rcnn_r50_fpn": ("fasterrcnn_resnet50_fpn", 91),
    "coco.mask_rcnn_r50_fpn": ("maskrcnn_resnet50_fpn", 91),
    "coco.ssd300_vgg16": ("ssd300_vgg16", 91),
    "voc.ssd300_vgg16": ("ssd300_vgg16", 21),
}


def test_vgg16_faster_rcnn_count():
    # 137,073,622: Caffe's model has a 2-way softmax objectness, 4,617 more (the docstring)
    assert PARAMS["voc.faster_rcnn_vgg16"] == 137_073_622


@pytest.mark.parametrize("name", [  # counting torchvision's model takes a second or two
    pytest.param(n, marks=pytest.mark.slow) if n in TORCHVISION else n for n in sorted(REFERENCE)])
def test_recipe_model_has_the_reference_parameter_count(name):
    config = _recipe(name).get_config()
    classes = TORCHVISION[name][1] if name in TORCHVISION else 81 if "coco" in name else 21
    shape, variables = _abstract_model(config, classes)
    assert shape == (REFERENCE[name][-1],) * 2 + (3,)
    if name in TORCHVISION:
        builder, _ = TORCHVISION[name]
        expected, stats = _torchvision_count(builder, num_classes=classes)
        assert _count(variables.get("batch_stats", {})) == stats
    else:
        expected = PARAMS[name]
    assert _count(variables["params"]) == expected


def _coco_folder(root):
    """The shared photographs at 8x their size (512-1440 px a side, COCO's range: the 800 /
    1,333 rule scales some up, some down), the val split cut to its first image (the rocket,
    856 x 1280, 6 instances and a crowd region) to keep the evaluation short."""
    data = write_coco_photos(str(root), scale=8)["val"]
    first = data["images"][0]["id"]
    data.update(images=data["images"][:1],
                annotations=[a for a in data["annotations"] if a["image_id"] == first])
    with open(os.path.join(root, "annotations", "instances_val.json"), "w") as f:
        json.dump(data, f)
    return root


@pytest.mark.slow
def test_coco_faster_rcnn_recipe_runs_at_full_size(tmp_path):
    """The docstring's two commands (ImageNet ResNet-50 converted by the weights CLI, train.py
    with `--config.init_from`) on a COCO folder, with only the paths and step counts overridden:
    2 steps of one 1,344 x 1,344 image on one device, then the evaluation. The frozen stem is
    still torchvision's ResNet-50 after training, a trained stage is not."""
    torch = pytest.importorskip("torch")
    import torchvision

    import tests.conftest  # noqa: F401
    from jaxvision.weights import torchvision as tv_weights

    torch.manual_seed(0)
    resnet = torchvision.models.resnet50(weights=None).state_dict()
    for key, value in resnet.items():  # BatchNorm away from its initial 1 / 0 / 0 / 1
        if value.is_floating_point() and value.ndim == 1 and "fc." not in key:
            value.copy_(torch.rand_like(value) * 0.5 + 0.75)
    pth, ckpt = str(tmp_path / "resnet50.pth"), str(tmp_path / "resnet50_imagenet")
    torch.save(resnet, pth)
    tv_weights.main(["--model", "resnet50", "--in", pth, "--out", ckpt, "--no-head"])
    root = _coco_folder(tmp_path / "coco")
    workdir = str(tmp_path / "work")
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "--config",
           os.path.join(REPO, "configs", "coco", "faster_rcnn_r50_fpn.py"),
           f"--workdir={workdir}", f"--config.dataset=coco:{root}", f"--config.init_from={ckpt}",
           f"--config.data.data_dir={tmp_path / 'tfds'}", "--config.train.steps=2",
           "--config.train.batch_size=1", "--config.train.eval_batch_size=1",
           "--config.train.eval_every=2", "--config.train.log_every=1",
           "--config.train.checkpoint_every=2", "--config.optimizer.warmup_steps=1",
           "--config.optimizer.boundaries=(2,)"]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    logged = records(workdir)
    train = [r for r in logged if r["split"] == "train"]
    assert len(train) == 2 and all(np.isfinite(r["loss"]) for r in train)
    final = [r for r in logged if r["split"] == "test"][-1]
    assert final["eval/images"] == 1 and final["eval/gt_instances"] == 7
    assert 0.0 <= final["bbox/AP"] <= 1.0
    assert os.path.isfile(os.path.join(workdir, "eval", "2", "coco_instances_results.json"))
    state = saved_state(workdir, 2)
    body = state["params"]["backbone"]["body"]
    hwio = lambda w: w.numpy().transpose(2, 3, 1, 0)  # noqa: E731  torch OIHW -> HWIO
    np.testing.assert_array_equal(body["conv1"]["kernel"], hwio(resnet["conv1.weight"]))
    np.testing.assert_array_equal(body["layer1_0"]["conv2"]["kernel"],
                                  hwio(resnet["layer1.0.conv2.weight"]))
    np.testing.assert_array_equal(body["layer3_0"]["bn1"]["scale"],
                                  resnet["layer3.0.bn1.weight"].numpy())
    np.testing.assert_array_equal(state["batch_stats"]["backbone"]["body"]["bn1"]["mean"],
                                  resnet["bn1.running_mean"].numpy())
    assert not np.array_equal(body["layer2_0"]["conv1"]["kernel"],
                              hwio(resnet["layer2.0.conv1.weight"]))
