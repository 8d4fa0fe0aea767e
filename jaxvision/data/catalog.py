"""TFDS catalogue datasets (prepared with the `[tf]` extra) as sources in our conventions.

Reading a prepared array_record copy needs no TensorFlow (`tfds.data_source` decodes with
numpy/PIL); preparing it does:

    pip install -e '.[tf]'
    tfds build voc/2007 --data_dir <data_dir> --file_format array_record

Detection examples come out as `image` uint8 [H, W, 3], `boxes` float32 [N, 4] xyxy absolute
(TFDS's normalised ymin, xmin, ymax, xmax converted here, once), `labels` int64 [N] (0-based
dataset labels), `iscrowd` bool [N], `difficult` bool [N] (VOC), `image_id` (COCO's id, else the
index); ImageNet as `image` uint8 [H, W, 3] and `label`, cropped later by the transform.
"""

from __future__ import annotations

import io

import numpy as np

# our name -> (TFDS name, train split, test split, how to prepare it)
CATALOG = {
    "voc2007": ("voc/2007", "train+validation", "test",
                "`tfds build voc/2007 --data_dir <data_dir> --file_format array_record`"),
    "voc2012": ("voc/2012", "train", "validation",
                "`tfds build voc/2012 --data_dir <data_dir> --file_format array_record`"),
    "coco2017": ("coco/2017", "train", "validation",
                 "`tfds build coco/2017 --data_dir <data_dir> --file_format array_record` "
                 "(downloads 25 GB)"),
    "imagenet2012": ("imagenet2012", "train", "validation",
                     "manual download of ILSVRC2012_img_{train,val}.tar into "
                     "<data_dir>/downloads/manual, then `tfds build imagenet2012 --data_dir "
                     "<data_dir> --file_format array_record`"),
}


def _field(example: dict, *path: str):
    """example['objects']['bbox'] or the flattened example['objects/bbox']."""
    if "/".join(path) in example:
        return example["/".join(path)]
    value = example
    for key in path:
        value = value[key]
    return value


def _has(example: dict, *path: str) -> bool:
    try:
        _field(example, *path)
        return True
    except (KeyError, TypeError):
        return False


def decode_image(value, name: str = "image") -> np.ndarray:
    """uint8 [H, W, 3] from a decoded array ([H, W], [H, W, 1|3|4]) or encoded bytes; a file
    that cannot be decoded raises ValueError naming `name`."""
    if isinstance(value, (bytes, np.bytes_)):
        from PIL import Image

        try:
            with Image.open(io.BytesIO(bytes(value))) as image:
                return np.asarray(image.convert("RGB"), np.uint8)
        except Exception as error:
            raise ValueError(f"image {name}: expected a readable image file, got {error}"
                             ) from error
    image = np.asarray(value)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image {name}: expected [H, W, 3], got shape {image.shape}")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image[..., :3], np.uint8)


def convert_detection(example: dict, index: int) -> dict[str, np.ndarray]:
    """One TFDS voc/coco example -> our detection example (see the module docstring)."""
    image = decode_image(example["image"], str(example.get("image/filename", index)))
    h, w = image.shape[:2]
    bbox = np.asarray(_field(example, "objects", "bbox"), np.float32).reshape(-1, 4)
    boxes = bbox[:, [1, 0, 3, 2]] * np.array([w, h, w, h], np.float32)
    n = len(boxes)
    out = {"image": image, "boxes": boxes.astype(np.float32),
           "labels": np.asarray(_field(example, "objects", "label"), np.int64).reshape(n),
           "iscrowd": np.zeros(n, bool), "image_id": np.int64(index),
           "orig_size": np.array([h, w], np.int32)}
    if _has(example, "objects", "is_crowd"):
        out["iscrowd"] = np.asarray(_field(example, "objects", "is_crowd"), bool).reshape(n)
    if _has(example, "objects", "is_difficult"):
        out["difficult"] = np.asarray(_field(example, "objects", "is_difficult"),
                                      bool).reshape(n)
    if "image/id" in example:
        out["image_id"] = np.int64(example["image/id"])
    return out


def convert_classification(example: dict, index: int) -> dict[str, np.ndarray]:
    """One TFDS imagenet2012 example -> {'image': uint8 [H, W, 3], 'label': int64}."""
    name = example.get("file_name", index)
    if isinstance(name, bytes):
        name = name.decode()
    return {"image": decode_image(example["image"], str(name)),
            "label": np.int64(example["label"])}


class CatalogSource:
    """Random access (`len`, `[i]`) over converted examples of a TFDS-like `base` source."""

    def __init__(self, base, convert):
        self.base, self.convert = base, convert

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index):
        return self.convert(self.base[index], int(index))

    def __repr__(self) -> str:
        return f"CatalogSource({len(self)} examples)"


def _have_tensorflow() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def unavailable(name: str, data_dir: str, error: Exception | None = None) -> ValueError:
    """The error for a catalogue dataset that is not prepared: what it needs, in order."""
    needs = [] if _have_tensorflow() else ["`pip install -e '.[tf]'` (TensorFlow, to prepare it)"]
    needs.append(f"a prepared TFDS {CATALOG[name][0]} in data.data_dir={data_dir!r} "
                 f"({CATALOG[name][3]})")
    detail = f" ({type(error).__name__}: {error})" if error is not None else ""
    return ValueError(f"dataset={name!r}: expected a prepared catalog dataset; it needs "
                      + "; ".join(needs) + detail)


def catalog_sources(name: str, data_dir: str, open_split=None):
    """({'train': CatalogSource, 'test': CatalogSource}, class names) for catalogue dataset
    `name`; `open_split(tfds_name, split)` gives a raw source (default: `tfds.data_source`)."""
    if name not in CATALOG:
        raise ValueError(f"dataset: expected one of {sorted(CATALOG)}, got {name!r}")
    tfds_name, train_split, test_split, _ = CATALOG[name]
    if open_split is None:
        import tensorflow_datasets as tfds

        def open_split(tfds_name, split):
            return tfds.data_source(tfds_name, split=split, data_dir=data_dir, download=False)
    try:
        raw = {"train": open_split(tfds_name, train_split),
               "test": open_split(tfds_name, test_split)}
    except Exception as error:  # not prepared / no array_record copy
        raise unavailable(name, data_dir, error) from error
    convert = convert_classification if name == "imagenet2012" else convert_detection
    names = _class_names(raw["train"], "label" if name == "imagenet2012" else "objects")
    return {split: CatalogSource(base, convert) for split, base in raw.items()}, names


def _class_names(base, feature: str) -> tuple[str, ...]:
    """Label names from the source's DatasetInfo (features[feature]['label'] for objects)."""
    info = getattr(base, "dataset_info", None)
    if info is None:
        raise ValueError("catalog source: expected a tfds data source with dataset_info, got "
                         f"{type(base).__name__}")
    label = info.features[feature]
    if feature == "objects":
        label = label["label"]
    return tuple(label.names)
