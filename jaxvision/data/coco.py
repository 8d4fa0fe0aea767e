"""A TFDS builder for a COCO-format folder: bring your own detection / instance data.

Layout:

    <root>/annotations/instances_train.json   COCO instances format (images, annotations,
    <root>/annotations/instances_val.json     categories); val is the test split
    <root>/images/<file_name>                 (or <root>/images/<train|val>/<file_name>)

Prepared once into array_record with no TensorFlow (like the segmentation folder builder), in
increasing image-id order. Each example holds the image file's bytes (decoded when read),
`boxes` float32 [N, 4] xyxy absolute (from COCO's x, y, w, h), `labels` int64 [N] (contiguous
0..K-1 in the order of sorted category ids), `iscrowd` bool [N], `masks` uint8 [N, H, W]
(polygons and RLE decoded with pycocotools; only with `masks=True`), `image_id` (COCO's id) and
`orig_size` [2]. Class names come from the categories; `label -> category id` is kept in the
dataset's metadata (`label_map`).

Bad input raises ValueError naming the file and the record: an unreadable image (or skipped and
counted with `skip_bad_images=True`), an annotation naming an image id that is not listed or a
listed image whose file is missing, a listed height/width that is not the file's (naming the fix
when the file's EXIF orientation swaps its sides), an unknown category, an inverted box (w or
h < 0) or a box reaching more than one pixel outside its image (within one pixel it is clipped).
The builder's config name hashes the root and every annotation file's size and modification
time. TFDS prepares into a temporary folder and renames it when done, so a failed preparation
leaves nothing a later run would read.

    python train.py --config configs/<detector>.py --config.dataset=coco:/path/to/root
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from jaxvision.data.images import BadImageError, check_listed_size, read_bytes
from jaxvision.data.local_builder import LocalPreparation

SPLITS = {"train": "train", "test": "val"}
BOX_TOLERANCE = 1.0  # pixels a box may reach outside its image before it is an error


def annotation_path(root: str, split: str) -> str:
    return os.path.join(root, "annotations", f"instances_{split}.json")


def read_annotations(root: str) -> dict[str, dict]:
    """{'train': json, 'test': json} from `<root>/annotations/instances_{train,val}.json`."""
    out = {}
    for ours, theirs in SPLITS.items():
        path = annotation_path(root, theirs)
        if not os.path.isfile(path):
            raise ValueError(f"coco dataset: expected {path}, not found")
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(f"coco dataset {path}: expected COCO instances JSON, got "
                                 f"{error}") from error
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise ValueError(f"coco dataset {path}: expected a list '{key}', got "
                                 f"{type(data.get(key)).__name__}")
        out[ours] = data
    return out


def categories(annotations: dict[str, dict]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(class names, category ids) in sorted-id order, from the train file (val must agree)."""
    cats = {int(c["id"]): str(c["name"]) for c in annotations["train"]["categories"]}
    val = {int(c["id"]): str(c["name"]) for c in annotations["test"]["categories"]}
    if val != cats:
        raise ValueError(f"coco dataset categories: expected instances_val.json to list the "
                         f"categories of instances_train.json {sorted(cats.items())}, got "
                         f"{sorted(val.items())}")
    if not cats:
        raise ValueError("coco dataset categories: expected at least one, got none")
    ids = tuple(sorted(cats))
    return tuple(cats[i] for i in ids), ids


def _image_file(root: str, split: str, file_name: str) -> str:
    candidates = [os.path.join(root, "images", file_name),
                  os.path.join(root, "images", split, file_name)]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise ValueError(f"coco dataset image: expected {' or '.join(candidates)} (listed in "
                     f"{annotation_path(root, split)}), not found")


