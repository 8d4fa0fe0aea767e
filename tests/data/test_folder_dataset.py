"""The "folder of images and PNG masks" builder: layout, splits, resizing, class names, errors,
and a batch through the training pipeline."""

import os
import types

import numpy as np
import pytest
from PIL import Image

from jaxvision.data import ExampleTransform, eval_batches, load_splits
from jaxvision.data.folder import folder_builder, split_pairs


def _write(directory, n, size=(40, 48), classes=2, mask_mode="L", seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(directory, "images"), exist_ok=True)
    os.makedirs(os.path.join(directory, "masks"), exist_ok=True)
    h, w = size
    for i in range(n):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), np.uint8)
        mask[5:20, 8:30] = 1 + i % classes
        mask[0, :] = 255  # an ignored row
        Image.fromarray(image).save(os.path.join(directory, "images", f"im{i:02d}.png"))
        m = Image.fromarray(mask)
        if mask_mode != "L":
            m = m.convert(mask_mode)
        m.save(os.path.join(directory, "masks", f"im{i:02d}.png"))


def _cfg(tmp_path, size=32):
    return types.SimpleNamespace(image_size=size, data_dir=str(tmp_path / "tfds"))


def test_folder_builds_splits_resizes_and_keeps_labels(tmp_path):
    root = tmp_path / "mydata"
    _write(root, 10)
    (root / "classes.txt").write_text("cat\ndog\n")
    splits = load_splits(f"folder:{root}", _cfg(tmp_path))
    assert splits.class_names == ("cat", "dog")
    assert (len(splits.train), len(splits.test)) == (9, 1)  # every 8th image is a test image
    ex = splits.test[0]  # im07
    assert ex["image"].shape == (32, 32, 3) and ex["segmentation"].shape == (32, 32)
    raw = np.asarray(Image.open(root / "images" / "im07.png").resize((32, 32), Image.BILINEAR))
    np.testing.assert_array_equal(ex["image"], raw)
    mask = np.asarray(Image.open(root / "masks" / "im07.png").resize((32, 32), Image.NEAREST))
    np.testing.assert_array_equal(ex["segmentation"], mask)
    assert set(np.unique(ex["segmentation"]).tolist()) == {0, 2, 255}
    # through the pipeline: int32 labels with the ignore value kept for the loss to skip
    batch = next(iter(eval_batches(splits.test, ExampleTransform(("image", "segmentation")),
                                   global_batch=1)))
    assert batch["image"].dtype == np.float32 and batch["segmentation"].dtype == np.int32
    assert (batch["segmentation"] == 255).any()


def test_split_folders_and_inferred_class_names(tmp_path):
    root = tmp_path / "split"
    _write(root / "train", 3, classes=3)
    _write(root / "test", 2, classes=3, mask_mode="P")
    splits = split_pairs(str(root))
    assert [len(splits[s]) for s in ("train", "test")] == [3, 2]
    _, names = folder_builder(str(root), image_size=16, data_dir=str(tmp_path / "tfds"))
    assert names == ("class1", "class2", "class3")  # the largest mask value, 255 ignored


def test_changed_files_get_a_new_builder(tmp_path):
    root = tmp_path / "d"
    _write(root, 3)
    first, _ = folder_builder(str(root), data_dir=str(tmp_path / "tfds"))
    _write(root, 4)
    second, _ = folder_builder(str(root), data_dir=str(tmp_path / "tfds"))
    assert first.builder_config.name != second.builder_config.name


def test_errors_name_the_file_and_what_was_expected(tmp_path):
    root = tmp_path / "bad"
    _write(root, 3)
    os.remove(root / "masks" / "im01.png")
    with pytest.raises(ValueError, match=r"mask: expected .*im01.png for image im01.png"):
        split_pairs(str(root))
    rgb = tmp_path / "rgb"
    _write(rgb, 3, mask_mode="RGB")
    with pytest.raises(ValueError, match="expected a single-channel PNG .* got mode RGB"):
        folder_builder(str(rgb), data_dir=str(tmp_path / "tfds"))
    many = tmp_path / "many"
    _write(many, 3, classes=3)
    (many / "classes.txt").write_text("a\n")
    builder, _ = folder_builder(str(many), image_size=16, data_dir=str(tmp_path / "tfds"))
    with pytest.raises(ValueError, match=r"expected values 0..1 or 255, got \[2"):
        builder.download_and_prepare()
    with pytest.raises(ValueError, match="expected .*images and .*masks"):
        split_pairs(str(tmp_path / "tfds"))


def _prepared(tmp_path):
    return [d for d, _, files in os.walk(tmp_path / "tfds") if "dataset_info.json" in files]


def test_corrupt_image_names_the_file_leaves_nothing_or_is_skipped(tmp_path):
    root = tmp_path / "corrupt"
    _write(root, 9)
    (root / "images" / "im03.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match=r"image file .*im03.png: expected a readable image"):
        load_splits(f"folder:{root}", _cfg(tmp_path))
    assert not _prepared(tmp_path)  # the failed preparation left no dataset behind
    cfg = _cfg(tmp_path)
    cfg.skip_bad_images = True
    splits = load_splits(f"folder:{root}", cfg)
    assert (len(splits.train), len(splits.test)) == (7, 1)
    assert [os.path.basename(p) for p in splits.skipped_images["train"]] == ["im03.png"]


def test_mask_without_an_image_is_an_error(tmp_path):
    root = tmp_path / "orphan"
    _write(root, 3)
    os.remove(root / "images" / "im02.png")
    with pytest.raises(ValueError, match=r"mask .*masks/im02.png: expected an image "
                                         r"im02.png\|jpg\|jpeg in .*images, found none"):
        split_pairs(str(root))
