"""The VOC segmentation recipes (configs/voc/fcn8s_vgg16.py, deconvnet_vgg16.py): each loads
locked and valid, its schedule is the reference solver's (typed below from it) and its docstring
says the same numbers, and its model, built abstractly at the recipe's input size, has the
parameter count of the reference's Caffe net (counted by hand from its layer shapes). One
full-size run (slow): the FCN-8s recipe's commands on a tiny SBD + VOC 2011 folder of
photographs at VOC's sizes, two steps and an evaluation."""

import importlib
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import skimage.data

from jaxvision.data import make_transforms
from jaxvision.data.voc import CLASS_NAMES as VOC_CLASSES
from jaxvision.models import get_model
from jaxvision.tasks import get_task
from jaxvision.train.config import validate_config
from jaxvision.train.loop import blank_example
from jaxvision.train.optim import build_schedule
from tests.configs.test_detection_recipes import _count, _dense, _vgg16_convs
from tests.data.sbd_photos import write_sbd, write_voc_segmentation
from tests.train.conftest import REPO, records, saved_state

SBD_TRAIN = 8_498  # SBD train (fcn.berkeleyvision.org data/pascal/README.md)
# fcn.berkeleyvision.org voc-fcn8s-atonce/solver.prototxt: lr on the pixel-summed loss
FCN_CAFFE_LR, FCN_CAFFE_DECAY, FCN_PIXELS = 1e-10, 5e-4, 500 * 375
# recipe -> (global batch, steps, lr boundaries, lr, momentum, weight decay, input side), typed
# from the reference solvers (DeconvNet: training/001_stage_1/solver.prototxt, batch_size 8 x
# iter_size 8)
REFERENCE = {
    "voc.fcn8s_vgg16": (1, 300_000, (), FCN_CAFFE_LR * FCN_PIXELS, 0.99,
                        FCN_CAFFE_DECAY / FCN_PIXELS, 512),
    "voc.deconvnet_vgg16": (8 * 8, 20_000, (9_000, 18_000), 0.01, 0.9, 5e-4, 224),
}


def _recipe(name):
    return importlib.import_module(f"configs.{name}")


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_recipe_is_the_references_schedule(name):
    module = _recipe(name)
    config = module.get_config()
    assert config.is_locked
    validate_config(config)
    batch, steps, bounds, lr, momentum, decay, _ = REFERENCE[name]
    opt = config.optimizer
    assert (config.train.batch_size, config.train.steps, tuple(opt.boundaries)) == (
        batch, steps, bounds)
    assert (opt.name, opt.momentum, opt.warmup_steps, opt.grad_clip_norm) == (
        "sgd", momentum, 0, 0.0)
    np.testing.assert_allclose([opt.learning_rate, opt.weight_decay], [lr, decay], rtol=1e-12)
    schedule = build_schedule(opt, steps)
    if not bounds:  # Caffe's lr_policy "fixed"
        np.testing.assert_allclose([schedule(0), schedule(steps - 1)], [lr, lr], rtol=1e-6)
    for k, b in enumerate(bounds):  # x0.1 exactly at each boundary
        np.testing.assert_allclose([schedule(b - 1), schedule(b)],
                                   [lr * 0.1 ** k, lr * 0.1 ** (k + 1)], rtol=1e-6)
    doc = " ".join(module.__doc__.split())
    for number in (steps, *bounds):
        assert f"{number:,}" in doc, (name, number)
    epochs = round(steps * batch / SBD_TRAIN)
    assert f"about {epochs} epochs of the {SBD_TRAIN:,}" in doc, (name, epochs)
    assert "python train.py --config configs/" + name.replace(".", "/") + ".py" in doc
    assert "python -m jaxvision.weights.torchvision --model vgg16" in doc
    assert "--config.init_from=" in doc and "seg11valid" in doc
    assert config.dataset.startswith("sbd:") and config.data.builders.sbd.voc_root
    assert config.data.builders.sbd.test_split == "seg11valid"


def test_fcn_docstring_states_the_caffe_numbers():
    doc = " ".join(_recipe("voc.fcn8s_vgg16").__doc__.split())
    for text in ("lr 1e-10", "5e-4", "187,500", "lr 1.875e-05", "weight decay 2.667e-09",
                 "65.4", "62.7", "momentum 0.99"):
        assert text in doc, text
    assert _recipe("voc.deconvnet_vgg16").get_config().train.grad_accum_steps == 8  # iter_size


