"""A TFDS builder for torchvision's ImageFolder layout: bring your own classification data
(ImageNet as users extract it).

Layout:

    <root>/train/<class>/**/<file>.jpg|jpeg|png|ppm|bmp|pgm|tif|tiff|webp   (any case)
    <root>/val/<class>/**/<file>...                                        the test split

Class names are the sorted folder names of `train` (torchvision's `find_classes`); label k is
class k in both splits. `val` may hold a subset of those folders (a class with no validation
images keeps its label; torchvision's ImageFolder on `val` alone would renumber the classes), but
a folder that `train` lacks is an error, as is a train class with no image. Files are taken as
torchvision's `make_dataset` takes them: every file under a class folder (recursively, sorted)
whose extension is an image's; others are ignored.

Prepared once into array_record with no TensorFlow (like the folder and COCO builders), in file
order. Each example holds `image` (the file's bytes, decoded to uint8 [H, W, 3] when read, any
PIL mode -> RGB, at its own size: the transform crops or resizes), `label` int64 and
`file_name` (the path under `<root>`). An unreadable image raises ValueError naming the file
(or, with `skip_bad_images=True`, is left out and listed in the metadata `skipped_images`). The
builder's config name hashes the root and every file's path, size and modification time. TFDS
prepares into a temporary folder and renames it when done, so a failed preparation leaves
nothing a later run would read.

    python train.py --config configs/resnet18.py:imagenet2012 \
        --config.dataset=imagefolder:/path/to/imagenet
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from jaxvision.data.images import BadImageError, read_bytes
from jaxvision.data.local_builder import LocalPreparation

# torchvision.datasets.folder.IMG_EXTENSIONS
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SPLITS = {"train": "train", "test": "val"}  # our split -> its folder


def _split_dir(root: str, split: str) -> str:
    path = os.path.join(root, SPLITS[split])
    if not os.path.isdir(path):
        raise ValueError(f"imagefolder dataset: expected a folder {path} of class folders, "
                         f"got {sorted(os.listdir(root))} in {root}")
    return path


def class_folders(directory: str) -> list[str]:
    """Sorted names of the sub-folders of `directory`."""
    return sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())


def class_files(directory: str) -> list[str]:
    """Image files under `directory`, recursively, in torchvision's order."""
    return [os.path.join(path, name)
            for path, _, names in sorted(os.walk(directory, followlinks=True))
            for name in sorted(names) if name.lower().endswith(IMAGE_EXTENSIONS)]


def split_files(root: str) -> tuple[tuple[str, ...], dict[str, list[tuple[str, int]]]]:
    """(class names, {'train': [(file, label), ...], 'test': [...]}) of the ImageFolder `root`;
    ValueError for a missing split, a train class with no image or a val class train lacks."""
    train = _split_dir(root, "train")
    names = tuple(class_folders(train))
    if not names:
        raise ValueError(f"imagefolder dataset: expected class folders in {train}, got none")
    files = {}
    for split in SPLITS:
        directory = _split_dir(root, split)
        folders = class_folders(directory)
        unknown = sorted(set(folders) - set(names))
        if unknown:
            raise ValueError(f"imagefolder dataset {directory}: expected class folders among "
                             f"those of {train}, got {unknown} (not in train)")
        files[split] = [(path, k) for k, name in enumerate(names) if name in folders
                        for path in class_files(os.path.join(directory, name))]
        if split == "train":
            counts = np.bincount([k for _, k in files[split]], minlength=len(names))
            if not counts.all():
                empty = os.path.join(train, names[int(np.argmin(counts))])
                raise ValueError(f"imagefolder dataset class folder {empty}: expected at least "
                                 f"one image {IMAGE_EXTENSIONS}, found none")
        elif not files[split]:
            raise ValueError(f"imagefolder dataset: expected images {IMAGE_EXTENSIONS} in the "
                             f"class folders of {directory}, found none")
    return names, files


@dataclasses.dataclass(kw_only=True)
class ImageFolderConfig(tfds.core.BuilderConfig):
    root: str = ""
    skip_bad_images: bool = False


class ImageFolder(LocalPreparation, tfds.core.GeneratorBasedBuilder):
    """Images in class folders (see the module docstring for the layout)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [ImageFolderConfig(name="default")]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(), dtype=np.object_),
                "label": tfds.features.Tensor(shape=(), dtype=np.int64),
                "file_name": tfds.features.Tensor(shape=(), dtype=np.object_)}),
            description=f"Image folder {self.builder_config.root}",
            metadata=tfds.core.MetadataDict(), disable_shuffling=True)  # file order

    def _split_generators(self, dl_manager):
        del dl_manager
        names, files = split_files(self.builder_config.root)
        self.info.metadata.update(class_names=list(names), skipped_images={})
        return {split: self._generate_examples(pairs, split) for split, pairs in files.items()}

    def _generate_examples(self, pairs, split):
        skipped = []
        for index, (path, label) in enumerate(pairs):
            try:
                data = read_bytes(path)
            except BadImageError as error:
                if not self.builder_config.skip_bad_images:
                    raise
                logging.warning("imagefolder dataset: skipping %s", error)
                skipped.append(path)
                continue
            yield index, {"image": data, "label": np.int64(label),
                          "file_name": os.path.relpath(path, self.builder_config.root)}
        self.info.metadata["skipped_images"][split] = skipped


def imagefolder_builder(root: str, *, skip_bad_images: bool = False,
                        data_dir: str | None = None) -> tuple[ImageFolder, tuple[str, ...]]:
    """(builder, class names) for the ImageFolder `root`; prepare with
    `builder.download_and_prepare()` and read it through `images.DecodedImages`."""
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise ValueError(f"imagefolder dataset root: expected a directory, got {root!r}")
    names, files = split_files(root)
    digest = hashlib.sha1(root.encode())
    for pairs in files.values():
        for path, label in pairs:
            st = os.stat(path)
            digest.update(f"{os.path.relpath(path, root)}:{label}:{st.st_size}:"
                          f"{st.st_mtime_ns}".encode())
    base = re.sub(r"[^A-Za-z0-9_]", "_", os.path.basename(root))[:40] or "root"
    name = f"{base}_{digest.hexdigest()[:10]}" + ("_skipbad" if skip_bad_images else "")
    config = ImageFolderConfig(name=name, root=root, skip_bad_images=skip_bad_images)
    return (ImageFolder(config=config, data_dir=data_dir, file_format="array_record"), names)
