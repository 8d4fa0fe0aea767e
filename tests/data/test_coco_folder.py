"""`coco:<root>`: a generated COCO-format folder (polygons, uncompressed and compressed RLE,
crowd, an image without annotations) prepared without TensorFlow; masks against pycocotools'
own `COCO.annToMask`; bad input (corrupt image, missing image, inverted / outside boxes) gives
errors naming the record and leaves no dataset behind."""

import copy
import json
import os
import types

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from jaxvision.data import ExampleTransform, eval_batches, load_splits

CATEGORIES = [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}, {"id": 5, "name": "bird"}]


def _rle_uncompressed(mask):
    """COCO's uncompressed RLE (column-major run lengths starting with zeros)."""
    flat = np.asarray(mask, np.uint8).flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def _dataset():
    """{'train': json, 'val': json}, {file name: (h, w)}."""
    sizes = {"a.png": (30, 40), "b.png": (24, 36), "c.png": (20, 20), "d.jpg": (32, 28),
             "e.png": (26, 30)}
    blob = np.zeros((24, 36), np.uint8)
    blob[4:15, 6:20] = 1
    compressed = mask_utils.encode(np.asfortranarray(blob))
    compressed["counts"] = compressed["counts"].decode()
    crowd = np.zeros((30, 40), np.uint8)
    crowd[10:25, 20:38] = 1
    train = {"images": [{"id": 10, "file_name": "a.png", "height": 30, "width": 40},
                        {"id": 11, "file_name": "b.png", "height": 24, "width": 36},
                        {"id": 12, "file_name": "c.png", "height": 20, "width": 20}],
             "annotations": [
                 {"id": 1, "image_id": 10, "category_id": 3, "iscrowd": 0,
                  "bbox": [2.5, 3.0, 10.0, 8.0],
                  "segmentation": [[2.5, 3, 12.5, 3, 12.5, 11, 2.5, 11]]},
                 {"id": 2, "image_id": 10, "category_id": 7, "iscrowd": 1,
                  "bbox": [20, 10, 18, 15], "segmentation": _rle_uncompressed(crowd)},
                 {"id": 3, "image_id": 11, "category_id": 5, "iscrowd": 0,
                  "bbox": [6, 4, 14, 11], "segmentation": compressed},
                 {"id": 4, "image_id": 11, "category_id": 3, "iscrowd": 0,
                  "bbox": [30, 18, 6.5, 6],  # reaches 0.5 px past the right edge: clipped
                  "segmentation": [[30, 18, 36, 18, 33, 24]]}],
             "categories": CATEGORIES}
    val = {"images": [{"id": 20, "file_name": "d.jpg", "height": 32, "width": 28},
                      {"id": 21, "file_name": "e.png", "height": 26, "width": 30}],
           "annotations": [{"id": 9, "image_id": 21, "category_id": 7, "iscrowd": 0,
                            "bbox": [1, 1, 5, 5], "segmentation": [[1, 1, 6, 1, 6, 6]]}],
           "categories": CATEGORIES}
    return {"train": train, "val": val}, sizes


def _write(root, data=None, corrupt=()):
    default, sizes = _dataset()
    data = data or default
    os.makedirs(root / "images", exist_ok=True)
    os.makedirs(root / "annotations", exist_ok=True)
    rng = np.random.default_rng(0)
    for name, (h, w) in sizes.items():
        path = root / "images" / name
        if name in corrupt:
            path.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
        else:
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    for split, content in data.items():
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(content))
    return data


def _cfg(tmp_path, skip=False):
    builders = types.SimpleNamespace(coco={"masks": True})
    return types.SimpleNamespace(image_size=0, data_dir=str(tmp_path / "tfds"),
                                 skip_bad_images=skip, builders=builders)


def _no_prepared_dataset(tmp_path):
    """A failed preparation leaves no file and no folder in the data_dir."""
    left = [os.path.join(d, n) for d, dirs, files in os.walk(tmp_path / "tfds")
            for n in dirs + files]
    assert not left, left


