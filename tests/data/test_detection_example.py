"""The detection example contract (names, dtypes, shapes), empty images, max_boxes truncation,
the SSD recipe on shapes, the derived eval transform, and config validation of data fields."""

import dataclasses

import numpy as np
import pytest

from configs.detection_shapes import detection_shapes
from jaxvision.data import make_transforms, pipeline
from jaxvision.data.shapes_render import RenderSpec, render_example
from jaxvision.train.config import base_config, validate_config

SCHEMA = {"image": np.float32, "boxes": np.float32, "labels": np.int32, "boxes_valid": np.bool_,
          "iscrowd": np.bool_, "image_id": np.int32, "orig_size": np.int32,
          "image_size": np.int32, "num_dropped_boxes": np.int32}


@pytest.fixture(scope="module")
def source():
    spec = RenderSpec(image_size=48, min_shapes=1, max_shapes=3)
    return [render_example(spec, np.random.default_rng([11, i])) for i in range(8)]


def _check_schema(out, max_boxes, size, masks):
    want = dict(SCHEMA, **({"masks": np.uint8} if masks else {}))
    assert set(out) == set(want)
    for key, dtype in want.items():
        assert out[key].dtype == dtype, key
    assert out["image"].shape == (size, size, 3)
    assert out["boxes"].shape == (max_boxes, 4)
    for key in ("labels", "boxes_valid", "iscrowd"):
        assert out[key].shape == (max_boxes,)
    assert out["orig_size"].shape == out["image_size"].shape == (2,)
    assert out["image_id"].shape == out["num_dropped_boxes"].shape == ()
    if masks:
        assert out["masks"].shape == (max_boxes, size, size)


def test_schema_and_values_without_augmentation(source):
    t = pipeline.ExampleTransform(("image", "boxes", "masks"), max_boxes=4)
    ex = source[0]
    out = t(ex, 5)
    _check_schema(out, 4, 48, masks=True)
    n = len(ex["labels"])
    np.testing.assert_array_equal(out["boxes"][:n], ex["boxes"])
    np.testing.assert_array_equal(out["labels"][:n], ex["labels"] + 1)
    np.testing.assert_array_equal(out["boxes_valid"], np.arange(4) < n)
    assert not out["iscrowd"].any() and out["image_id"] == 5  # no id in the source: the index
    np.testing.assert_array_equal(out["orig_size"], [48, 48])
    np.testing.assert_array_equal(out["image_size"], [48, 48])
    assert out["num_dropped_boxes"] == 0
    # the source's own id and companions are kept
    out = t({**ex, "image_id": 123, "iscrowd": np.ones(n, bool)}, 5)
    assert out["image_id"] == 123 and out["iscrowd"][:n].all() and not out["iscrowd"][n:].any()


def test_image_with_no_boxes(source):
    ex = {"image": source[0]["image"], "boxes": np.zeros((0, 4), np.float32),
          "labels": np.zeros(0, np.int64), "masks": np.zeros((0, 48, 48), np.uint8)}
    for t in (pipeline.ExampleTransform(("image", "boxes", "masks"), max_boxes=3,
                                        random_flip=True, min_iou_crop=True, zoom_out=True,
                                        resize="fixed", fixed_size=32),
              pipeline.ExampleTransform(("image", "boxes", "masks"), max_boxes=3,
                                        resize="min_max", min_size=40, max_size=60)):
        for index in range(4):
            out = t(ex, index)
            _check_schema(out, 3, t.static_size[0], masks=True)
            assert not out["boxes_valid"].any() and not out["labels"].any()
            assert not out["masks"].any() and out["num_dropped_boxes"] == 0


def test_truncation_to_max_boxes_is_counted(source):
    ex = next(e for e in source if len(e["labels"]) == 3)
    out = pipeline.ExampleTransform(("image", "boxes"), max_boxes=2)(ex, 0)
    np.testing.assert_array_equal(out["boxes"], ex["boxes"][:2])
    assert out["boxes_valid"].all() and out["num_dropped_boxes"] == 1


def test_ssd_recipe_on_shapes_is_deterministic_and_static(source):
    config = detection_shapes(base_config(), recipe="ssd", size=40)
    train, evaluation = make_transforms(config, ("image", "boxes", "masks"))
    assert evaluation == dataclasses.replace(train.eval(), fields=("image", "boxes"))
    assert not evaluation.photometric_distort  # and no masks: evaluation reads the source's
    changed = 0
    for index, ex in enumerate(source):
        a, b = train(ex, index), train(ex, index)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        _check_schema(a, 4, 40, masks=True)
        valid = a["boxes_valid"]
        boxes = a["boxes"][valid]
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (boxes >= 0).all() and (boxes <= 40).all()
        assert valid.sum() + a["num_dropped_boxes"] == len(ex["labels"])
        # every kept box lies on its (resized) mask
        for box, mask in zip(boxes, a["masks"][valid], strict=True):
            ys, xs = np.nonzero(mask)
            assert len(xs) and xs.min() >= np.floor(box[0]) - 1 and xs.max() < box[2] + 1
        e = evaluation(ex, index)
        np.testing.assert_allclose(e["boxes"][: len(ex["labels"])],
                                   ex["boxes"] * 40 / 48, rtol=1e-5)
        changed += not np.array_equal(a["image"], e["image"])
    assert changed == len(source)  # at least the photometric draws differ


