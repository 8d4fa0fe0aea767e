"""benchmarks/pod_plan.py: FLOPs against a hand count from the layer shapes, memory against the
train state's own bytes, the fit thresholds, the projection arithmetic, the lowering check,
and the CLI's JSON.

What XLA's cost analysis counts (checked here): 2 FLOPs per multiply-add of a convolution or a
dense layer, only for kernel taps that land inside the input (a 3x3 'same' conv at 7x7 counts
(19/21)^2 of its 9 taps per position), over the forward pass, the weight gradients and every
input gradient except the image's; the rest (BatchNorm, ReLU, pools, loss, optimiser) adds 1
per element of each elementwise op, about 1% of a ResNet-50 or VGG-16 step.
"""

import json
import math
import os

import jax
import jax.numpy as jnp
import pytest

from benchmarks import pod_plan
from configs.imagenet import alexnet, resnet50, vgg16
from jaxvision.layers.depthwise import DepthwiseConv


def _taps(size: int, k: int, s: int, p: int, valid: bool) -> tuple[int, int]:
    """(output size, kernel taps summed over output positions along one axis): all of them,
    or (valid) only those landing inside the unpadded input."""
    out = (size + 2 * p - k) // s + 1
    if not valid:
        return out, out * k
    return out, sum(0 <= o * s - p + t < size for o in range(out) for t in range(k))


def resnet50_macs(valid: bool) -> tuple[float, float]:
    """(forward multiply-adds per 224 image, those of the first conv): torchvision's ResNet-50
    (7x7/2 stem, 3x3/2 max pool, bottlenecks 3-4-6-3 with the stride on the 3x3, 1x1 strided
    projection on each stage's first block, 2048 -> 1000 dense)."""
    convs = []

    def conv(size, cin, cout, k, s, p):
        out, taps = _taps(size, k, s, p, valid)
        convs.append(float(taps) ** 2 * cin * cout)
        return out

    size = conv(224, 3, 64, 7, 2, 3)
    size = (size + 2 - 3) // 2 + 1
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            s = stride if b == 0 else 1
            conv(size, cin, width, 1, 1, 0)
            out = conv(size, width, width, 3, s, 1)
            conv(out, width, 4 * width, 1, 1, 0)
            if b == 0:
                conv(size, cin, 4 * width, 1, s, 0)
            size, cin = out, 4 * width
    return math.fsum(convs) + 2048.0 * 1000, convs[0]


def vgg16_macs(valid: bool) -> tuple[float, float]:
    """(forward multiply-adds per 224 image, the first conv's): configuration D, 3x3 'same'
    convs, 2x2/2 max pools, fc 25088 -> 4096 -> 4096 -> 1000."""
    convs, size, cin = [], 224, 3
    for layer in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                  512, 512, 512, "M"):
        if layer == "M":
            size //= 2
            continue
        _, taps = _taps(size, 3, 1, 1, valid)
        convs.append(float(taps) ** 2 * cin * layer)
        cin = layer
    dense = 25088.0 * 4096 + 4096.0 * 4096 + 4096.0 * 1000
    return math.fsum(convs) + dense, convs[0]


def _small(module, batch: int):
    config = module.get_config()
    config.unlock()
    config.train.update(dict(batch_size=batch, eval_batch_size=batch))
    return config


@pytest.mark.slow
@pytest.mark.parametrize("module,macs,published", [(resnet50, resnet50_macs, 4.09),
                                                   (vgg16, vgg16_macs, 15.47)])
def test_flops_are_the_hand_count(module, macs, published):
    # the hand architectures, counting padding taps too, give the published figures
    # (torchvision's docs: 4.09 and 15.47 "GFLOPS", which are multiply-adds)
    assert round(macs(valid=False)[0] / 1e9, 2) == published
    forward, first = macs(valid=True)
    row = pod_plan.plan("r", _small(module, 4), jax.devices()[:2], compile=False,
                        export=False)
    assert row["per_device_batch"] == 2 and row["devices"] == 2
    train = 2 * (3 * forward - first)  # forward, weight grads, input grads but the image's
    assert train <= row["flops_per_image"] <= 1.02 * train
    assert 2 * forward <= row["flops_per_image_predict"] <= 1.02 * 2 * forward


