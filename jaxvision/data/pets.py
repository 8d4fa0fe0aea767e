"""Oxford-IIIT Pet (TFDS `oxford_iiit_pet`) as a segmentation source in our conventions.

TFDS examples hold `image` uint8 [H, W, 3] and `segmentation_mask` uint8 [H, W, 1], a trimap with
1 = pet, 2 = background, 3 = border ("not classified"). Here they become `image` uint8
[S, S, 3] (bilinear resize to `data.image_size`) and `segmentation` uint8 [S, S] with
0 background, 1 pet and 255 (ignored by the loss and the metrics) on the border, nearest resize.

Reading needs a prepared TFDS copy in array_record format (TensorFlow, `[tf]` extra, network):
    tfds build oxford_iiit_pet --data_dir <data_dir> --file_format array_record
"""

from __future__ import annotations

import numpy as np
from PIL import Image

CLASS_NAMES = ("pet",)  # the task adds background as class 0
IGNORE = 255
# trimap value -> our label
TRIMAP = np.full(256, IGNORE, np.uint8)
TRIMAP[1], TRIMAP[2], TRIMAP[3] = 1, 0, IGNORE
PREPARE = ("`pip install -e '.[tf]'`, then `tfds build oxford_iiit_pet --data_dir <data_dir> "
           "--file_format array_record` (downloads 800 MB)")


def convert_example(example: dict, image_size: int) -> dict[str, np.ndarray]:
    """One TFDS `oxford_iiit_pet` example -> {'image': [S, S, 3], 'segmentation': [S, S]}."""
    image = np.asarray(example["image"], np.uint8)
    trimap = np.asarray(example["segmentation_mask"], np.uint8)
    if trimap.ndim == 3:
        trimap = trimap[..., 0]
    if image.ndim != 3 or image.shape[-1] != 3 or trimap.shape != image.shape[:2]:
        raise ValueError(f"oxford_iiit_pet example: expected image [H, W, 3] and "
                         f"segmentation_mask [H, W, 1], got {image.shape} and "
                         f"{np.shape(example['segmentation_mask'])}")
    bad = ~np.isin(trimap, (1, 2, 3))
    if bad.any():
        raise ValueError(f"oxford_iiit_pet segmentation_mask: expected trimap values 1, 2, 3, "
                         f"got {sorted(np.unique(trimap[bad]).tolist())[:5]}")
    size = (image_size, image_size)
    return {"image": np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR), np.uint8),
            "segmentation": TRIMAP[np.asarray(Image.fromarray(trimap).resize(size,
                                                                              Image.NEAREST))]}


class PetSource:
    """Random access (`len`, `[i]`) over converted examples of a TFDS-like `base` source."""

    def __init__(self, base, image_size: int):
        self.base, self.image_size = base, image_size

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index):
        return convert_example(self.base[index], self.image_size)

    def __repr__(self) -> str:
        return f"PetSource({len(self)} examples, {self.image_size}px)"


def pet_sources(data_dir: str, image_size: int, open_split=None) -> dict[str, PetSource]:
    """{'train': ..., 'test': ...}; `open_split(split)` gives the raw TFDS source (default:
    `tfds.data_source('oxford_iiit_pet', split=..., data_dir=data_dir)`)."""
    if open_split is None:
        import tensorflow_datasets as tfds

        def open_split(split):
            try:
                return tfds.data_source("oxford_iiit_pet", split=split, data_dir=data_dir,
                                        download=False)
            except Exception as error:  # not prepared / no array_record copy
                raise ValueError(f"dataset='oxford_iiit_pet': expected a prepared TFDS copy in "
                                 f"data.data_dir={data_dir!r}; it needs {PREPARE} ({error})"
                                 ) from error
    return {split: PetSource(open_split(split), image_size) for split in ("train", "test")}