def test_coco_folder_boxes_masks_labels_and_pipeline(tmp_path):
    root = tmp_path / "coco"
    data = _write(root)
    splits = load_splits(f"coco:{root}", _cfg(tmp_path))
    assert splits.class_names == ("cat", "bird", "dog")  # sorted category ids 3, 5, 7
    assert splits.label_map == (3, 5, 7)
    assert (len(splits.train), len(splits.test)) == (3, 2)
    reference = COCO(str(root / "annotations" / "instances_train.json"))
    label = {3: 0, 5: 1, 7: 2}
    for i, img in enumerate(data["train"]["images"]):
        ex = splits.train[i]
        assert int(ex["image_id"]) == img["id"]
        np.testing.assert_array_equal(ex["image"],
                                      np.asarray(Image.open(root / "images" / img["file_name"])))
        np.testing.assert_array_equal(ex["orig_size"], [img["height"], img["width"]])
        anns = reference.loadAnns(reference.getAnnIds(imgIds=[img["id"]]))
        assert len(ex["boxes"]) == len(anns)
        for k, ann in enumerate(anns):
            x, y, w, h = ann["bbox"]
            want = np.clip([x, y, x + w, y + h], 0, [img["width"], img["height"]] * 2)
            np.testing.assert_allclose(ex["boxes"][k], want)
            assert ex["labels"][k] == label[ann["category_id"]]
            assert bool(ex["iscrowd"][k]) == bool(ann["iscrowd"])
            np.testing.assert_array_equal(ex["masks"][k], reference.annToMask(ann))
            assert ex["masks"][k].any()
    assert splits.train[2]["boxes"].shape == (0, 4)  # an image with no annotations
    t = ExampleTransform(("image", "boxes", "masks"), max_boxes=3, resize="min_max",
                         min_size=24, max_size=40, size_divisible=8)
    batch = next(iter(eval_batches(splits.test, t, global_batch=2)))
    assert batch["image"].shape == (2, 40, 40, 3) and batch["masks"].shape == (2, 3, 40, 40)
    np.testing.assert_array_equal(batch["image_id"], [20, 21])
    np.testing.assert_array_equal(batch["boxes_valid"].sum(1), [0, 1])
    np.testing.assert_array_equal(batch["labels"][1], [3, 0, 0])  # dog: label 2, shifted by one


def test_corrupt_image_names_the_file_or_is_skipped(tmp_path):
    root = tmp_path / "coco"
    _write(root, corrupt=("b.png",))
    with pytest.raises(ValueError, match=r"image file .*images/b.png: expected a readable image"):
        load_splits(f"coco:{root}", _cfg(tmp_path))
    _no_prepared_dataset(tmp_path)
    splits = load_splits(f"coco:{root}", _cfg(tmp_path, skip=True))
    assert len(splits.train) == 2
    assert [int(splits.train[i]["image_id"]) for i in range(2)] == [10, 12]
    assert [os.path.basename(p) for p in splits.skipped_images["train"]] == ["b.png"]
    assert splits.skipped_images["test"] == []


def _broken(change):
    data, _ = _dataset()
    data = copy.deepcopy(data)
    change(data["train"])
    return data


@pytest.mark.parametrize("change, match", [
    (lambda d: d["annotations"][0].update(image_id=99),
     r"annotation id 1: expected an image_id listed in 'images', got 99"),
    (lambda d: d["images"][0].update(file_name="missing.png"),
     r"expected .*images/missing.png or .*images/train/missing.png .*not found"),
    (lambda d: d["annotations"][2].update(bbox=[6, 4, -3, 11]),
     r"annotation id 3: expected a box with w >= 0 and h >= 0, got an inverted box"),
    (lambda d: d["annotations"][0].update(bbox=[35, 3, 10, 8]),
     r"annotation id 1: expected a box inside the 40x30 image, got \[x, y, w, h\] = "
     r"\[35, 3, 10, 8\]"),
    (lambda d: d["annotations"][0].update(category_id=4),
     r"annotation id 1: expected a category_id in \[3, 5, 7\], got 4"),
])
def test_bad_annotations_are_named_and_leave_nothing(tmp_path, change, match):
    root = tmp_path / "coco"
    _write(root, _broken(change))
    with pytest.raises(ValueError, match=match):
        load_splits(f"coco:{root}", _cfg(tmp_path))
    _no_prepared_dataset(tmp_path)


@pytest.mark.parametrize("listed, exif", [((28, 32), True), ((33, 28), False)])
def test_listed_size_names_a_side_swapping_exif_orientation(tmp_path, listed, exif):
    data, _ = _dataset()
    data["val"]["images"][0].update(height=listed[0], width=listed[1])
    root = tmp_path / "coco"
    _write(root, data)
    image = Image.open(root / "images" / "d.jpg")
    tags = Image.Exif()
    tags[0x0112] = 6  # rotate 90 degrees: a viewer shows it 28 high, 32 wide
    image.save(root / "images" / "d.jpg", "JPEG", exif=tags)
    fix = (r"; the file's EXIF orientation 6 swaps its sides: save the pixels rotated "
           r"\(PIL ImageOps.exif_transpose\) or fix the listed size$")
    with pytest.raises(ValueError, match=rf"instances_val.json image id 20: expected the listed "
                                         rf"size {listed[0]}x{listed[1]} \(height x width\), got "
                                         rf"32x28 in .*images/d.jpg" + (fix if exif else "$")):
        load_splits(f"coco:{root}", _cfg(tmp_path))
    _no_prepared_dataset(tmp_path)