def test_eval_transform_has_no_randomness(source):
    config = detection_shapes(base_config(), recipe="ssd", size=40)
    _, evaluation = make_transforms(config, ("image", "boxes"))
    config.seed = 7
    _, other_seed = make_transforms(config, ("image", "boxes"))
    for index, ex in enumerate(source[:3]):
        a, b = evaluation(ex, index), other_seed(ex, 100 + index)
        for key in ("image", "boxes", "labels", "boxes_valid", "image_size"):
            np.testing.assert_array_equal(a[key], b[key])


def test_classification_and_segmentation_examples_keep_their_fields(source):
    config = base_config()
    for fields in (("image", "label"), ("image", "segmentation")):
        train, _ = make_transforms(config, fields)
        assert set(train(source[0], 0)) == set(fields)


@pytest.mark.parametrize("field, value, match", [
    ("resize", "bicubic", r"config.data.resize: expected one of .*'min_max'.*got 'bicubic'"),
    ("crop", "five", r"config.data.crop: expected one of"),
    ("max_boxes", 0, r"config.data.max_boxes: expected a positive integer, got 0"),
    ("pad_size", -1, r"config.data.pad_size: expected an integer >= 0, got -1"),
    ("min_size", 2000, r"config.data.min_size: expected <= data.max_size=1333, got 2000"),
])
def test_data_config_errors_name_the_field(field, value, match):
    config = base_config()
    config.data[field] = value
    with pytest.raises(ValueError, match=match):
        validate_config(config)


def test_builder_settings_are_per_dataset_and_checked(tmp_path):
    from jaxvision.data import load_splits

    config = base_config()
    validate_config(config)
    config.data.builders.shapes.num_train = 0
    config.data.data_dir = str(tmp_path)
    with pytest.raises(ValueError, match=r"config.data.builders.shapes.num_train: expected an "
                                         r"integer >= 1, got 0"):
        load_splits("shapes", config.data)
    config.data.builders.folder["bogus"] = 1  # base_config is unlocked; a locked one refuses
    with pytest.raises(ValueError, match=r"data.builders.folder: expected keys among "
                                         r"\['holdout'\], got \['bogus'\]"):
        validate_config(config)
    with pytest.raises(ValueError, match=r"dataset: expected 'coco:<root>', got 'coco'"):
        load_splits("coco", config.data)


def test_transform_refuses_box_incompatible_crops():
    with pytest.raises(ValueError, match=r"data.random_crop_padding: expected 0 for box fields"):
        pipeline.ExampleTransform(("image", "boxes"), random_crop_padding=2)
    for fields in (("image", "masks"), ("image", "segmentation")):  # the crops move the image
        with pytest.raises(ValueError, match=r"data.crop: expected 'none' for box and "
                                             r"segmentation fields .*got 'random_resized'"):
            pipeline.ExampleTransform(fields, crop="random_resized")


@pytest.mark.parametrize("recipe, size", [("flip", 128), ("rcnn", 128), ("ssd", 96)])
def test_detection_shapes_recipes_batch_through_the_pipeline(tmp_path_factory, recipe, size):
    from jaxvision.data import eval_batches, load_splits, train_dataset

    config = detection_shapes(base_config(), recipe=recipe, size=size)
    config.data.data_dir = str(tmp_path_factory.getbasetemp() / "detection_shapes")
    config.data.builders.shapes.update(dict(num_train=4, num_test=2))
    validate_config(config)
    splits = load_splits(config.dataset, config.data)
    train, evaluation = make_transforms(config, ("image", "boxes", "masks"))
    batch = next(iter(train_dataset(splits.train, train, global_batch=4, seed=0)))
    assert batch["image"].shape == (4, size, size, 3)
    assert batch["masks"].shape == (4, 4, size, size) and batch["boxes"].shape == (4, 4, 4)
    (batch,) = list(eval_batches(splits.test, evaluation, global_batch=2))
    np.testing.assert_array_equal(batch["orig_size"], [[128, 128]] * 2)
    np.testing.assert_array_equal(batch["image_id"], [0, 1])
    assert (batch["boxes_valid"].sum(1) >= 1).all() and (batch["num_dropped_boxes"] == 0).all()


def test_asking_for_masks_from_a_source_without_them_is_an_error(source):
    ex = {k: v for k, v in source[0].items() if k != "masks"}
    with pytest.raises(ValueError, match=r"masks: expected instance masks \[N, H, W\] in the "
                                         r"source's examples"):
        pipeline.ExampleTransform(("image", "boxes", "masks"))(ex, 0)
    assert "masks" not in pipeline.ExampleTransform(("image", "boxes"))(ex, 0)
