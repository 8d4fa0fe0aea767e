"""A TFDS builder for the Semantic Boundaries Dataset (SBD, Hariharan et al. 2011) as its
benchmark.tgz extracts, read as semantic segmentation (the class masks of the 20 VOC classes).

Layout (`<root>` is benchmark_RELEASE/dataset, or a folder holding it as `dataset/` or
`benchmark_RELEASE/dataset/`):

    <root>/train.txt, <root>/val.txt   one image name (file stem) a line: 8,498 / 2,857 images
    <root>/img/<stem>.jpg
    <root>/cls/<stem>.mat              MATLAB struct GTcls whose field Segmentation is the
                                       class mask, uint8 [H, W]: 0 background, 1..20 classes

`train_split` (default train) and `test_split` (default val) name the lists. With `voc_root` (a
VOC year folder, or a VOCdevkit holding one, as `voc:` reads it), the test split is instead that
folder's segmentation list `ImageSets/Segmentation/<test_split>.txt` with its SegmentationClass
PNGs (255 = void): SBD train and VOC 2011 seg11valid, as Long et al. evaluate FCN.

Examples are those of `voc:` with `data.builders.voc.segmentation=True` (jaxvision.data.voc):
`image` (the file's bytes, decoded by `VocSource`), `segmentation` uint8 [H, W], `image_id` (the
stem read as an integer, as `voc:` does, over img/ or the VOC JPEGImages/), `orig_size`,
`file_name`. Bad input raises ValueError naming the file: a missing list or listed file, an
unreadable image or .mat (skipped with `skip_bad_images=True`), a .mat without GTcls.Segmentation,
a mask of another size than its image or with values other than 0..20 and 255.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

import numpy as np
import scipy.io

from jaxvision.data import voc
from jaxvision.data.images import BadImageError, check_listed_size, read_bytes

WHERE = "sbd dataset"


def dataset_folder(root: str) -> str:
    """The SBD `dataset` folder (holding img/ and cls/) at or inside `root`."""
    root = os.path.abspath(os.path.expanduser(root))
    candidates = (root, os.path.join(root, "dataset"),
                  os.path.join(root, "benchmark_RELEASE", "dataset"))
    for folder in candidates:
        if all(os.path.isdir(os.path.join(folder, d)) for d in ("img", "cls")):
            return folder
    found = sorted(os.listdir(root))[:10] if os.path.isdir(root) else "no such directory"
    raise ValueError(f"{WHERE} root {root}: expected SBD's benchmark_RELEASE/dataset folder "
                     f"(img/, cls/, train.txt, val.txt) or a folder holding it, got {found}")


def read_cls(path: str) -> np.ndarray:
    """uint8 [H, W] class indices from an SBD cls/*.mat (GTcls.Segmentation)."""
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as error:
        raise BadImageError(f"{WHERE} mask {path}: expected a readable .mat file, got "
                            f"{type(error).__name__}: {error}") from error
    mask = getattr(mat.get("GTcls"), "Segmentation", None)
    if mask is None:
        raise ValueError(f"{WHERE} mask {path}: expected a struct GTcls with a field "
                         f"Segmentation, got variables {sorted(k for k in mat if k[0] != '_')}")
    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"{WHERE} mask {path}: expected GTcls.Segmentation of integer class "
                         f"indices [H, W], got {mask.dtype} {mask.shape}")
    bad = (mask < 0) | ((mask > len(voc.CLASS_NAMES)) & (mask != voc.IGNORE))
    if bad.any():
        raise ValueError(f"{WHERE} mask {path}: expected values 0..{len(voc.CLASS_NAMES)} or "
                         f"{voc.IGNORE}, got {np.unique(mask[bad]).tolist()[:5]}")
    return mask.astype(np.uint8)


def split_records(root: str, split: str) -> list[dict]:
    """One record per image of `<root>/<split>.txt`: stem, image and mask paths (checked)."""
    records = []
    for stem in voc.read_stems(root, split, WHERE):
        record = {"stem": stem, "image": os.path.join(root, "img", stem + ".jpg"),
                  "mask": os.path.join(root, "cls", stem + ".mat")}
        for key in ("image", "mask"):
            if not os.path.isfile(record[key]):
                raise ValueError(f"{WHERE}: expected {record[key]} (image {stem!r} listed in "
                                 f"{os.path.join(root, split + '.txt')}), not found")
        records.append(record)
    return records


def load_record(record: dict, image_id: int) -> dict:
    """The segmentation example of one SBD record; BadImageError for an unreadable file."""
    data = read_bytes(record["image"])
    mask = read_cls(record["mask"])
    hw = check_listed_size(record["image"], data, mask.shape, WHERE,
                           listed_as=f"the size of its mask {record['mask']}")
    return {"image": data, "segmentation": mask, "image_id": np.int64(image_id),
            "file_name": record["stem"], "orig_size": np.array(hw, np.int32)}


@dataclasses.dataclass(kw_only=True)
class SbdConfig(voc.VocConfig):
    train_split: str = "train"
    test_split: str = "val"
    segmentation: bool = True
    voc_root: str = ""  # a VOC year folder: the test split is its segmentation list


class SbdFolder(voc.VocFolder):
    """SBD's dataset folder (see the module docstring), as VOC segmentation examples."""

    BUILDER_CONFIGS = [SbdConfig(name="default")]

    def _split_generators(self, dl_manager):
        del dl_manager
        cfg = self.builder_config
        ids = voc.image_ids(cfg.root, "img")
        train = split_records(cfg.root, cfg.train_split)
        loads = {"train": lambda r: load_record(r, ids[r["stem"]])}
        if cfg.voc_root:
            test = voc.split_records(cfg.voc_root, cfg.test_split, segmentation=True)
            voc_ids = voc.image_ids(cfg.voc_root)
            loads["test"] = lambda r: voc.load_record(r, voc_ids[r["stem"]])
        else:
            test = split_records(cfg.root, cfg.test_split)
            loads["test"] = loads["train"]
        self.info.metadata.update(class_names=list(voc.CLASS_NAMES), skipped_images={})
        return {split: self._generate_examples(records, loads[split], split)
                for split, records in (("train", train), ("test", test))}


def sbd_builder(root: str, *, train_split: str = "train", test_split: str = "val",
                voc_root: str = "", skip_bad_images: bool = False,
                data_dir: str | None = None) -> SbdFolder:
    """The builder for the SBD folder `root` (test split from `voc_root` when given); prepare
    with `builder.download_and_prepare()`. Missing lists are reported here, before preparing."""
    root = dataset_folder(root)
    voc_root = voc.year_folder(voc_root) if voc_root else ""
    voc.read_stems(root, train_split, WHERE)
    if voc_root:
        voc.read_list(voc_root, test_split, segmentation=True)
    else:
        voc.read_stems(root, test_split, WHERE)
    settings = (train_split, test_split, voc_root, skip_bad_images)
    digest = hashlib.sha1(f"{root}:{settings}".encode())
    folders = [(root, "img"), (root, "cls"), (root, ".")]
    if voc_root:
        folders += [(voc_root, "JPEGImages"), (voc_root, "ImageSets/Segmentation"),
                    (voc_root, "SegmentationClass")]
    for base, folder in folders:
        path = os.path.join(base, folder)
        names = sorted(os.listdir(path)) if folder != "." else sorted(
            n for n in os.listdir(path) if n.endswith(".txt"))
        for name in names:
            st = os.stat(os.path.join(path, name))
            digest.update(f"{base}/{folder}/{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    base = re.sub(r"[^A-Za-z0-9_]", "_", os.path.basename(os.path.dirname(root)))[:40] or "root"
    config = SbdConfig(name=f"{base}_{digest.hexdigest()[:10]}", root=root,
                       train_split=train_split, test_split=test_split, voc_root=voc_root,
                       skip_bad_images=skip_bad_images)
    return SbdFolder(config=config, data_dir=data_dir, file_format="array_record")
