"""`config.init_from`: the weights CLI's checkpoint becomes the initial params of a run."""

import os
import re

import chex
import jax
import numpy as np
import pytest

from configs import resnet18 as resnet18_config
from jaxvision.models import get_model
from jaxvision.train import loop
from jaxvision.train.config import validate_config
from jaxvision.train.init_from import InitFromMismatchError, merge_pretrained
from jaxvision.weights import torchvision as tv_weights

TINY = dict(image_size=32)
TINY_SHAPES = dict(num_train=16, num_test=8)  # config.data.builders.shapes
HEADS = get_model("resnet18").head_names  # ("fc",)


def tiny_classification_config(data_dir: str, steps: int = 4):
    config = resnet18_config.get_config()
    config.data.update(dict(data_dir=data_dir, **TINY))
    config.data.builders.shapes.update(TINY_SHAPES)
    config.train.update(dict(steps=steps, batch_size=8, eval_batch_size=8, log_every=2,
                             eval_every=100, checkpoint_every=100))
    config.optimizer.warmup_steps = 1
    return config


def _tree(**leaves):
    return {k: np.full(shape, 1.0, np.float32) for k, shape in leaves.items()}


def test_merge_takes_matching_leaves_and_keeps_a_different_head():
    fresh = {"params": {"conv": _tree(kernel=(3, 3, 3, 8)), "fc": _tree(kernel=(8, 3), bias=(3,))},
             "batch_stats": {"bn": _tree(mean=(8,))}}
    given = {"params": {"conv": {"kernel": np.full((3, 3, 3, 8), 2.0, np.float32)},
                        "fc": {"kernel": np.zeros((8, 10)), "bias": np.zeros(10)}},
             "batch_stats": {"bn": {"mean": np.full((8,), 5.0)}}}
    out = merge_pretrained(fresh, given, heads=HEADS)
    assert (out["params"]["conv"]["kernel"] == 2).all()
    assert (out["params"]["fc"]["kernel"] == 1).all()
    assert (out["batch_stats"]["bn"]["mean"] == 5).all()
    assert out["batch_stats"]["bn"]["mean"].dtype == np.float32
    headless = {"params": {"conv": given["params"]["conv"]}, "batch_stats": given["batch_stats"]}
    assert (merge_pretrained(fresh, headless, heads=HEADS)["params"]["fc"]["bias"] == 1).all()
    same_head = {**given, "params": {**given["params"], "fc": _tree(kernel=(8, 3), bias=(3,))}}
    same_head["params"]["fc"]["bias"] = np.full(3, 7.0, np.float32)
    assert (merge_pretrained(fresh, same_head, heads=HEADS)["params"]["fc"]["bias"] == 7).all()


def test_merge_lists_every_mismatch():
    fresh = {"params": {"conv": _tree(kernel=(3, 3, 3, 8)), "bn": _tree(scale=(8,))}}
    given = {"params": {"conv": {"kernel": np.zeros((3, 3, 3, 16))}, "extra": _tree(bias=(2,))}}
    with pytest.raises(InitFromMismatchError) as info:
        merge_pretrained(fresh, given, heads=HEADS, path="ckpt")
    err = info.value
    assert err.missing == ["params/bn/scale"] and err.unexpected == ["params/extra/bias"]
    assert err.shapes == [("params/conv/kernel", (3, 3, 3, 8), (3, 3, 3, 16))]
    assert "config.init_from='ckpt'" in str(err) and isinstance(err, ValueError)


def test_a_dense_kernel_becomes_the_same_convolution():
    """fc6 of an ImageNet VGG (over pool5 flattened in (h, w, c) order) as FCN's 7x7 conv: the
    conv over the 7x7 map equals the dense layer over the flattened map (float64 numpy)."""
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(2 * 3 * 4, 5))
    fresh = {"params": {"fc6": _tree(kernel=(2, 3, 4, 5)), "fc7": _tree(kernel=(1, 1, 5, 6))}}
    given = {"params": {"fc6": {"kernel": dense}, "fc7": {"kernel": np.ones((5, 6))}}}
    out = merge_pretrained(fresh, given, heads=(), mapping=("fc6:fc6", "fc7:fc7"))
    conv = out["params"]["fc6"]["kernel"]
    pool5 = rng.normal(size=(2, 3, 4))  # [h, w, c]
    np.testing.assert_allclose(np.einsum("hwc,hwco->o", pool5, conv.astype(np.float64)),
                               pool5.reshape(-1) @ dense, rtol=1e-5)
    assert (out["params"]["fc7"]["kernel"] == 1).all()
    wrong = {"params": {"fc6": {"kernel": dense.T}, "fc7": {"kernel": np.ones((5, 6))}}}
    with pytest.raises(InitFromMismatchError, match=r"params/fc6/kernel: expected \(2, 3, 4, 5\)"
                                                    r", got \(5, 24\)"):
        merge_pretrained(fresh, wrong, heads=(), mapping=("fc6:fc6", "fc7:fc7"))


