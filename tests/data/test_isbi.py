"""The `isbi:<root>` source on the challenge's file layout (multi-page TIFFs written with PIL),
and U-Net's overlap tiles through the transform and back through the evaluator."""

import os
from types import SimpleNamespace

import jax
import numpy as np
import pytest
import skimage.data

from jaxvision import predict
from jaxvision.data import load_splits, make_transforms
from jaxvision.data.isbi import isbi_sources
from jaxvision.data.tiles import eval_tile_size, mirror_window
from jaxvision.data.transforms import normalise
from jaxvision.models import get_model
from jaxvision.tasks import get_task
from jaxvision.tasks.segmentation import match_labels
from jaxvision.train.config import base_config
from tests.data.isbi_stacks import save_stack, write_isbi


@pytest.fixture(scope="module")
def isbi_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("isbi"))
    return root, write_isbi(root, count=6, size=40)


def test_slices_classes_and_default_holdout(isbi_root):
    root, written = isbi_root
    config = base_config()
    splits = load_splits(f"isbi:{root}", config.data)  # data.builders.isbi.holdout: 5
    assert splits.class_names == ("cell",) and (len(splits.train), len(splits.test)) == (1, 5)
    example = splits.test[4]
    assert example["image_id"] == 5
    assert example["image"].shape == (40, 40, 3) and example["image"].dtype == np.uint8
    for c in range(3):  # grayscale replicated to RGB
        np.testing.assert_array_equal(example["image"][..., c], written["images"][5])
    np.testing.assert_array_equal(example["segmentation"], written["labels"][5] == 255)
    assert set(np.unique(example["segmentation"])) == {0, 1}
    assert len(splits.info["challenge"]) == 2 and "segmentation" not in splits.info["challenge"][1]
    assert get_task("segmentation", splits.class_names).class_names == ("background", "cell")


def test_holdout_bounds(isbi_root):
    root, _ = isbi_root
    assert [len(isbi_sources(root, holdout=h)["test"]) for h in (1, 5)] == [1, 5]
    for bad in (0, 6):
        with pytest.raises(ValueError, match=f"builders.isbi.holdout: expected 1..5 .*got {bad}"):
            isbi_sources(root, holdout=bad)


def test_bad_folders_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="expected the challenge file .*train-volume.tif"):
        isbi_sources(str(tmp_path))
    write_isbi(str(tmp_path), count=3, size=16, test_count=1)
    labels = os.path.join(str(tmp_path), "train-labels.tif")
    stack = np.full((3, 16, 16), 255, np.uint8)
    stack[1, 2, 3] = 128
    save_stack(stack, labels)
    with pytest.raises(ValueError, match="labels.tif: expected values 0 .*and 255.*\\[128\\]"):
        isbi_sources(str(tmp_path), holdout=1)
    save_stack(stack[:2], labels)
    with pytest.raises(ValueError, match="expected train-labels.tif of the volume's shape"):
        isbi_sources(str(tmp_path), holdout=1)
    with open(labels, "wb") as f:
        f.write(b"not a tiff")
    with pytest.raises(ValueError, match="train-labels.tif: expected a readable multi-page TIFF"):
        isbi_sources(str(tmp_path), holdout=1)


def test_mirror_window_is_numpy_symmetric_padding():
    array = np.arange(5 * 7).reshape(5, 7)
    padded = np.pad(array, 13, mode="symmetric")  # pads wider than the array
    for top, left, h, w in [(-13, -13, 31, 33), (-4, 2, 9, 11), (3, -10, 15, 4)]:
        np.testing.assert_array_equal(mirror_window(array, top, left, h, w),
                                      padded[top + 13:top + 13 + h, left + 13:left + 13 + w])


def test_eval_window_is_the_smallest_valid_size_covering_the_image():
    assert [eval_tile_size(h, w, 388, 16) for h, w in
            [(40, 40), (388, 100), (389, 10), (512, 512), (512, 516), (300, 517)]] == [
                388, 388, 404, 516, 516, 532]


