"""The ISBI 2012 EM segmentation challenge stacks as distributed: `<root>/train-volume.tif`,
`<root>/train-labels.tif` (30 slices of 512 x 512, multi-page 8-bit TIFF) and the unlabelled
`<root>/test-volume.tif`.

Class mapping: label pixel 0 (membrane) -> class 0 'background', 255 (membrane-free cell
interior) -> class 1 'cell'; any other value is an error. The challenge's test labels are not
public, so the test split is the last `holdout` training slices (train: the others). Images are
grayscale, replicated to uint8 [H, W, 3] as every other source's (the model sees RGB).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageSequence

CLASS_NAMES = ("cell",)  # the task adds 'background' (membrane) as class 0
FILES = ("train-volume.tif", "train-labels.tif", "test-volume.tif")
LABEL_VALUES = {0: 0, 255: 1}  # TIFF value -> class


def read_stack(path: str) -> np.ndarray:
    """uint8 [N, H, W] from a multi-page grayscale TIFF (ValueError naming the file)."""
    try:
        with Image.open(path) as image:
            pages = [np.asarray(page.convert("L"), np.uint8)
                     for page in ImageSequence.Iterator(image)]
    except Exception as error:  # PIL raises OSError, SyntaxError, ...
        raise ValueError(f"ISBI stack {path}: expected a readable multi-page TIFF, got "
                         f"{type(error).__name__}: {error}") from error
    if len({p.shape for p in pages}) != 1:
        raise ValueError(f"ISBI stack {path}: expected pages of one size, got "
                         f"{sorted({p.shape for p in pages})}")
    return np.stack(pages)


def to_classes(labels: np.ndarray, path: str) -> np.ndarray:
    """uint8 classes from the TIFF's 0 / 255 label values (ValueError for any other)."""
    other = np.setdiff1d(np.unique(labels), list(LABEL_VALUES))
    if other.size:
        raise ValueError(f"ISBI labels {path}: expected values 0 (membrane) and 255 (cell), got "
                         f"also {other[:8].tolist()}")
    return (labels == 255).astype(np.uint8)


class IsbiSlices:
    """Random access over slices: `{'image': uint8 [H, W, 3], 'segmentation': uint8 [H, W]
    (when labelled), 'image_id': slice number in its stack}`."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, ids):
        self.images, self.labels, self.ids = images, labels, list(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        index = int(index)
        slice_id = self.ids[index]
        example = {"image": np.repeat(self.images[slice_id][..., None], 3, axis=-1),
                   "image_id": slice_id}
        if self.labels is not None:
            example["segmentation"] = self.labels[slice_id]
        return example

    def __repr__(self) -> str:
        return f"IsbiSlices({len(self)} slices)"


def isbi_sources(root: str, holdout: int = 5) -> dict[str, IsbiSlices]:
    """{'train', 'test'} from the training stacks (the last `holdout` slices are the test
    split), and 'challenge' from test-volume.tif when present (unlabelled)."""
    root = os.path.expanduser(root)
    volume, label_path = (os.path.join(root, f) for f in FILES[:2])
    for path in (volume, label_path):
        if not os.path.isfile(path):
            raise ValueError(f"isbi:{root}: expected the challenge file {path}, not found")
    images, labels = read_stack(volume), read_stack(label_path)
    if images.shape != labels.shape:
        raise ValueError(f"ISBI stacks in {root}: expected train-labels.tif of the volume's "
                         f"shape {images.shape}, got {labels.shape}")
    if not isinstance(holdout, int) or not 1 <= holdout < len(images):
        raise ValueError(f"config.data.builders.isbi.holdout: expected 1..{len(images) - 1} "
                         f"test slices out of {len(images)}, got {holdout!r}")
    labels = to_classes(labels, label_path)
    split = len(images) - holdout
    sources = {"train": IsbiSlices(images, labels, range(split)),
               "test": IsbiSlices(images, labels, range(split, len(images)))}
    challenge = os.path.join(root, FILES[2])
    if os.path.isfile(challenge):
        stack = read_stack(challenge)
        sources["challenge"] = IsbiSlices(stack, None, range(len(stack)))
    return sources