def _abstract_model(config):
    """(eval input [H, W, 3] of a 512 x 512 photograph, abstract variables, model) for VOC."""
    task = get_task(config.task, tuple(f"c{k}" for k in range(1, 21)), **config.task_kwargs)
    model = get_model(config.model, num_classes=21, **config.model_kwargs)
    _, eval_transform = make_transforms(config, task.fields)
    example = eval_transform(blank_example(config, skimage.data.astronaut()), 0)
    batch = {k: np.asarray(v)[None] for k, v in example.items()}
    return example["image"].shape, jax.eval_shape(
        lambda: task.init(model, jax.random.key(0), batch)), model


def _conv(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


# voc-fcn8s-atonce/net.py, 21 classes: VGG-16's convs, fc6 (7x7) and fc7 as convs, the three
# 1x1 score layers and the three bias-free deconvolutions (kernels 4, 4, 16)
FCN8S = (_vgg16_convs() + _conv(7, 512, 4096) + _conv(1, 4096, 4096)
         + _conv(1, 4096, 21) + _conv(1, 512, 21) + _conv(1, 256, 21)
         + 2 * _conv(4, 21, 21, bias=False) + _conv(16, 21, 21, bias=False))
FCN8S_CAFFE_SCALES = 512 + 256  # Scale layers on pool4 / pool3 (lr_mult 0), not in our model
# DeconvNet (the paper's architecture table; stage_1_train.prototxt): the encoder as FCN's, the
# deconvolution fc6 7x7 4096 -> 512, then 13 3x3 deconvolutions mirroring the convs, 1x1 score
DECONV_WIDTHS = [(512, 512)] * 3 + [(512, 512)] * 2 + [(512, 256)] + [(256, 256)] * 2 + [
    (256, 128), (128, 128), (128, 64), (64, 64), (64, 64)]
DECONVNET_WEIGHTS = (_vgg16_convs() + _conv(7, 512, 4096) + _conv(1, 4096, 4096)
                     + _conv(7, 4096, 512) + sum(_conv(3, a, b) for a, b in DECONV_WIDTHS)
                     + _conv(1, 64, 21))
# BatchNorm (scale and shift) after the 13 convs, fc6, fc7, the fc6 deconvolution and 13 deconvs
DECONVNET_BN = 64 * 2 + 128 * 2 + 256 * 3 + 512 * 6 + 4096 * 2 + 512 + sum(
    b for _, b in DECONV_WIDTHS)


def test_hand_counts_are_the_papers():
    assert FCN8S + FCN8S_CAFFE_SCALES == 134_490_527  # "~134M" for FCN-VGG16
    assert _dense(7 * 7 * 512, 4096) == _conv(7, 512, 4096)  # ImageNet fc6 = the 7x7 conv
    assert round(DECONVNET_WEIGHTS / 1e6) == 252  # the paper: 252M parameters
    assert DECONVNET_WEIGHTS == 251_772_245 and DECONVNET_BN == 16_704


@pytest.mark.parametrize("name, expected, stats", [
    ("voc.fcn8s_vgg16", FCN8S, 0),
    ("voc.deconvnet_vgg16", DECONVNET_WEIGHTS + 2 * DECONVNET_BN, 2 * DECONVNET_BN)])
def test_recipe_model_has_the_reference_parameter_count(name, expected, stats):
    config = _recipe(name).get_config()
    shape, variables, model = _abstract_model(config)
    assert shape == (REFERENCE[name][-1],) * 2 + (3,)
    assert _count(variables["params"]) == expected
    assert _count(variables.get("batch_stats", {})) == stats
    # init_from_map names the model's layers: the 13 convs under backbone/, fc6 / fc7 on top
    params = variables["params"]
    for entry in config.init_from_map:
        src, dst = entry.split(":")
        node = params
        for key in dst.split("/"):
            node = node[key]
        assert src.split("/")[-1] == key and "kernel" in node
    assert len(config.init_from_map) == 15
    assert params["fc6"]["kernel"].shape == (7, 7, 512, 4096)
    # DeconvNet at 224: fc6 spans the 7 x 7 pool5 map, as in the paper
    logits, features = jax.eval_shape(
        lambda v: model.apply(v, np.zeros((1, *shape), np.float32), train=False), variables)
    assert logits.shape == (1, *shape[:2], 21)
    if name == "voc.deconvnet_vgg16":
        assert features["fc7"].shape == (1, 1, 1, 4096)


# (photograph, (height, width)) at VOC's sizes: 500 px on the longer side
SBD_PHOTOS = {"2008_000002": ("astronaut", (375, 500), "RGB"),
              "2008_000003": ("rocket", (500, 333), "RGB")}
VOC_PHOTOS = {"2007_000033": ("coffee", (366, 500), "RGB")}


@pytest.mark.slow
def test_fcn8s_recipe_runs_at_full_size(tmp_path):
    """The docstring's commands (ImageNet VGG-16 converted by the weights CLI, train.py with
    `--config.init_from`) on an SBD folder and a VOC 2011 folder with a seg11valid list, only
    paths and step counts overridden: 2 steps of one 500-px image padded to 512 x 512, then the
    evaluation at the image's own size. fc6 / fc7 start as torchvision's classifier layers."""
    torch = pytest.importorskip("torch")
    import torchvision

    import tests.conftest  # noqa: F401
    from jaxvision.weights import torchvision as tv_weights

    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None).state_dict()
    pth, ckpt = str(tmp_path / "vgg16.pth"), str(tmp_path / "vgg16_imagenet")
    torch.save(vgg, pth)
    tv_weights.main(["--model", "vgg16", "--in", pth, "--out", ckpt])
    write_sbd(str(tmp_path / "sbd"), SBD_PHOTOS, {"train": sorted(SBD_PHOTOS)})
    voc = tmp_path / "VOCdevkit" / "VOC2011"
    masks = write_voc_segmentation(str(voc), VOC_PHOTOS, {"seg11valid": sorted(VOC_PHOTOS)})
    workdir = str(tmp_path / "work")
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "--config",
           os.path.join(REPO, "configs", "voc", "fcn8s_vgg16.py"), f"--workdir={workdir}",
           f"--config.dataset=sbd:{tmp_path / 'sbd' / 'benchmark_RELEASE'}",
           f"--config.data.builders.sbd.voc_root={voc}", f"--config.init_from={ckpt}",
           f"--config.data.data_dir={tmp_path / 'tfds'}", "--config.train.steps=2",
           "--config.train.eval_batch_size=1", "--config.train.eval_every=2",
           "--config.train.log_every=1", "--config.train.checkpoint_every=2"]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    logged = records(workdir)
    train = [r for r in logged if r["split"] == "train"]
    assert len(train) == 2 and all(np.isfinite(r["loss"]) for r in train)
    # scored at the image's own size, void and padding left out: from zero score layers, two
    # steps leave one class c predicted everywhere (the biases decide), so the pixel accuracy
    # and IoU of c are c's share of the labelled pixels and the other labelled classes score 0
    final = [r for r in logged if r["split"] == "test"][-1]
    truth = masks["2007_000033"]
    labelled = truth[truth != 255]
    present = sorted(set(labelled.tolist()))
    iou = {c: final[f"iou/{name}"] for c, name in enumerate(("background", *VOC_CLASSES))}
    c = max(present, key=iou.get)
    share = np.mean(labelled == c)
    np.testing.assert_allclose([final["pixel_accuracy"], iou[c], final["miou"]],
                               [share, share, share / len(present)], rtol=1e-9)
    assert all(iou[k] == 0 for k in present if k != c) and len(present) == 3
    assert all(iou[k] is None for k in iou if k not in present)
    state = saved_state(workdir, 2)["params"]
    hwio = lambda w: w.numpy().transpose(2, 3, 1, 0)  # noqa: E731  torch OIHW -> HWIO
    # torch's Linear over pool5 flattened as (C, 7, 7) is the 7x7 conv [4096, 512, 7, 7]
    np.testing.assert_allclose(state["fc6"]["kernel"],
                               hwio(vgg["classifier.0.weight"].reshape(4096, 512, 7, 7)),
                               atol=1e-5)
    np.testing.assert_allclose(state["fc7"]["kernel"][0, 0], vgg["classifier.3.weight"].T,
                               atol=1e-5)
    np.testing.assert_allclose(state["backbone"]["conv3_1"]["kernel"],
                               hwio(vgg["features.10.weight"]), atol=1e-5)
    assert np.abs(state["score_fr"]["kernel"]).max() > 0  # trained: it starts at zero