def _unet_transforms(**data):
    config = base_config()
    config.data.tile.update(dict(size=388, margin=92, step=16))
    config.data.update(data)
    return make_transforms(config, get_task("segmentation", ("cell",), pixel_weights=True).fields)


def test_train_tile_is_the_mirrored_window_around_a_random_output(isbi_root):
    root, written = isbi_root
    train, _ = _unet_transforms(random_flip=False)
    big = {"image": np.repeat(np.tile(written["images"][0], (14, 14))[..., None], 3, -1),
           "segmentation": np.tile(written["labels"][0] == 255, (14, 14)).astype(np.uint8)}
    out = train(big, 7)  # a 560 x 560 image: the output window lies inside it
    assert out["image"].shape == (572, 572, 3) and out["weights"].shape == (572, 572)
    top, left = 92 - out["image_origin"]
    assert 0 <= top <= 560 - 388 and 0 <= left <= 560 - 388
    labels = np.pad(big["segmentation"], 92, mode="symmetric")[top:top + 572, left:left + 572]
    np.testing.assert_array_equal(out["segmentation"], labels)
    np.testing.assert_array_equal(out["image_size"], (560, 560))
    assert not np.array_equal(train(big, 8)["image_origin"], out["image_origin"])


def test_eval_tile_scores_the_whole_slice_at_its_pixels(isbi_root):
    """A prediction equal to the truth on the output window scores pixel accuracy 1 over every
    pixel of each slice: the evaluator finds the slice at `image_origin` in the tile."""
    root, written = isbi_root
    splits = load_splits(f"isbi:{root}", base_config().data)
    _, evaluate = _unet_transforms()
    task = get_task("segmentation", splits.class_names, pixel_weights=True)
    evaluator = task.evaluator(None, splits)
    for index in range(len(splits.test)):
        out = evaluate(splits.test[index], index)
        assert out["image"].shape == (572, 572, 3) and "weights" not in out
        np.testing.assert_array_equal(out["image_origin"], (92, 92))
        batch = {k: v[None] for k, v in out.items()}
        batch["example_index"] = np.array([index], np.int32)
        truth = match_labels(np.zeros((1, 388, 388, 1)), batch["segmentation"])
        classes = np.asarray(truth).copy()
        evaluator.update({"classes": classes}, batch)
    assert evaluator.confusion.sum() == 5 * 40 * 40
    assert evaluator.result()["pixel_accuracy"] == 1.0


@pytest.mark.slow
def test_predict_image_maps_the_eval_tile_back_to_the_image():
    """jaxvision.predict on a tiled run: the class map of a 30 x 25 photograph crop is the
    model's argmax on the photograph mirrored by the margin, at the photograph's own pixels."""
    config = base_config()  # depth-1 valid U-Net: output = input - 16, a margin of 8
    config.data.tile.update(dict(size=20, margin=8, step=2))
    task = get_task("segmentation", ("cell",))
    model = get_model("unet", num_classes=2, depth=1, base_width=4, padding="VALID")
    _, evaluate = make_transforms(config, task.fields)
    image = skimage.data.coffee()[100:130, 200:225]
    variables = model.init(jax.random.key(0), np.zeros((1, 46, 46, 3), np.float32))
    trainer = SimpleNamespace(config=config, eval_transform=evaluate, task=task, model=model)
    out = predict.predict_image(trainer, SimpleNamespace(eval_variables=variables), image)
    # the input of the 30 x 30 output window at the crop's top-left: 46 x 46
    mirrored = np.pad(normalise(image), ((8, 8), (8, 8 + 5), (0, 0)), mode="symmetric")
    logits, _ = model.apply(variables, mirrored[None])
    expected = np.argmax(np.asarray(logits)[0], -1)[:30, :25]
    assert out["classes"].shape == (30, 25) and (out["classes"] >= 0).all()
    np.testing.assert_array_equal(out["classes"], expected)
