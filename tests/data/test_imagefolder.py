"""`imagefolder:<root>`: torchvision's ImageFolder layout of real photographs (several sizes, PIL
modes and extensions) prepared without TensorFlow; files and labels against torchvision's own
`ImageFolder`, pixels against PIL, the classification transforms on top, and bad input."""

import os
import types

import numpy as np
import pytest
import torch
from torchvision.datasets import ImageFolder

from jaxvision.data import augment, eval_batches, load_splits, make_transforms
from jaxvision.data.imagefolder import imagefolder_builder
from jaxvision.data.transforms import normalise
from jaxvision.train.config import base_config
from tests.data import photos

CLASSES = ("cat", "coffee", "rocket")


def _write(root):
    """train: 3 classes x 3 images (every mode, a .JPG, a nested folder, a stray text file);
    val: images of 'cat' and 'rocket' only (a subset of the classes)."""
    k = 0
    for c, name in enumerate(CLASSES):
        for i in range(3):
            image = photos.photo(name, (30 + 6 * i + c, 44 - 5 * i))
            stem = os.path.join(root, "train", name, "deep" if i == 2 else "", f"{name}{i}")
            photos.save(image, stem, photos.MODES[k % len(photos.MODES)],
                        ext=".JPG" if (c, i) == (1, 2) else "")
            k += 1
    with open(os.path.join(root, "train", "cat", "notes.txt"), "w") as f:
        f.write("not an image")
    for name, mode in (("cat", "P"), ("rocket", "CMYK"), ("rocket", "L")):
        photos.save(photos.photo(name, (36, 28)), os.path.join(root, "val", name, f"v_{mode}"),
                    mode)


def _data(tmp_path, **kw):
    return types.SimpleNamespace(image_size=24, data_dir=str(tmp_path / "tfds"), **kw)


def test_files_labels_and_pixels_match_torchvision_and_pil(tmp_path):
    root = str(tmp_path / "photos")
    _write(root)
    splits = load_splits(f"imagefolder:{root}", _data(tmp_path))
    reference = ImageFolder(os.path.join(root, "train"))
    assert splits.class_names == tuple(reference.classes) == CLASSES
    assert splits.image_size == 0 and splits.skipped_images == {"train": [], "test": []}
    assert len(splits.train) == len(reference.samples) == 9  # notes.txt ignored, deep/ found
    sizes = set()
    for i, (path, label) in enumerate(reference.samples):
        ex = splits.train[i]
        assert ex["file_name"].decode() == os.path.relpath(path, root)
        assert ex["label"] == label
        np.testing.assert_array_equal(ex["image"], photos.as_rgb(path))
        sizes.add(ex["image"].shape)
    assert len(sizes) == 9  # every image at its own size
    # val holds a subset of the classes: labels are train's (ImageFolder on val would renumber)
    val = [splits.test[i] for i in range(len(splits.test))]
    assert [(e["file_name"].decode(), int(e["label"])) for e in val] == [
        ("val/cat/v_P.png", 0), ("val/rocket/v_CMYK.jpg", 2), ("val/rocket/v_L.png", 2)]
    assert ImageFolder(os.path.join(root, "val")).class_to_idx["rocket"] == 1
    np.testing.assert_array_equal(val[1]["image"], photos.as_rgb(
        os.path.join(root, "val", "rocket", "v_CMYK.jpg")))


def _torch_resize(image, size):
    """float32 [size, size, 3]: torch's bilinear interpolate (half-pixel centres, no
    antialias)."""
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    out = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                          align_corners=False, antialias=False)
    return out[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("crop", ["random_resized", "none"])
def test_classification_transforms_give_static_batches(tmp_path, crop):
    root = str(tmp_path / "photos")
    _write(root)
    config = base_config()
    config.data.update(dict(data_dir=str(tmp_path / "tfds"), image_size=24, crop=crop))
    splits = load_splits(f"imagefolder:{root}", config.data)
    train, evaluation = make_transforms(config, ("image", "label"))
    batch = next(iter(eval_batches(splits.test, evaluation, global_batch=4)))
    assert batch["image"].shape == (4, 24, 24, 3) and batch["label"].tolist()[:3] == [0, 2, 2]
    for index in range(len(splits.test)):
        decoded = splits.test[index]["image"]
        if crop == "none":  # resize 'none' on images of varying size: resized to image_size
            want = normalise(_torch_resize(decoded, 24))
        else:  # resize to 24 / 0.875 and centre crop
            want = normalise(augment.imagenet_eval_crop(decoded, 24))
        np.testing.assert_allclose(batch["image"][index], want, atol=1e-4)
    for index in range(len(splits.train)):
        assert train(splits.train[index], index)["image"].shape == (24, 24, 3)


def _prepared(tmp_path):
    return [d for d, _, files in os.walk(tmp_path / "tfds") if "dataset_info.json" in files]


def test_bad_files_name_the_file_leave_nothing_or_are_skipped(tmp_path):
    root = tmp_path / "photos"
    _write(str(root))
    bad = root / "train" / "coffee" / "broken.jpeg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValueError, match=r"image file .*coffee/broken.jpeg: expected a "
                                         r"readable image"):
        load_splits(f"imagefolder:{root}", _data(tmp_path))
    assert not _prepared(tmp_path)  # the failed preparation left no dataset behind
    splits = load_splits(f"imagefolder:{root}", _data(tmp_path, skip_bad_images=True))
    assert len(splits.train) == 9 and splits.skipped_images["train"] == [str(bad)]
    assert splits.skipped_images["test"] == []


def test_layout_errors_name_the_folder(tmp_path):
    root = tmp_path / "photos"
    _write(str(root))
    first, _ = imagefolder_builder(str(root), data_dir=str(tmp_path / "tfds"))
    photos.save(photos.photo("coins", (20, 20)), str(root / "val" / "coins" / "c"), "L")
    with pytest.raises(ValueError, match=r"imagefolder dataset .*val: expected class folders "
                                         r"among those of .*train, got \['coins'\]"):
        load_splits(f"imagefolder:{root}", _data(tmp_path))
    os.rename(root / "val" / "coins", root / "train" / "coins")  # now a fourth class
    second, names = imagefolder_builder(str(root), data_dir=str(tmp_path / "tfds"))
    assert names == ("cat", "coffee", "coins", "rocket")
    assert second.builder_config.name != first.builder_config.name
    os.makedirs(root / "train" / "empty")
    with pytest.raises(ValueError, match=r"class folder .*train/empty: expected at least one "
                                         r"image"):
        imagefolder_builder(str(root))
    os.rmdir(root / "train" / "empty")
    os.rename(root / "val", root / "validation")
    with pytest.raises(ValueError, match=r"expected a folder .*/val of class folders, got "
                                         r"\['train', 'validation'\]"):
        imagefolder_builder(str(root))