@pytest.mark.slow
def test_memory_is_the_state_and_one_devices_batch():
    """AlexNet, batch 4 over 2 devices: each device's arguments are the replicated state
    (float32 params and SGD momentum: 2 x 4 bytes x torchvision's 61,100,840 parameters; step,
    skip counters and optax's step count: 4 int32) plus its 2 images and labels and the key;
    the donated state is aliased to the output."""
    row = pod_plan.plan("alexnet", _small(alexnet, 4), jax.devices()[:2], export=False)
    state = 2 * 4 * 61_100_840 + 4 * 4
    batch = 2 * (224 * 224 * 3 * 4 + 4)
    assert row["bytes_arguments"] == state + batch + 8
    assert row["bytes_aliased"] == state
    assert row["bytes_per_device"] == (row["bytes_arguments"] + row["bytes_outputs"]
                                       - state + row["bytes_temporaries"])
    assert row["fits_16g"] and row["fits_80g"]


def test_fit_threshold_is_inclusive():
    assert pod_plan.fits(16 * 2**30, 16)
    assert not pod_plan.fits(16 * 2**30 + 1, 16)


def test_projected_times():
    # 4 GFLOP x 256 images at 40% of 989 (bf16) or 495 (float32 as TF32) TFLOP/s
    step, run = pod_plan.projected(4e9, 256, 1000, "bfloat16", 0.4)
    assert step["H100"] == pytest.approx(1.024e12 / 395.6e12)
    assert run["H100"] == pytest.approx(1000 * 1.024e12 / 395.6e12 / 3600)
    assert step["TPU v5e"] == pytest.approx(1.024e12 / 78.8e12)
    step, _ = pod_plan.projected(4e9, 256, 1000, "float32", 0.4)
    assert step["H100"] == pytest.approx(1.024e12 / 198e12)
    assert step["TPU v4"] == pytest.approx(1.024e12 / 110e12)


def test_export_check_refuses_a_host_callback():
    x = jax.ShapeDtypeStruct((4,), jnp.float32)
    plain = jax.jit(lambda v: jnp.sin(v) * 2)
    host = jax.jit(lambda v: jax.pure_callback(lambda a: a * 2, x, v))
    for platform in pod_plan.PLATFORMS:
        assert pod_plan.exports(plain, (x,), platform) is None
        assert pod_plan.exports(host, (x,), platform) is not None  # a CPU host callback


def test_accelerator_forms_trace_the_library_convolution():
    """On the CPU a depthwise conv is traced as shifted slices; for an accelerator (and so in
    the plan) as the grouped convolution, and the backend answer is restored afterwards."""
    layer = DepthwiseConv(3)
    x = jnp.zeros((1, 8, 8, 4))
    params = layer.init(jax.random.key(0), x)
    trace = lambda: str(jax.make_jaxpr(layer.apply)(params, x))  # noqa: E731
    assert "conv_general_dilated" not in trace()
    with pod_plan.accelerator_forms():
        assert "feature_group_count=4" in trace()
    assert jax.default_backend() == "cpu"


def test_recipes_are_found_and_named():
    found = pod_plan.discover()
    assert "configs/imagenet/resnet50.py" in found
    assert not any(path.endswith("__init__.py") for path in found)
    name, config = pod_plan.load_recipe("configs/imagenet/resnet50.py:flax")
    dotted, same = pod_plan.load_recipe("configs.imagenet.resnet50:flax")
    assert name == dotted == "imagenet/resnet50:flax" and config == same
    with pytest.raises(ValueError, match="configs/imagenet/nope.py"):
        pod_plan.load_recipe("configs/imagenet/nope.py")
    assert pod_plan.num_classes("imagefolder:/data/imagenet") == (1000, False)
    assert pod_plan.num_classes("coco:/data/coco") == (80, False)
    assert pod_plan.num_classes("isbi:/data") == (pod_plan.DEFAULT_CLASSES, True)


@pytest.mark.slow
def test_cli_json_row(capsys, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # main() rewrites it
    pod_plan.main(["configs/imagenet/alexnet.py", "--devices", "2", "--json"])
    row = json.loads(capsys.readouterr().out)
    assert {"recipe", "params", "per_device_batch", "flops_per_image", "bytes_per_device",
            "fits_16g", "fits_32g", "fits_80g", "lowers_tpu", "lowers_cuda"} <= set(row)
    assert (row["recipe"], row["params"], row["per_device_batch"]) == (
        "imagenet/alexnet", 61_100_840, 128)
    assert row["lowers_tpu"] and row["lowers_cuda"] and row["lower_errors"] == {}
    text = pod_plan.table([row, dict(recipe="coco/broken", error="ValueError: x")])
    assert "| imagenet/alexnet | 61.10 M | float32 | 256 (128 x 2) |" in text
    assert "| coco/broken | failed: ValueError: x |" in text