@pytest.mark.slow
@pytest.mark.parametrize("torch_classes", [3, 10])
def test_training_starts_from_the_cli_checkpoint(tmp_path, data_dir, torch_classes):
    torch = pytest.importorskip("torch")
    import torchvision

    torch.manual_seed(torch_classes)
    net = torchvision.models.resnet18(num_classes=torch_classes)
    pth, ckpt = str(tmp_path / "w.pth"), str(tmp_path / "ckpt")
    torch.save(net.state_dict(), pth)
    tv_weights.main(["--model", "resnet18", "--in", pth, "--out", ckpt])
    imported = tv_weights.from_torchvision("resnet18", net.state_dict())

    config = tiny_classification_config(data_dir)
    config.init_from = ckpt
    trainer = loop.Trainer(config, str(tmp_path / "work"))
    state = jax.device_get(trainer.initial_state())
    fresh = jax.device_get(loop.Trainer(
        tiny_classification_config(data_dir), str(tmp_path / "fresh")).initial_state())
    body = {k: v for k, v in imported["params"].items() if k != "fc"}
    chex.assert_trees_all_equal({k: v for k, v in state.params.items() if k != "fc"}, body)
    chex.assert_trees_all_equal(state.batch_stats, imported["batch_stats"])
    if torch_classes == 3:  # same head: imported too
        chex.assert_trees_all_equal(state.params["fc"], imported["params"]["fc"])
    else:  # 10 torchvision classes vs 3 shapes classes: the head stays at its initialisation
        chex.assert_trees_all_equal(state.params["fc"], fresh.params["fc"])
    assert os.path.isdir(ckpt)


def test_init_from_a_wrong_model_names_the_mismatch(tmp_path, data_dir):
    ckpt = str(tmp_path / "ckpt")
    tv_weights.save_variables(ckpt, {"params": {"conv1": {"kernel": np.zeros((3, 3, 3, 8),
                                                                             np.float32)}}})
    config = tiny_classification_config(data_dir)
    config.init_from = ckpt
    with pytest.raises(InitFromMismatchError, match=r"params/conv1/kernel: expected "
                                                    r"\(7, 7, 3, 64\), got \(3, 3, 3, 8\)"):
        loop.Trainer(config, str(tmp_path / "work")).initial_state()


def test_init_from_map_places_imagenet_resnet50_as_torchvision_does():
    # torchvision's weights_backbone: the ImageNet ResNet-50 state dict loaded into the
    # detector's backbone.body; ours: the weights CLI's checkpoint placed by ':backbone/body'
    torch = pytest.importorskip("torch")
    import torchvision

    import tests.conftest  # noqa: F401

    torch.manual_seed(0)
    resnet = torchvision.models.resnet50(weights=None).state_dict()
    detector = torchvision.models.detection.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=5)
    detector.backbone.body.load_state_dict(resnet, strict=False)  # fc is not in the body
    want = tv_weights.from_torchvision("fasterrcnn_resnet50_fpn", detector.state_dict())
    given = tv_weights.from_torchvision("resnet50", resnet, head=False)
    fresh = jax.tree.map(np.asarray, want)  # any leaf outside the body: kept as it is
    fresh["params"]["backbone"]["body"] = jax.tree.map(np.zeros_like,
                                                       fresh["params"]["backbone"]["body"])
    out = merge_pretrained(fresh, given, heads=(), mapping=(":backbone/body",))
    chex.assert_trees_all_equal(out, want)


def _fresh():
    return {"params": {"backbone": {"body": {"conv": _tree(kernel=(3, 3, 3, 8))}},
                       "head": {"fc6": _tree(kernel=(4, 2))}},
            "batch_stats": {"backbone": {"body": {"bn": _tree(mean=(8,))}}}}


def test_init_from_map_moves_prefixes_and_keeps_the_rest():
    given = {"params": {"conv": {"kernel": np.full((3, 3, 3, 8), 2.0, np.float32)},
                        "fc6": {"kernel": np.full((4, 2), 3.0, np.float32)},
                        "fc8": {"kernel": np.zeros((2, 9), np.float32)}},  # under no SRC
             "batch_stats": {"bn": {"mean": np.full(8, 5.0, np.float32)}}}
    out = merge_pretrained(_fresh(), given, heads=(),
                           mapping=("conv:backbone/body/conv", "bn:backbone/body/bn/",
                                    "/fc6:head/fc6"))
    assert (out["params"]["backbone"]["body"]["conv"]["kernel"] == 2).all()
    assert (out["params"]["head"]["fc6"]["kernel"] == 3).all()
    assert (out["batch_stats"]["backbone"]["body"]["bn"]["mean"] == 5).all()
    only_conv = merge_pretrained(_fresh(), given, heads=(), mapping=("conv:backbone/body/conv",))
    assert (only_conv["params"]["head"]["fc6"]["kernel"] == 1).all()  # not mapped: fresh
    assert (only_conv["batch_stats"]["backbone"]["body"]["bn"]["mean"] == 1).all()


@pytest.mark.parametrize("mapping, match", [
    ((":backbone/bdy",), r"2 unexpected keys \['params/backbone/bdy/conv/kernel'"),
    # SRC itself is replaced: conv/kernel lands on backbone/body/kernel
    (("conv:backbone/body",), r"2 missing keys \['params/backbone/body/conv/kernel', "
                              r"'batch_stats/backbone/body/bn/mean'\], 1 unexpected keys "
                              r"\['params/backbone/body/kernel'\]"),
    (("fc7:head/fc7",), r"missing keys \[\"any variable under 'fc7'"),
])
def test_init_from_map_mismatches_are_listed(mapping, match):
    given = {"params": {"conv": {"kernel": np.zeros((3, 3, 3, 8), np.float32)}},
             "batch_stats": {"bn": {"mean": np.zeros(8, np.float32)}}}
    with pytest.raises(InitFromMismatchError, match=match):
        merge_pretrained(_fresh(), given, heads=(), mapping=mapping, path="ckpt")


@pytest.mark.parametrize("entry", ["backbone/body", "a:b:c", ":", "conv:/"])
def test_init_from_map_entries_are_checked_before_any_data(entry, data_dir):
    config = tiny_classification_config(data_dir)
    config.init_from_map = (entry,)
    with pytest.raises(ValueError, match=r"config.init_from_map: expected entries 'SRC:DST'.*"
                                         + re.escape(repr(entry))):
        validate_config(config)
