"""from_torchvision: key/layout errors, head handling, tensors vs arrays; the CLI round trip."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models import get_model
from jaxvision.weights import StateDictMismatchError, from_torchvision, load_variables
from jaxvision.weights.torchvision import main
from tests.weights.reference import torchvision_model


@pytest.fixture(scope="module")
def resnet18_state():
    return torchvision_model("resnet18").state_dict()


def test_missing_and_unexpected_keys_are_listed(resnet18_state):
    state = dict(resnet18_state)
    del state["layer2.0.downsample.1.running_var"]
    state["layer2.0.extra.weight"] = state["layer2.0.conv1.weight"]
    with pytest.raises(StateDictMismatchError) as info:
        from_torchvision("resnet18", state)
    assert info.value.missing == ["layer2.0.downsample.1.running_var"]
    assert info.value.unexpected == ["layer2.0.extra.weight"]
    assert "layer2.0.downsample.1.running_var" in str(info.value)
    assert "layer2.0.extra.weight" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_wrong_architecture_is_a_mismatch(resnet18_state):
    with pytest.raises(StateDictMismatchError, match="missing"):
        from_torchvision("resnet50", resnet18_state)


def test_wrong_shape_names_the_key(resnet18_state):
    state = dict(resnet18_state)
    state["layer1.0.conv1.weight"] = state["layer1.0.conv1.weight"][:, :, :1, :1]
    with pytest.raises(ValueError, match=r"layer1\.0\.conv1\.weight"):
        from_torchvision("resnet18", state)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="model name"):
        from_torchvision("mobilenet_v2", {})


def test_layouts_and_collections(resnet18_state):
    v = from_torchvision("resnet18", resnet18_state)
    w = resnet18_state["layer1.0.conv1.weight"].numpy()
    np.testing.assert_array_equal(v["params"]["layer1_0"]["conv1"]["kernel"],
                                  w.transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(v["params"]["fc"]["kernel"], resnet18_state["fc.weight"].T)
    np.testing.assert_array_equal(v["batch_stats"]["bn1"]["var"],
                                  resnet18_state["bn1.running_var"])
    # numpy arrays work as well as tensors
    v2 = from_torchvision("resnet18", {k: t.numpy() for k, t in resnet18_state.items()})
    jax.tree.map(np.testing.assert_array_equal, v, v2)


def test_num_classes_inferred_and_head_dropped():
    import torchvision

    state = torchvision.models.resnet18(num_classes=7).state_dict()
    assert from_torchvision("resnet18", state)["params"]["fc"]["kernel"].shape == (512, 7)
    body = from_torchvision("resnet18", state, head=False)
    assert "fc" not in body["params"]
    model = get_model("resnet18", num_classes=None)
    logits, features = model.apply(body, jnp.zeros((1, 32, 32, 3)), train=False)
    assert logits is None and features["stage5"].shape == (1, 1, 1, 512)


def test_efficientnet_depthwise_and_se_mapping():
    import torchvision

    state = torchvision.models.efficientnet_b0().state_dict()
    v = from_torchvision("efficientnet_b0", state)["params"]
    # stage 1 has no expansion: block.0 is the depthwise conv, block.1 the SE.
    assert v["block1_0"]["depthwise"]["conv"]["kernel"].shape == (3, 3, 1, 32)
    np.testing.assert_array_equal(v["block1_0"]["se"]["fc1"]["bias"],
                                  state["features.1.0.block.1.fc1.bias"])
    np.testing.assert_array_equal(v["block2_0"]["project"]["bn"]["scale"],
                                  state["features.2.0.block.3.1.weight"])


def test_cli_round_trip(tmp_path, resnet18_state):
    """The CLI's checkpoint, loaded back and run, gives torchvision's eval-mode logits."""
    import torch

    pth = tmp_path / "resnet18.pth"
    torch.save(resnet18_state, pth)
    out = tmp_path / "ckpt"
    main(["--model", "resnet18", "--in", str(pth), "--out", str(out)])
    restored = load_variables(str(out))
    assert set(restored) == {"params", "batch_stats"}
    tmodel = torchvision_model("resnet18")  # the fixture's weights (same seed)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    got = jax.jit(lambda v, x: get_model("resnet18").apply(v, x, train=False)[0])(
        restored, jnp.asarray(x.transpose(0, 2, 3, 1)))
    assert np.max(np.abs(np.asarray(got) - expected)) <= 1e-4 * np.max(np.abs(expected))


def test_alexnet_fc6_inputs_are_permuted_from_chw_to_hwc():
    """torch flattens pool5 [256, 6, 6] in (c, h, w) order, the Flax model in (h, w, c): fc6's
    kernel row for (h, w, c) is torch's weight column c * 36 + h * 6 + w, and fc6 of the same map
    is the same vector either way."""
    import torchvision

    state = torchvision.models.alexnet(num_classes=3).state_dict()
    weight = state["classifier.1.weight"].numpy()  # [4096, 256 * 6 * 6]
    kernel = from_torchvision("alexnet", state)["params"]["fc6"]["kernel"]  # [6 * 6 * 256, 4096]
    h, w, c = np.meshgrid(np.arange(6), np.arange(6), np.arange(256), indexing="ij")
    rows = ((h * 6 + w) * 256 + c).ravel()
    cols = (c * 36 + h * 6 + w).ravel()
    np.testing.assert_array_equal(kernel[rows], weight[:, cols].T)
    pool5 = np.random.default_rng(0).standard_normal((256, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(pool5.transpose(1, 2, 0).reshape(-1) @ kernel,
                               weight @ pool5.reshape(-1), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_cli_as_module_and_bad_path(tmp_path, resnet18_state):
    import torch

    pth = tmp_path / "w.pth"
    torch.save({"state_dict": resnet18_state}, pth)  # a wrapped state dict is unwrapped
    out = tmp_path / "ckpt"
    result = subprocess.run(
        [sys.executable, "-m", "jaxvision.weights.torchvision", "--model", "resnet18",
         "--in", str(pth), "--out", str(out)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "11,689,512 parameters" in result.stdout
    assert load_variables(str(out))["params"]["fc"]["kernel"].shape == (512, 1000)
    with pytest.raises(ValueError, match="checkpoint path"):
        load_variables(str(tmp_path / "nope"))


@pytest.mark.slow
def test_vgg_without_head_keeps_fc6_fc7_for_the_detectors(tmp_path):
    """`--no-head` on VGG-16 drops only fc8; the checkpoint goes into the VOC Faster R-CNN
    recipe through its `init_from_map` (convs to the backbone, fc6 / fc7 to the box head)."""
    import torch
    import torchvision

    from configs.voc import faster_rcnn_vgg16
    from jaxvision.train.init_from import merge_pretrained
    from jaxvision.weights.torchvision import load_variables, main

    state = torchvision.models.vgg16(weights=None).state_dict()
    torch.save(state, tmp_path / "vgg16.pth")
    main(["--model", "vgg16", "--in", str(tmp_path / "vgg16.pth"), "--out",
          str(tmp_path / "ckpt"), "--no-head"])
    given = load_variables(str(tmp_path / "ckpt"))
    assert sorted(k for k in given["params"] if k.startswith("fc")) == ["fc6", "fc7"]
    config = faster_rcnn_vgg16.get_config()
    model = get_model(config.model, num_classes=21, **config.model_kwargs)
    fresh = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)),
                                              train=False))
    out = merge_pretrained(fresh, given, heads=getattr(model, "head_names", ()),
                           mapping=config.init_from_map)
    head = out["params"]["roi_heads"]["box_head"]
    np.testing.assert_array_equal(head["fc7"]["kernel"], state["classifier.3.weight"].numpy().T)
    np.testing.assert_array_equal(out["params"]["backbone"]["conv5_3"]["bias"],
                                  state["features.28.bias"].numpy())