def _box(ann: dict, width: int, height: int, where: str) -> np.ndarray:
    """COCO [x, y, w, h] -> xyxy float32, checked against the image and clipped to it."""
    bbox = ann.get("bbox")
    if bbox is None or len(bbox) != 4:
        raise ValueError(f"{where}: expected bbox [x, y, w, h], got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0:
        raise ValueError(f"{where}: expected a box with w >= 0 and h >= 0, got an inverted box "
                         f"[x, y, w, h] = {bbox}")
    t = BOX_TOLERANCE
    if x < -t or y < -t or x + w > width + t or y + h > height + t:
        raise ValueError(f"{where}: expected a box inside the {width}x{height} image, got "
                         f"[x, y, w, h] = {bbox} (xyxy {[x, y, x + w, y + h]})")
    return np.clip(np.array([x, y, x + w, y + h], np.float32), 0, [width, height, width, height])


def _mask(ann: dict, height: int, width: int, where: str) -> np.ndarray:
    """uint8 [H, W] from a polygon list, an uncompressed RLE or a compressed RLE."""
    from pycocotools import mask as mask_utils

    seg = ann.get("segmentation")
    if not seg:
        return np.zeros((height, width), np.uint8)
    if isinstance(seg, list):
        for polygon in seg:
            if len(polygon) < 6:
                raise ValueError(f"{where}: polygon with {len(polygon) // 2} points, expected "
                                 ">= 3")
    try:
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = dict(seg)
            if isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode()
        if "size" in rle and list(rle["size"]) != [height, width]:
            raise ValueError(f"RLE size {rle['size']} is not the image's {[height, width]}")
        return np.asarray(mask_utils.decode(rle), np.uint8)
    except Exception as error:
        raise ValueError(f"{where}: expected a polygon or RLE segmentation of the {width}x"
                         f"{height} image, got {type(error).__name__}: {error}") from error


def split_records(root: str, split: str, data: dict, category_ids: tuple[int, ...]
                  ) -> list[dict]:
    """One record per listed image (sorted by id) with its checked annotations."""
    images = {}
    for img in data["images"]:
        images[int(img["id"])] = img
    by_image: dict[int, list] = {i: [] for i in images}
    label_of = {c: k for k, c in enumerate(category_ids)}
    path = annotation_path(root, split)
    for ann in data["annotations"]:
        where = f"coco dataset {path} annotation id {ann.get('id')}"
        image_id = int(ann.get("image_id", -1))
        if image_id not in images:
            raise ValueError(f"{where}: expected an image_id listed in 'images', got {image_id} "
                             "(no such image)")
        if int(ann.get("category_id", -1)) not in label_of:
            raise ValueError(f"{where}: expected a category_id in {list(category_ids)}, got "
                             f"{ann.get('category_id')}")
        by_image[image_id].append(ann)
    return [{"image": images[i], "annotations": by_image[i],
             "file": _image_file(root, split, images[i]["file_name"])} for i in sorted(images)]


def load_record(record: dict, path: str, label_of: dict, with_masks: bool) -> dict:
    """The example of one record (see the module docstring); BadImageError for a bad file."""
    img = record["image"]
    data = read_bytes(record["file"])
    height, width = check_listed_size(record["file"], data, (img.get("height"), img.get("width")),
                                      f"coco dataset {path} image id {img['id']}")
    anns = record["annotations"]
    where = [f"coco dataset {path} annotation id {a.get('id')}" for a in anns]
    boxes = np.zeros((len(anns), 4), np.float32)
    for k, ann in enumerate(anns):
        boxes[k] = _box(ann, width, height, where[k])
    example = {
        "image": data, "boxes": boxes,
        "labels": np.array([label_of[int(a["category_id"])] for a in anns], np.int64),
        "iscrowd": np.array([bool(a.get("iscrowd", 0)) for a in anns], bool),
        "image_id": np.int64(img["id"]), "orig_size": np.array([height, width], np.int32)}
    if with_masks:
        example["masks"] = np.zeros((len(anns), height, width), np.uint8).reshape(
            len(anns), height, width)
        for k, ann in enumerate(anns):
            example["masks"][k] = _mask(ann, height, width, where[k])
    return example


@dataclasses.dataclass(kw_only=True)
class CocoConfig(tfds.core.BuilderConfig):
    root: str = ""
    masks: bool = True
    skip_bad_images: bool = False


class CocoFolder(LocalPreparation, tfds.core.GeneratorBasedBuilder):
    """A COCO-format folder (see the module docstring for the layout)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [CocoConfig(name="default")]

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            "image": tfds.features.Tensor(shape=(), dtype=np.object_),
            "boxes": tfds.features.Tensor(shape=(None, 4), dtype=np.float32),
            "labels": tfds.features.Tensor(shape=(None,), dtype=np.int64),
            "iscrowd": tfds.features.Tensor(shape=(None,), dtype=np.bool_),
            "image_id": tfds.features.Tensor(shape=(), dtype=np.int64),
            "orig_size": tfds.features.Tensor(shape=(2,), dtype=np.int32)}
        if self.builder_config.masks:
            features["masks"] = tfds.features.Tensor(shape=(None, None, None), dtype=np.uint8,
                                                     encoding="zlib")
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict(features),
            description=f"COCO-format folder {self.builder_config.root}",
            metadata=tfds.core.MetadataDict(), disable_shuffling=True)  # image-id order

    def _split_generators(self, dl_manager):
        del dl_manager
        cfg = self.builder_config
        annotations = read_annotations(cfg.root)
        names, ids = categories(annotations)
        self.info.metadata.update(class_names=list(names), label_map=list(ids),
                                  skipped_images={})
        label_of = {c: k for k, c in enumerate(ids)}
        return {ours: self._generate_examples(
                    split_records(cfg.root, SPLITS[ours], annotations[ours], ids),
                    annotation_path(cfg.root, SPLITS[ours]), label_of, ours)
                for ours in SPLITS}

    def _generate_examples(self, records, path, label_of, split):
        skipped = []
        for record in records:
            try:
                example = load_record(record, path, label_of, self.builder_config.masks)
            except BadImageError as error:
                if not self.builder_config.skip_bad_images:
                    raise
                logging.warning("coco dataset: skipping %s", error)
                skipped.append(record["file"])
                continue
            yield int(record["image"]["id"]), example
        self.info.metadata["skipped_images"][split] = skipped


def coco_builder(root: str, *, masks: bool = True, skip_bad_images: bool = False,
                 data_dir: str | None = None) -> CocoFolder:
    """The builder for the COCO-format folder `root`; prepare with
    `builder.download_and_prepare()`, then read `builder.info.metadata` (class_names,
    label_map, skipped_images)."""
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise ValueError(f"coco dataset root: expected a directory, got {root!r}")
    digest = hashlib.sha1(root.encode())
    for split in SPLITS.values():
        path = annotation_path(root, split)
        if not os.path.isfile(path):
            raise ValueError(f"coco dataset: expected {path}, not found")
        st = os.stat(path)
        digest.update(f"{split}:{st.st_size}:{st.st_mtime_ns}".encode())
    images = os.path.join(root, "images")
    if os.path.isdir(images):
        for dirpath, _, files in sorted(os.walk(images)):
            for name in sorted(files):
                st = os.stat(os.path.join(dirpath, name))
                digest.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    base = re.sub(r"[^A-Za-z0-9_]", "_", os.path.basename(root))[:40] or "root"
    name = f"{base}_{digest.hexdigest()[:10]}_m{int(masks)}_s{int(skip_bad_images)}"
    config = CocoConfig(name=name, root=root, masks=masks, skip_bad_images=skip_bad_images)
    return CocoFolder(config=config, data_dir=data_dir, file_format="array_record")
