"""AutoAugment (jaxvision.data.autoaugment) against torchvision on photographs: the ImageNet
table, every op at every magnitude bin and sign, whole draws, and the pipeline's hook."""

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from torchvision.transforms import v2

from jaxvision.data import augment, autoaugment, transforms
from jaxvision.data.pipeline import ExampleTransform
from jaxvision.train.config import base_config, validate_data

PHOTO = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((96, 72), Image.BILINEAR))
FILLS = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}  # ops that uncover pixels


def test_imagenet_table_is_torchvisions():
    reference = v2.AutoAugment()._get_policies(v2.AutoAugmentPolicy.IMAGENET)
    assert len(reference) == 25
    assert autoaugment.IMAGENET_POLICY == tuple(tuple(sub) for sub in reference)


@pytest.mark.parametrize("op", autoaugment.OPS)
def test_op_matches_torchvision_at_every_bin(op):
    """Each of the 14 ops, at all 10 magnitude bins and both signs, on a 72x96 photograph:
    torchvision v2's op on the PIL image at its own bin values gives the same pixels."""
    assert len(autoaugment.OPS) == 14
    height, width = PHOTO.shape[:2]
    bins_of, signed = v2.AutoAugment._AUGMENTATION_SPACE[op]
    bins = bins_of(autoaugment.NUM_BINS, height, width)
    for fill in ((0, 128) if op in FILLS else (0,)):
        tv = v2.AutoAugment(fill=fill)
        for b in range(autoaugment.NUM_BINS) if bins is not None else [None]:
            value = autoaugment.magnitude(op, b, height, width)
            want = 0.0 if bins is None else float(bins[b])
            assert value == want, (op, b)
            for sign in (1, -1) if signed else (1,):
                ours = autoaugment.apply_op(PHOTO, op, sign * value, fill)
                ref = tv._apply_image_or_video_transform(
                    Image.fromarray(PHOTO), op, sign * want, tv.interpolation, tv._fill)
                np.testing.assert_array_equal(ours, np.asarray(ref), err_msg=f"{op} {b} {sign}")
    if op in ("Rotate", "Solarize"):
        before = autoaugment.apply_op(PHOTO, op, autoaugment.magnitude(op, 3, height, width))
        assert (before != PHOTO).any()  # a bin that changes the image


def test_whole_draws_match_torchvision_autoaugment(monkeypatch):
    """autoaugment(image, rng) equals torchvision v2's AutoAugment fed the same draws: the
    sub-policy index, each op's uniform (applied when below its probability) and its sign's
    (negative below 1/2; torchvision draws a sign only for an applied signed op)."""
    tv = v2.AutoAugment()
    applied = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        index, draws = int(rng.integers(25)), rng.random(4)
        queue = []
        for k, (op, probability, _) in enumerate(tv._policies[index]):
            queue.append(draws[2 * k])
            if draws[2 * k] <= probability and tv._AUGMENTATION_SPACE[op][1]:
                queue.append(draws[2 * k + 1])
        with monkeypatch.context() as patch:
            patch.setattr(torch, "randint", lambda high, size, i=index: torch.tensor(i))
            patch.setattr(torch, "rand", lambda size, q=queue: torch.tensor(q.pop(0)))
            want = np.asarray(tv(Image.fromarray(PHOTO)))
        assert not queue
        ours = autoaugment.autoaugment(PHOTO, np.random.default_rng(seed))
        np.testing.assert_array_equal(ours, want, err_msg=f"seed {seed}")
        applied += (ours != PHOTO).any()
    assert applied > 20


def test_draw_frequencies_follow_the_table():
    """Over 20,000 draws each op runs as often as the table says (float64 expectation: mean
    over sub-policies of its probabilities), signed ops half each way; probability 1.0 always
    and 0.0 never runs."""
    rng = np.random.default_rng(0)
    n = 20_000
    counts, negative = {}, {}
    for _ in range(n):
        for op, value in autoaugment.autoaugment_params(rng, 224, 224):
            counts[op] = counts.get(op, 0) + 1
            negative[op] = negative.get(op, 0) + (value < 0)
    for op in autoaugment.OPS:
        p = sum(q for sub in autoaugment.IMAGENET_POLICY for name, q, _ in sub if name == op) / 25
        sigma = np.sqrt(n * 2 * max(p, 1e-3))  # an op appears at most twice per draw
        assert abs(counts.get(op, 0) - n * p) < 5 * sigma, op
    assert counts["Rotate"] > 0 and abs(negative["Rotate"] / counts["Rotate"] - 0.5) < 0.05
    assert negative["Solarize"] == 0  # unsigned
    edge = ((("Invert", 1.0, None), ("Equalize", 0.0, None)),)
    for seed in range(50):
        assert autoaugment.autoaugment_params(np.random.default_rng(seed), 8, 8, edge) == (
            ("Invert", 0.0),)


def test_pipeline_runs_it_after_the_crop_in_training_only():
    train = ExampleTransform(("image", "label"), crop="random_resized", image_size=64,
                             autoaugment="imagenet", seed=3)
    example = {"image": skimage.data.chelsea(), "label": np.int64(2)}
    for index in range(3):
        crop = augment.imagenet_train_crop(example["image"], 64,
                                           np.random.default_rng([3, index, 5]))
        want = autoaugment.autoaugment(crop, np.random.default_rng([3, index, 8]))
        got = train(example, index)["image"]
        np.testing.assert_allclose(got, transforms.normalise(want), atol=1e-6)
    default = ExampleTransform(("image", "label"), crop="random_resized", image_size=64, seed=3)
    assert default.autoaugment == "none" and train.eval().autoaugment == "none"
    np.testing.assert_array_equal(train.eval()(example, 0)["image"],
                                  default.eval()(example, 0)["image"])


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="data.autoaugment.*'imagenet'.*'cifar10'"):
        ExampleTransform(("image", "label"), autoaugment="cifar10")
    with pytest.raises(ValueError, match="data.autoaugment.*box and segmentation"):
        ExampleTransform(("image", "boxes"), autoaugment="imagenet")
    data = base_config().data
    assert data.autoaugment == "none"
    data.autoaugment = "svhn"
    with pytest.raises(ValueError, match="config.data.autoaugment"):
        validate_data(data)
    with pytest.raises(ValueError, match="autoaugment op"):
        autoaugment.apply_op(PHOTO, "Cutout", 1.0)
    with pytest.raises(ValueError, match="Rotate magnitude bin"):
        autoaugment.magnitude("Rotate", 10, 8, 8)
