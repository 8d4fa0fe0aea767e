"""oxford_iiit_pet: trimap conversion on generated examples shaped like TFDS's (no download)."""

import types

import numpy as np
import pytest

from jaxvision.data import load_splits
from jaxvision.data.pets import PetSource, convert_example, pet_sources


def _example(h=30, w=40, seed=0):
    rng = np.random.default_rng(seed)
    trimap = np.full((h, w, 1), 2, np.uint8)  # background
    trimap[8:22, 10:30] = 3  # border ring ...
    trimap[10:20, 12:28] = 1  # ... around the pet
    return {"image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
            "segmentation_mask": trimap, "label": 3, "species": 1, "file_name": "x.jpg"}


def test_trimap_maps_to_background_pet_and_ignore():
    ex = convert_example(_example(32, 32), image_size=32)  # same size: nearest is identity
    seg = ex["segmentation"]
    assert seg.dtype == np.uint8 and seg.shape == (32, 32)
    assert seg[0, 0] == 0 and seg[15, 20] == 1 and seg[9, 11] == 255
    np.testing.assert_array_equal(
        seg, np.select([_example(32, 32)["segmentation_mask"][..., 0] == v for v in (1, 2, 3)],
                       [1, 0, 255]))
    resized = convert_example(_example(), image_size=16)
    assert resized["image"].shape == (16, 16, 3)
    assert set(np.unique(resized["segmentation"]).tolist()) == {0, 1, 255}


def test_sources_and_the_dataset_switch(monkeypatch):
    raw = {"train": [_example(seed=i) for i in range(3)], "test": [_example(seed=9)]}
    sources = pet_sources("unused", 24, open_split=raw.__getitem__)
    assert isinstance(sources["train"], PetSource) and len(sources["train"]) == 3
    assert sources["test"][0]["image"].shape == (24, 24, 3)
    import jaxvision.data.pets as pets

    monkeypatch.setattr(pets, "pet_sources",
                        lambda data_dir, size: pet_sources(data_dir, size, raw.__getitem__))
    splits = load_splits("oxford_iiit_pet", types.SimpleNamespace(image_size=24, data_dir="x"))
    assert splits.class_names == ("pet",) and len(splits.test) == 1


def test_bad_examples_and_missing_copy_raise(tmp_path):
    ex = _example()
    ex["segmentation_mask"] = ex["segmentation_mask"] * 0 + 7
    with pytest.raises(ValueError, match=r"expected trimap values 1, 2, 3, got \[7\]"):
        convert_example(ex, 16)
    with pytest.raises(ValueError, match="expected image .* and segmentation_mask"):
        convert_example({"image": np.zeros((4, 4, 3)), "segmentation_mask": np.zeros((5, 4, 1))},
                        16)
    with pytest.raises(ValueError, match="oxford_iiit_pet': expected a prepared TFDS copy"):
        pet_sources(str(tmp_path), 16)
