"""The "folder of images and PNG masks" builder: layout, splits, images and masks at their own
size, class names, errors, and a batch through the training pipeline (resized there)."""

import os
import types

import numpy as np
import pytest
import torch
from PIL import Image

from jaxvision.data import eval_batches, load_splits, make_transforms
from jaxvision.data.folder import SegmentationFolder, folder_builder, split_pairs
from jaxvision.data.transforms import normalise
from jaxvision.train.config import base_config
from tests.data import photos


def _write(directory, n, size=(40, 48), classes=2, mask_mode="L"):
    """n photographs (image i: size + (i, 2i), PIL mode MODES[i % 5]) and hand-made masks."""
    os.makedirs(os.path.join(directory, "masks"), exist_ok=True)
    for i in range(n):
        h, w = size[0] + i, size[1] + 2 * i
        image = photos.photo(photos.PHOTOGRAPHS[i % len(photos.PHOTOGRAPHS)], (h, w))
        mask = np.zeros((h, w), np.uint8)
        mask[5:20, 8:30] = 1 + i % classes
        mask[0, :] = 255  # an ignored row
        photos.save(image, os.path.join(directory, "images", f"im{i:02d}"),
                    photos.MODES[i % len(photos.MODES)])
        m = Image.fromarray(mask)
        if mask_mode != "L":
            m = m.convert(mask_mode)
        m.save(os.path.join(directory, "masks", f"im{i:02d}.png"))


def _cfg(tmp_path, size=32):
    return types.SimpleNamespace(image_size=size, data_dir=str(tmp_path / "tfds"))


def _torch_resize(x, size, mode):
    """torch's interpolate of [H, W, C] (bilinear: half-pixel centres, no antialias) or [H, W]
    (nearest) to size x size."""
    t = torch.from_numpy(x.astype(np.float32))
    t = t.permute(2, 0, 1)[None] if x.ndim == 3 else t[None, None]
    kw = dict(align_corners=False, antialias=False) if mode == "bilinear" else {}
    out = torch.nn.functional.interpolate(t, size=(size, size), mode=mode, **kw)[0]
    return out.permute(1, 2, 0).numpy() if x.ndim == 3 else out[0].numpy()


def test_folder_keeps_original_sizes_and_the_transform_resizes(tmp_path):
    root = tmp_path / "mydata"
    _write(root, 10)
    (root / "classes.txt").write_text("cat\ndog\n")
    splits = load_splits(f"folder:{root}", _cfg(tmp_path))
    assert splits.class_names == ("cat", "dog") and splits.image_size == 0
    assert (len(splits.train), len(splits.test)) == (9, 1)  # every 8th image is a test image
    ex = splits.test[0]  # im07: 47 x 62, an RGBA PNG
    assert ex["file_name"].decode() == os.path.join("images", "im07.png")
    np.testing.assert_array_equal(ex["image"], photos.as_rgb(str(root / "images" / "im07.png")))
    np.testing.assert_array_equal(ex["segmentation"], np.asarray(Image.open(root / "masks" /
                                                                            "im07.png")))
    assert ex["segmentation"].shape == (47, 62) and ex["image"].shape == (47, 62, 3)
    assert set(np.unique(ex["segmentation"]).tolist()) == {0, 2, 255}
    # every mode read as RGB at its own size, in file order
    for i in range(9):
        name = f"im{(i if i < 7 else i + 1):02d}"
        path = next(str(p) for p in (root / "images").iterdir() if p.stem == name)
        np.testing.assert_array_equal(splits.train[i]["image"], photos.as_rgb(path))
    # through the pipeline (resize 'none': images of varying size go to data.image_size):
    # int32 labels with the ignore value kept for the loss to skip
    config = base_config()
    config.data.update(dict(image_size=32, data_dir=str(tmp_path / "tfds")))
    _, evaluation = make_transforms(config, ("image", "segmentation"))
    batch = next(iter(eval_batches(splits.test, evaluation, global_batch=1)))
    assert batch["image"].dtype == np.float32 and batch["segmentation"].dtype == np.int32
    np.testing.assert_allclose(batch["image"][0], normalise(_torch_resize(ex["image"], 32,
                                                                          "bilinear")), atol=1e-4)
    np.testing.assert_array_equal(batch["segmentation"][0],
                                  _torch_resize(ex["segmentation"], 32, "nearest"))
    assert (batch["segmentation"] == 255).any()


def test_split_folders_and_inferred_class_names(tmp_path):
    root = tmp_path / "split"
    _write(root / "train", 3, classes=3)
    _write(root / "test", 2, classes=3, mask_mode="P")
    splits = split_pairs(str(root))
    assert [len(splits[s]) for s in ("train", "test")] == [3, 2]
    _, names = folder_builder(str(root), data_dir=str(tmp_path / "tfds"))
    assert names == ("class1", "class2", "class3")  # the largest mask value, 255 ignored


def test_changed_files_get_a_new_builder(tmp_path):
    root = tmp_path / "d"
    _write(root, 3)
    first, _ = folder_builder(str(root), data_dir=str(tmp_path / "tfds"))
    _write(root, 4)
    second, _ = folder_builder(str(root), data_dir=str(tmp_path / "tfds"))
    assert first.builder_config.name != second.builder_config.name
    # copies prepared by 1.x (resized to data.image_size, named ..._s<size>_h<holdout>) are
    # never read: another version folder and another config name
    assert str(SegmentationFolder.VERSION) == "2.0.0"
    assert "_s64_" not in second.builder_config.name and "2.0.0" in second.data_dir


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
    builder, _ = folder_builder(str(many), data_dir=str(tmp_path / "tfds"))
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
