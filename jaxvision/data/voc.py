"""A TFDS builder for a VOCdevkit year folder as users extract the PASCAL VOC tars.

Layout (`<root>` is the year folder, e.g. .../VOCdevkit/VOC2007, or a VOCdevkit folder holding
exactly one year folder):

    <root>/ImageSets/Main/<split>.txt           detection lists: one image name (file stem) a line
    <root>/Annotations/<stem>.xml               <size>, <object>s with <name>, <difficult>, <bndbox>
    <root>/JPEGImages/<stem>.jpg
    <root>/ImageSets/Segmentation/<split>.txt   segmentation lists
    <root>/SegmentationClass/<stem>.png         palette PNG: 0 background, 1..20 classes, 255 void

`train_split` (default trainval) and `test_split` (default test) name the lists; `segmentation`
picks the segmentation lists and masks instead of the detection ones. Prepared once into
array_record with no TensorFlow, in list order, images kept as their file's bytes and decoded
at their original size when read (`VocSource`).

Detection examples: `image` uint8 [H, W, 3], `boxes` float32 [N, 4] xyxy absolute in continuous
pixel coordinates, `labels` int64 [N] (0..19 in CLASS_NAMES order), `difficult` bool [N],
`iscrowd` bool [N] (all False), `image_id` int64, `orig_size` int32 [2] (H, W), `file_name`
(the stem, str). VOC's <bndbox> holds 1-based inclusive pixel indices; the box is (xmin - 1,
ymin - 1, xmax, ymax), the conversion of detectron2's `pascal_voc.py` and of torchvision's
references, so a one-pixel box is one unit wide. Segmentation examples: `image`, `segmentation`
uint8 [H, W] (255 kept: the ignore value), `image_id`, `orig_size`, `file_name`.

`image_id` is the stem read as an integer (000005 -> 5; VOC 2012's 2008_000005 -> 2008000005,
as Python's int() reads it) when every stem in JPEGImages/ is one, they are distinct and below
2**31; otherwise the stem's position in the sorted JPEGImages/ listing.

Bad input raises ValueError naming the file and what was expected: a missing list, a listed
image, annotation or mask that is not there, an unreadable image or mask (or, with
`skip_bad_images=True`, its example left out and its image listed in the metadata
`skipped_images`), an XML that does not parse, an unknown class name, an inverted box, a box
reaching more than one pixel outside its image (within one pixel it is clipped: VOC's
1 <= xmin <= xmax <= width, with one pixel of slack for 0-based tools), an XML <size> or mask
that is not the image's size (naming the fix when the file's EXIF orientation swaps its sides),
a mask value other than 0..20 or 255. The config name hashes the folder's files (name, size,
modification time) and the settings; TFDS prepares into a temporary folder and renames it when
done, so a failed preparation leaves nothing a later run would read.

    python train.py --config configs/<detector>.py --config.dataset=voc:/path/to/VOCdevkit/VOC2007
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import xml.etree.ElementTree as ET

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from PIL import Image

from jaxvision.data.images import (
    BadImageError,
    DecodedImages,
    check_listed_size,
    read_bytes,
)
from jaxvision.data.local_builder import LocalPreparation

CLASS_NAMES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
IGNORE = 255  # the void border of SegmentationClass masks
BOX_TOLERANCE = 1.0  # pixels a box may reach outside its image before it is an error
LISTS = {False: "Main", True: "Segmentation"}  # segmentation -> ImageSets/<folder>
_INTEGER_STEM = re.compile(r"[0-9]+(_[0-9]+)*")  # what int() reads: 000005, 2008_000005


def year_folder(root: str) -> str:
    """The VOC year folder at `root` (holding ImageSets/), or the one year folder inside it."""
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise ValueError(f"voc dataset root: expected a directory, got {root!r}")
    if os.path.isdir(os.path.join(root, "ImageSets")):
        return root
    years = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d, "ImageSets")))
    if len(years) == 1:
        return os.path.join(root, years[0])
    if years:
        raise ValueError(f"voc dataset root {root}: expected a VOCdevkit folder holding one year "
                         f"folder, got {years}; name one, e.g. voc:{os.path.join(root, years[0])}")
    raise ValueError(f"voc dataset root {root}: expected a VOC year folder (ImageSets/, "
                     f"Annotations/, JPEGImages/) or a VOCdevkit folder holding one, got "
                     f"{sorted(os.listdir(root))[:10]}")


def read_list(root: str, split: str, segmentation: bool) -> list[str]:
    """The image names (stems) of `ImageSets/<Main|Segmentation>/<split>.txt`, in file order."""
    return read_stems(os.path.join(root, "ImageSets", LISTS[segmentation]), split, "voc dataset")


def read_stems(folder: str, split: str, where: str) -> list[str]:
    """The image names (stems) of `<folder>/<split>.txt`, one a line, in file order; ValueError
    from `where` for a missing or empty list, a line of several words, a name listed twice."""
    path = os.path.join(folder, f"{split}.txt")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", split) or not os.path.isfile(path):
        found = sorted(n[:-4] for n in os.listdir(folder) if n.endswith(".txt")) \
            if os.path.isdir(folder) else []
        raise ValueError(f"{where}: expected the list {path} (split {split!r}), not found; "
                         f"lists in {folder}: {found}")
    stems = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            words = line.split()
            if len(words) > 1:
                raise ValueError(f"{where} {path} line {number}: expected one image name, "
                                 f"got {line.strip()!r} (a per-class list?)")
            stems += words
    if not stems:
        raise ValueError(f"{where} {path}: expected image names, one a line, got none")
    if len(set(stems)) != len(stems):
        twice = sorted(s for s in set(stems) if stems.count(s) > 1)
        raise ValueError(f"{where} {path}: expected each image once, got {twice[:5]} twice")
    return stems


def image_ids(root: str, folder: str = "JPEGImages") -> dict[str, int]:
    """stem -> image_id for every <root>/<folder>/*.jpg (see the module docstring)."""
    folder = os.path.join(root, folder)
    stems = sorted(os.path.splitext(n)[0] for n in os.listdir(folder)
                   if n.endswith(".jpg")) if os.path.isdir(folder) else []
    if all(_INTEGER_STEM.fullmatch(s) for s in stems):
        ids = {s: int(s) for s in stems}
        if len(set(ids.values())) == len(ids) and all(v < 2**31 for v in ids.values()):
            return ids
    return {s: k for k, s in enumerate(stems)}


def _files(root: str, stem: str, segmentation: bool) -> dict[str, str]:
    """{'image': JPEGImages/<stem>.jpg, 'annotation' | 'mask': ...}."""
    other = ("mask", "SegmentationClass", ".png") if segmentation else \
        ("annotation", "Annotations", ".xml")
    return {"image": os.path.join(root, "JPEGImages", stem + ".jpg"),
            other[0]: os.path.join(root, other[1], stem + other[2])}


def split_records(root: str, split: str, segmentation: bool) -> list[dict]:
    """One record per listed image: its stem and file paths, every file checked to exist."""
    listed = os.path.join(root, "ImageSets", LISTS[segmentation], f"{split}.txt")
    records = []
    for stem in read_list(root, split, segmentation):
        files = _files(root, stem, segmentation)
        for path in files.values():
            if not os.path.isfile(path):
                raise ValueError(f"voc dataset: expected {path} (image {stem!r} listed in "
                                 f"{listed}), not found")
        records.append({"stem": stem, **files})
    return records


def _number(node, tag: str, where: str) -> float:
    child = node.find(tag)
    try:
        return float(child.text)
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"{where}: expected a number in <{tag}>, got "
                         f"{None if child is None else child.text!r}") from None


def parse_annotation(path: str) -> tuple[tuple[int | None, int | None], list[dict]]:
    """((height, width) from <size>, or None where absent), [{'name', 'difficult', 'bndbox':
    (xmin, ymin, xmax, ymax) as written}] for each <object> (its <part>s are not objects)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise ValueError(f"voc dataset {path}: expected VOC annotation XML, got {error}") from None
    size = root.find("size")
    hw = (None, None) if size is None else \
        tuple(int(_number(size, tag, f"voc dataset {path} <size>")) for tag in ("height", "width"))
    objects = []
    for k, obj in enumerate(root.findall("object")):
        where = f"voc dataset {path} object {k}"
        name = (obj.findtext("name") or "").strip()
        if name not in CLASS_NAMES:
            raise ValueError(f"{where}: expected a <name> among {list(CLASS_NAMES)}, got {name!r}")
        box = obj.find("bndbox")
        if box is None:
            raise ValueError(f"{where} ({name}): expected a <bndbox>, got none")
        difficult = obj.find("difficult") is not None and bool(
            int(_number(obj, "difficult", f"{where} ({name})")))
        objects.append({"name": name, "difficult": difficult,
                        "bndbox": tuple(_number(box, t, f"{where} ({name}) <bndbox>")
                                        for t in ("xmin", "ymin", "xmax", "ymax"))})
    return hw, objects


def _box(bndbox: tuple, height: int, width: int, where: str) -> np.ndarray:
    """VOC's 1-based inclusive (xmin, ymin, xmax, ymax) -> continuous xyxy, checked and clipped."""
    xmin, ymin, xmax, ymax = bndbox
    if xmax < xmin or ymax < ymin:
        raise ValueError(f"{where}: expected xmin <= xmax and ymin <= ymax, got an inverted box "
                         f"(xmin, ymin, xmax, ymax) = {bndbox}")
    x0, y0, x1, y1 = xmin - 1, ymin - 1, xmax, ymax
    t = BOX_TOLERANCE
    if x0 < -t or y0 < -t or x1 > width + t or y1 > height + t:
        raise ValueError(f"{where}: expected a box inside the {width}x{height} image "
                         f"(1 <= xmin <= xmax <= width, 1 <= ymin <= ymax <= height, one pixel "
                         f"of slack), got (xmin, ymin, xmax, ymax) = {bndbox}")
    return np.clip(np.array([x0, y0, x1, y1], np.float32), 0, [width, height, width, height])


def read_mask(path: str) -> np.ndarray:
    """uint8 [H, W] class indices from a palette (or grey) PNG; BadImageError if unreadable."""
    try:
        with Image.open(path) as mask:
            mode, values = mask.mode, np.asarray(mask)
    except Exception as error:
        raise BadImageError(f"voc dataset mask {path}: expected a readable PNG, got "
                            f"{type(error).__name__}: {error}") from error
    if mode not in ("P", "L"):
        raise ValueError(f"voc dataset mask {path}: expected a palette (P) or grey (L) PNG of "
                         f"class indices, got mode {mode}")
    bad = (values > len(CLASS_NAMES)) & (values != IGNORE)
    if bad.any():
        raise ValueError(f"voc dataset mask {path}: expected values 0..{len(CLASS_NAMES)} or "
                         f"{IGNORE}, got {np.unique(values[bad]).tolist()[:5]}")
    return values.astype(np.uint8)


def load_record(record: dict, image_id: int) -> dict:
    """The example of one record (see the module docstring); BadImageError for a bad file."""
    data = read_bytes(record["image"])
    common = {"image": data, "image_id": np.int64(image_id), "file_name": record["stem"]}
    if "mask" in record:
        mask = read_mask(record["mask"])
        hw = check_listed_size(record["image"], data, mask.shape, "voc dataset",
                               listed_as=f"the size of its mask {record['mask']}")
        return {**common, "segmentation": mask, "orig_size": np.array(hw, np.int32)}
    listed, objects = parse_annotation(record["annotation"])
    height, width = check_listed_size(record["image"], data, listed,
                                      f"voc dataset {record['annotation']} <size>")
    where = [f"voc dataset {record['annotation']} object {k} ({o['name']})"
             for k, o in enumerate(objects)]
    boxes = np.zeros((len(objects), 4), np.float32)
    for k, obj in enumerate(objects):
        boxes[k] = _box(obj["bndbox"], height, width, where[k])
    return {**common, "boxes": boxes,
            "labels": np.array([CLASS_NAMES.index(o["name"]) for o in objects], np.int64),
            "difficult": np.array([o["difficult"] for o in objects], bool),
            "iscrowd": np.zeros(len(objects), bool),
            "orig_size": np.array([height, width], np.int32)}


@dataclasses.dataclass(kw_only=True)
class VocConfig(tfds.core.BuilderConfig):
    root: str = ""
    train_split: str = "trainval"
    test_split: str = "test"
    segmentation: bool = False
    skip_bad_images: bool = False


class VocFolder(LocalPreparation, tfds.core.GeneratorBasedBuilder):
    """A VOCdevkit year folder (see the module docstring for the layout)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [VocConfig(name="default")]

    def _info(self) -> tfds.core.DatasetInfo:
        def tensor(shape, dtype, **kw):
            return tfds.features.Tensor(shape=shape, dtype=dtype, **kw)

        features = {"image": tensor((), np.object_), "image_id": tensor((), np.int64),
                    "orig_size": tensor((2,), np.int32), "file_name": tfds.features.Text()}
        if self.builder_config.segmentation:
            features["segmentation"] = tensor((None, None), np.uint8, encoding="zlib")
        else:
            features.update(boxes=tensor((None, 4), np.float32),
                            labels=tensor((None,), np.int64),
                            difficult=tensor((None,), np.bool_),
                            iscrowd=tensor((None,), np.bool_))
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict(features),
            description=f"VOC folder {self.builder_config.root}",
            metadata=tfds.core.MetadataDict(), disable_shuffling=True)  # list order

    def _split_generators(self, dl_manager):
        del dl_manager
        cfg = self.builder_config
        records = {ours: split_records(cfg.root, theirs, cfg.segmentation)
                   for ours, theirs in (("train", cfg.train_split), ("test", cfg.test_split))}
        ids = image_ids(cfg.root)
        self.info.metadata.update(class_names=list(CLASS_NAMES), skipped_images={})
        load = lambda record: load_record(record, ids[record["stem"]])  # noqa: E731
        return {ours: self._generate_examples(recs, load, ours) for ours, recs in records.items()}

    def _generate_examples(self, records, load, split):
        """(index, load(record)) in list order; a BadImageError skips the record's example
        (listed in the metadata's `skipped_images`) with `skip_bad_images`, else raises."""
        skipped = []
        for index, record in enumerate(records):
            try:
                example = load(record)
            except BadImageError as error:
                if not self.builder_config.skip_bad_images:
                    raise
                logging.warning("%s dataset: skipping %s", self.name.split("_")[0], error)
                skipped.append(record["image"])
                continue
            yield index, example
        self.info.metadata["skipped_images"][split] = skipped


class VocSource(DecodedImages):
    """Random access over a prepared VocFolder split: image bytes decoded to uint8 [H, W, 3] at
    the original size, `file_name` as str."""

    def __getitem__(self, index):
        example = super().__getitem__(index)
        name = example["file_name"]
        example["file_name"] = name.decode() if isinstance(name, bytes) else str(name)
        return example


def voc_builder(root: str, *, train_split: str = "trainval", test_split: str = "test",
                segmentation: bool = False, skip_bad_images: bool = False,
                data_dir: str | None = None) -> VocFolder:
    """The builder for the VOC folder `root` (a year folder or a VOCdevkit holding one);
    prepare with `builder.download_and_prepare()`, then read `builder.info.metadata`
    (class_names, skipped_images). Missing lists are reported here, before any preparing."""
    root = year_folder(root)
    segmentation = bool(segmentation)
    for split in (train_split, test_split):
        read_list(root, split, segmentation)
    settings = (train_split, test_split, segmentation, skip_bad_images)
    digest = hashlib.sha1(f"{root}:{settings}".encode())
    folders = ["JPEGImages", os.path.join("ImageSets", LISTS[segmentation]),
               "SegmentationClass" if segmentation else "Annotations"]
    for folder in folders:
        for dirpath, _, files in sorted(os.walk(os.path.join(root, folder))):
            for name in sorted(files):
                st = os.stat(os.path.join(dirpath, name))
                digest.update(f"{folder}/{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    base = re.sub(r"[^A-Za-z0-9_]", "_", os.path.basename(root))[:40] or "root"
    name = f"{base}_{digest.hexdigest()[:10]}_{'seg' if segmentation else 'det'}"
    config = VocConfig(name=name, root=root, train_split=train_split, test_split=test_split,
                       segmentation=segmentation, skip_bad_images=skip_bad_images)
    return VocFolder(config=config, data_dir=data_dir, file_format="array_record")
