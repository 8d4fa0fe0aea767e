"""`sbd:<root>`: a generated SBD folder (benchmark.tgz's layout, masks written by
scipy.io.savemat as MATLAB structs) of scikit-image photographs, alone and with its test split
from a VOC year folder (palette PNGs with 255 borders); every field checked against the masks
written and PIL's reading of the JPEGs; bad input names the file."""

import os
import types

import numpy as np
import pytest
import scipy.io

from jaxvision.data import ExampleTransform, eval_batches, load_splits
from tests.data.photos import as_rgb
from tests.data.sbd_photos import write_sbd, write_voc_segmentation

SBD = {"2008_000002": ("astronaut", (40, 52), "RGB"), "2008_000003": ("coins", (36, 30), "L"),
       "2008_000007": ("chelsea", (30, 44), "RGB")}
SBD_LISTS = {"train": ["2008_000007", "2008_000002"], "val": ["2008_000003"]}
VOC = {"2007_000033": ("coffee", (34, 50), "RGB"), "2007_000042": ("rocket", (48, 32), "RGB")}
VOC_LISTS = {"seg11valid": ["2007_000042"], "val": ["2007_000033", "2007_000042"]}


def _cfg(tmp_path, skip=False, **sbd):
    return types.SimpleNamespace(image_size=0, data_dir=str(tmp_path / "tfds"),
                                 skip_bad_images=skip, builders=types.SimpleNamespace(sbd=sbd))


def _check(source, stems, masks, folder):
    assert len(source) == len(stems)
    for i, stem in enumerate(stems):
        ex = source[i]
        assert ex["file_name"] == stem and int(ex["image_id"]) == int(stem.replace("_", ""))
        np.testing.assert_array_equal(ex["image"], as_rgb(os.path.join(folder, stem + ".jpg")))
        np.testing.assert_array_equal(ex["segmentation"], masks[stem])
        assert ex["segmentation"].dtype == np.uint8
        np.testing.assert_array_equal(ex["orig_size"], masks[stem].shape)


def test_sbd_alone_and_with_a_voc_test_split(tmp_path):
    masks = write_sbd(str(tmp_path), SBD, SBD_LISTS)
    dataset = tmp_path / "benchmark_RELEASE" / "dataset"
    splits = load_splits(f"sbd:{tmp_path}", _cfg(tmp_path))  # the folder holding the release
    assert splits.class_names[14] == "person" and len(splits.class_names) == 20
    _check(splits.train, SBD_LISTS["train"], masks, dataset / "img")
    _check(splits.test, SBD_LISTS["val"], masks, dataset / "img")
    assert {0, 8, 15} == set(np.unique(masks["2008_000002"]).tolist())

    voc = tmp_path / "VOCdevkit" / "VOC2011"
    voc_masks = write_voc_segmentation(str(voc), VOC, VOC_LISTS)
    splits = load_splits(f"sbd:{dataset}", _cfg(tmp_path, test_split="seg11valid",
                                                 voc_root=str(tmp_path / "VOCdevkit")))
    _check(splits.train, SBD_LISTS["train"], masks, dataset / "img")
    _check(splits.test, VOC_LISTS["seg11valid"], voc_masks, voc / "JPEGImages")
    assert splits.info["voc_root"] == str(voc)
    # the void border survives to the batch; padding is void too
    t = ExampleTransform(("image", "segmentation"), resize="none", pad_size=64)
    batch = next(iter(eval_batches(splits.test, t, global_batch=1)))
    assert batch["segmentation"].shape == (1, 64, 64)
    np.testing.assert_array_equal(batch["segmentation"][0, :48, :32], voc_masks["2007_000042"])
    assert (batch["segmentation"][0, 48:] == 255).all() and (batch["segmentation"][0, :, 32:]
                                                            == 255).all()


def _savemat(path, **variables):
    scipy.io.savemat(path, variables)


@pytest.mark.parametrize("change, settings, match", [
    (lambda d: _savemat(d / "cls" / "2008_000002.mat", GTinst={"Segmentation": np.zeros((2, 2))}),
     {}, r"sbd dataset mask .*2008_000002.mat: expected a struct GTcls with a field "
         r"Segmentation, got variables \['GTinst'\]"),
    (lambda d: _savemat(d / "cls" / "2008_000007.mat",
                        GTcls={"Segmentation": np.full((30, 44), 21, np.uint8)}),
     {}, r"sbd dataset mask .*2008_000007.mat: expected values 0..20 or 255, got \[21\]"),
    (lambda d: _savemat(d / "cls" / "2008_000007.mat",
                        GTcls={"Segmentation": np.zeros((44, 30), np.uint8)}),
     {}, r"sbd dataset: expected the size of its mask .*2008_000007.mat 44x30 \(height x "
         r"width\), got 30x44"),
    (lambda d: (d / "cls" / "2008_000003.mat").unlink(),
     {}, r"sbd dataset: expected .*cls/2008_000003.mat \(image '2008_000003' listed in "
         r".*val.txt\), not found"),
    (lambda d: None, dict(test_split="seg11valid"),
     r"sbd dataset: expected the list .*dataset/seg11valid.txt \(split 'seg11valid'\), not "
     r"found; lists in .*: \['train', 'val'\]"),
])
def test_bad_folders_are_named_and_leave_nothing(tmp_path, change, settings, match):
    write_sbd(str(tmp_path), SBD, SBD_LISTS)
    change(tmp_path / "benchmark_RELEASE" / "dataset")
    with pytest.raises(ValueError, match=match):
        load_splits(f"sbd:{tmp_path}", _cfg(tmp_path, **settings))
    left = [n for _, dirs, files in os.walk(tmp_path / "tfds") for n in dirs + files]
    assert not left, left


def test_unreadable_mat_is_named_or_skipped(tmp_path):
    write_sbd(str(tmp_path), SBD, SBD_LISTS)
    bad = tmp_path / "benchmark_RELEASE" / "dataset" / "cls" / "2008_000007.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match=r"sbd dataset mask .*2008_000007.mat: expected a "
                                         r"readable .mat file"):
        load_splits(f"sbd:{tmp_path}", _cfg(tmp_path))
    splits = load_splits(f"sbd:{tmp_path}", _cfg(tmp_path, skip=True))
    assert [splits.train[i]["file_name"] for i in range(len(splits.train))] == ["2008_000002"]
    assert splits.skipped_images["train"] == [
        str(tmp_path / "benchmark_RELEASE" / "dataset" / "img" / "2008_000007.jpg")]
