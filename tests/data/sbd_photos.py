"""A tiny SBD folder (benchmark_RELEASE/dataset as benchmark.tgz extracts) and VOC year folder
of scikit-image photographs, their class masks written with scipy.io.savemat (struct GTcls,
field Segmentation) and as VOC palette PNGs (255 void borders)."""

from __future__ import annotations

import os

import numpy as np
import scipy.io
from PIL import Image

from tests.data.photos import photo
from tests.data.test_voc_folder import _voc_palette

PERSON, CAT = 15, 8  # VOC class indices (1-based: background is 0)


def class_mask(image: Image.Image, void: bool) -> np.ndarray:
    """uint8 [H, W]: person where the photograph is bright, cat where it is dark, background
    between; with `void`, a one-pixel 255 border around the person (VOC's annotation style)."""
    grey = np.asarray(image.convert("L"), np.int32)
    mask = np.zeros(grey.shape, np.uint8)
    mask[grey > 150] = PERSON
    mask[grey < 60] = CAT
    if void:
        person = mask == PERSON
        grown = person.copy()
        grown[1:] |= person[:-1]
        grown[:-1] |= person[1:]
        grown[:, 1:] |= person[:, :-1]
        grown[:, :-1] |= person[:, 1:]
        mask[grown & ~person] = 255
    return mask


def write_sbd(root: str, images: dict, lists: dict) -> dict[str, np.ndarray]:
    """`root`/benchmark_RELEASE/dataset with img/<stem>.jpg (`images`: stem -> (photograph,
    (height, width), PIL mode)), cls/<stem>.mat and `lists` {split: [stem, ...]}; returns the
    masks written, {stem: uint8 [H, W]}."""
    dataset = os.path.join(root, "benchmark_RELEASE", "dataset")
    for sub in ("img", "cls", "inst"):
        os.makedirs(os.path.join(dataset, sub), exist_ok=True)
    masks = {}
    for stem, (name, size, mode) in images.items():
        image = photo(name, size)
        image.convert(mode).save(os.path.join(dataset, "img", stem + ".jpg"), "JPEG",
                                 quality=95)
        masks[stem] = class_mask(image, void=False)
        boundaries = np.empty((20,), object)
        boundaries[:] = [np.zeros((0, 0))] * 20
        scipy.io.savemat(os.path.join(dataset, "cls", stem + ".mat"), {"GTcls": {
            "Boundaries": boundaries, "Segmentation": masks[stem],
            "CategoriesPresent": np.unique(masks[stem][masks[stem] > 0]).astype(np.uint8)}})
    for split, stems in lists.items():
        with open(os.path.join(dataset, f"{split}.txt"), "w") as f:
            f.write("".join(s + "\n" for s in stems))
    return masks


def write_voc_segmentation(year_root: str, images: dict, lists: dict) -> dict[str, np.ndarray]:
    """A VOC year folder with JPEGImages/, SegmentationClass/ (palette PNGs, 255 borders) and
    ImageSets/Segmentation/<split>.txt; `images` and `lists` as `write_sbd`; returns the masks."""
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(os.path.join(year_root, sub), exist_ok=True)
    masks = {}
    for stem, (name, size, mode) in images.items():
        image = photo(name, size)
        image.convert(mode).save(os.path.join(year_root, "JPEGImages", stem + ".jpg"), "JPEG",
                                 quality=95)
        masks[stem] = class_mask(image, void=True)
        png = Image.fromarray(masks[stem], "P")
        png.putpalette(_voc_palette())  # the devkit's colour map
        png.save(os.path.join(year_root, "SegmentationClass", stem + ".png"))
    for split, stems in lists.items():
        with open(os.path.join(year_root, "ImageSets", "Segmentation", f"{split}.txt"), "w") as f:
            f.write("".join(s + "\n" for s in stems))
    return masks
