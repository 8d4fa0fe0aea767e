"""A TFDS builder for "a folder of images and PNG masks": bring your own segmentation data.

Layout (masks share the image's file stem):

    <root>/classes.txt           optional: foreground class names, one per line (classes 1..K)
    <root>/images/<stem>.png|jpg|jpeg
    <root>/masks/<stem>.png      single channel (mode L or P): 0 background, k class k, 255 ignore

or the same `images/` + `masks/` pair under `<root>/train` and `<root>/test`. Without split
folders every `holdout`-th image (sorted by name) is a test image. Images and masks are stored
at their own size, in file order, as array_record with no TensorFlow: `image` the file's bytes
(decoded to uint8 [H, W, 3] when read, any PIL mode -> RGB), `segmentation` uint8 [H, W] and
`file_name` (the image's path under `<root>`). The transform resizes them (`data.resize`;
'none' resizes to `data.image_size`), so evaluation can score at the original resolution. The
builder's config name hashes the root path and every file's name, size and modification time,
so changed data is prepared anew.

Bad input: an image that cannot be read raises ValueError naming the file (or, with
`skip_bad_images=True`, is left out and listed in the dataset's metadata `skipped_images`); a
mask with no image is an error. TFDS prepares into a temporary folder and renames it when done,
so a failed preparation leaves nothing a later run would read.

    python train.py --config configs/unet.py --config.dataset=folder:/path/to/root
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from PIL import Image

from jaxvision.data.images import BadImageError, read_bytes, read_rgb
from jaxvision.data.local_builder import LocalPreparation

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
IGNORE = 255


def _pairs(directory: str) -> list[tuple[str, str]]:
    """Sorted (image path, mask path) pairs under `directory`/images and `directory`/masks."""
    images_dir, masks_dir = os.path.join(directory, "images"), os.path.join(directory, "masks")
    if not os.path.isdir(images_dir) or not os.path.isdir(masks_dir):
        raise ValueError(f"folder dataset: expected {images_dir} and {masks_dir}, got "
                         f"{sorted(os.listdir(directory)) if os.path.isdir(directory) else 'none'}")
    pairs = []
    for name in sorted(os.listdir(images_dir)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS:
            continue
        mask = os.path.join(masks_dir, stem + ".png")
        if not os.path.isfile(mask):
            raise ValueError(f"folder dataset mask: expected {mask} for image {name}, not found")
        pairs.append((os.path.join(images_dir, name), mask))
    stems = {os.path.splitext(os.path.basename(image))[0] for image, _ in pairs}
    orphans = sorted(name for name in os.listdir(masks_dir)
                     if name.lower().endswith(".png") and os.path.splitext(name)[0] not in stems)
    if orphans:
        stem = os.path.splitext(orphans[0])[0]
        raise ValueError(f"folder dataset mask {os.path.join(masks_dir, orphans[0])}: expected "
                         f"an image {stem}.png|jpg|jpeg in {images_dir}, found none "
                         f"({len(orphans)} mask(s) without an image)")
    if not pairs:
        raise ValueError(f"folder dataset: expected images {IMAGE_EXTENSIONS} in {images_dir}, "
                         "found none")
    return pairs


def split_pairs(root: str, holdout: int = 8) -> dict[str, list[tuple[str, str]]]:
    """{'train': pairs, 'test': pairs} from split folders, or every `holdout`-th pair as test."""
    if os.path.isdir(os.path.join(root, "train")):
        return {s: _pairs(os.path.join(root, s)) for s in ("train", "test")}
    if holdout < 2:
        raise ValueError(f"folder dataset holdout: expected an integer >= 2, got {holdout}")
    pairs = _pairs(root)
    if len(pairs) < 2:
        raise ValueError(f"folder dataset: expected at least 2 images in {root}, got {len(pairs)}")
    test = pairs[holdout - 1::holdout] or pairs[-1:]
    return {"train": [p for p in pairs if p not in test], "test": test}


def read_mask(path: str) -> np.ndarray:
    """uint8 [H, W] class indices from a single-channel PNG (ValueError naming an unreadable
    file)."""
    try:
        mask = Image.open(path)
        mask.load()
    except Exception as error:
        raise BadImageError(f"folder dataset mask {path}: expected a readable PNG, got "
                            f"{type(error).__name__}: {error}") from error
    if mask.mode not in ("L", "P"):
        raise ValueError(f"folder dataset mask {path}: expected a single-channel PNG "
                         f"(mode L or P) of class indices, got mode {mask.mode}")
    return np.asarray(mask, np.uint8)


def class_names(root: str, splits: dict) -> tuple[str, ...]:
    """Foreground names from `classes.txt`, else `class1..classK` with K the largest mask value."""
    path = os.path.join(root, "classes.txt")
    if os.path.isfile(path):
        with open(path) as f:
            names = tuple(line.strip() for line in f if line.strip())
        if not names:
            raise ValueError(f"folder dataset {path}: expected one class name a line, got none")
        return names
    top = max(int(np.max(np.where(m == IGNORE, 0, m)))
              for pairs in splits.values() for _, mp in pairs for m in [read_mask(mp)])
    return tuple(f"class{k}" for k in range(1, max(top, 1) + 1))


def load_example(image_path: str, mask_path: str, num_classes: int) -> dict:
    """{'image': the image file's bytes, 'segmentation': uint8 [H, W] (255: ignore)} with [H, W]
    the image's size, both checked (BadImageError for an unreadable image)."""
    data = read_bytes(image_path)
    size = read_rgb(image_path, data).shape[:2]
    mask = read_mask(mask_path)
    if mask.shape != size:
        raise ValueError(f"folder dataset mask {mask_path}: expected size {size} (as "
                         f"{os.path.basename(image_path)}), got {mask.shape}")
    bad = (mask > num_classes) & (mask != IGNORE)
    if bad.any():
        raise ValueError(f"folder dataset mask {mask_path}: expected values 0..{num_classes} or "
                         f"{IGNORE}, got {sorted(np.unique(mask[bad]).tolist())[:5]}")
    return {"image": data, "segmentation": mask}


@dataclasses.dataclass(kw_only=True)
class FolderConfig(tfds.core.BuilderConfig):
    root: str = ""
    holdout: int = 8
    skip_bad_images: bool = False


class SegmentationFolder(LocalPreparation, tfds.core.GeneratorBasedBuilder):
    """Images and PNG masks from a folder (see the module docstring for the layout)."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release.",
                     "2.0.0": "Images and masks at their own size (were resized)."}
    BUILDER_CONFIGS = [FolderConfig(name="default")]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(), dtype=np.object_),
                "segmentation": tfds.features.Tensor(shape=(None, None), dtype=np.uint8,
                                                     encoding="zlib"),
                "file_name": tfds.features.Tensor(shape=(), dtype=np.object_)}),
            description=f"Segmentation folder {self.builder_config.root}",
            metadata=tfds.core.MetadataDict(), disable_shuffling=True)  # file order

    def _split_generators(self, dl_manager):
        del dl_manager
        cfg = self.builder_config
        splits = split_pairs(cfg.root, cfg.holdout)
        k = len(class_names(cfg.root, splits))
        self.info.metadata["skipped_images"] = {}
        return {name: self._generate_examples(pairs, k, name) for name, pairs in splits.items()}

    def _generate_examples(self, pairs, num_classes, split):
        skipped = []
        for index, (image, mask) in enumerate(pairs):
            try:
                example = load_example(image, mask, num_classes)
            except BadImageError as error:
                if not self.builder_config.skip_bad_images:
                    raise
                logging.warning("folder dataset: skipping %s", error)
                skipped.append(image)
                continue
            example["file_name"] = os.path.relpath(image, self.builder_config.root)
            yield index, example
        self.info.metadata["skipped_images"][split] = skipped


def folder_builder(root: str, *, holdout: int = 8, skip_bad_images: bool = False,
                   data_dir: str | None = None) -> tuple[SegmentationFolder, tuple[str, ...]]:
    """(builder, foreground class names) for the folder `root`; prepare with
    `builder.download_and_prepare()` and read it through `images.DecodedImages`."""
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise ValueError(f"folder dataset root: expected a directory, got {root!r}")
    splits = split_pairs(root, holdout)
    digest = hashlib.sha1(root.encode())
    for pairs in splits.values():
        for path in (p for pair in pairs for p in pair):
            st = os.stat(path)
            digest.update(f"{os.path.relpath(path, root)}:{st.st_size}:{st.st_mtime_ns}".encode())
    base = re.sub(r"[^A-Za-z0-9_]", "_", os.path.basename(root))[:40] or "root"
    name = f"{base}_{digest.hexdigest()[:10]}_orig_h{holdout}"  # v1 names had _s<size>
    if skip_bad_images:
        name += "_skipbad"
    config = FolderConfig(name=name, root=root, holdout=holdout, skip_bad_images=skip_bad_images)
    builder = SegmentationFolder(config=config, data_dir=data_dir, file_format="array_record")
    return builder, class_names(root, splits)
