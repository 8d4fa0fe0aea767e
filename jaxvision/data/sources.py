"""Dataset sources by name: a table of builder functions, each returning random-access train and
test sources plus what a task needs to know.

`config.dataset` picks the table entry: `shapes`, `folder:<root>`, `coco:<root>`, `voc:<root>`
(a VOCdevkit year folder as extracted from the tar, prepared with no TensorFlow), `sbd:<root>`
(the Semantic Boundaries Dataset's class masks, optionally tested on a VOC folder's list),
`isbi:<root>` (the ISBI 2012 EM stacks, read in memory),
`imagefolder:<root>`, `oxford_iiit_pet`, `voc2007`, `voc2012`, `coco2017`, `imagenet2012` (TFDS
catalogue copies). The generic fields (`data.image_size`, `data.data_dir`,
`data.skip_bad_images`) are read by every entry that uses them; an entry's own settings come
from `data.builders.<entry>` (e.g. `data.builders.shapes.num_train`,
`data.builders.folder.holdout`, `data.builders.coco.masks`, `data.builders.voc.segmentation`,
`data.builders.sbd.voc_root`, `data.builders.isbi.holdout`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import types
from collections.abc import Callable
from typing import Any

from jaxvision.data.catalog import CATALOG, catalog_sources
from jaxvision.data.shapes import CLASS_NAMES, shapes_builder

DATASETS = ("shapes", "folder:<root>", "coco:<root>", "voc:<root>", "sbd:<root>",
            "imagefolder:<root>", "isbi:<root>", "oxford_iiit_pet", *CATALOG)
# entry -> its settings in data.builders.<entry> and their defaults
BUILDER_DEFAULTS = {
    "shapes": dict(num_train=2000, num_test=256, min_shapes=1, max_shapes=3, min_extent=0.2,
                   max_extent=0.45, seed=0),
    "folder": dict(holdout=8),
    "coco": dict(masks=None),  # None: decoded when the task uses instance masks
    "voc": dict(train_split="trainval", test_split="test", segmentation=False),
    "sbd": dict(train_split="train", test_split="val", voc_root=""),  # "": SBD's own test list
    "isbi": dict(holdout=5),  # the last 5 of the 30 training slices are the test split
}


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
    """Random-access train and test sources (`len`, `[i]` -> dict of numpy) and their metadata.

    class_names: foreground class names (dataset label k is class_names[k]); image_size: the
    size images are stored at (0: they vary); label_map: dataset label -> the source's own
    category id (COCO) or None; skipped_images: {split: [file, ...]} left out by
    `data.skip_bad_images`; info: anything else the source knows (a dict).
    """

    train: Any
    test: Any
    class_names: tuple[str, ...]
    image_size: int
    label_map: tuple[int, ...] | None = None
    skipped_images: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)


class WithImageIds:
    """A source whose examples gain `image_id` = their index (when they have none)."""

    def __init__(self, base):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index):
        example = self.base[index]
        if "image_id" not in example:
            example = {**example, "image_id": int(index)}
        return example

    def __repr__(self) -> str:
        return f"WithImageIds({self.base!r})"


def _namespace(cfg) -> types.SimpleNamespace:
    fields = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg))
    return types.SimpleNamespace(**fields)


def builder_kwargs(entry: str, data_cfg) -> dict:
    """`data.builders.<entry>` over the entry's defaults; an unknown key is a ValueError."""
    defaults = BUILDER_DEFAULTS.get(entry, {})
    builders = getattr(data_cfg, "builders", None) or {}
    given = builders.get(entry, {}) if isinstance(builders, dict) else getattr(builders, entry, {})
    given = given.to_dict() if hasattr(given, "to_dict") else dict(given or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"data.builders.{entry}: expected keys among {sorted(defaults)}, got "
                         f"{sorted(unknown)}")
    return {**defaults, **given}


def _skip_bad_images(data) -> bool:
    """`data.skip_bad_images` (False when the data config has no such field)."""
    return bool(getattr(data, "skip_bad_images", False))


def prepare_builder(builder) -> None:
    """`builder.download_and_prepare()`; when it fails, the folders it created (the builder's,
    its config's and version's, TFDS's `downloads/`) are removed, so a failed preparation
    leaves nothing behind."""
    version_dir = builder.data_dir  # <data_dir>/<builder>/<config>/<version>
    config_dir = os.path.dirname(version_dir)
    builder_dir = os.path.dirname(config_dir)
    data_dir = os.path.dirname(builder_dir)
    created = [d for d in (builder_dir, os.path.join(builder_dir, ".config"), config_dir,
                           version_dir, os.path.join(data_dir, "downloads"))
               if not os.path.exists(d)]
    try:
        builder.download_and_prepare()
    except BaseException:
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _shapes(arg: str, data, prepare: bool) -> DatasetSplits:
    del arg
    kw = builder_kwargs("shapes", data)
    try:
        builder = shapes_builder(image_size=data.image_size, data_dir=data.data_dir, **kw)
    except ValueError as error:  # name the config field
        raise ValueError("config.data.builders." + str(error).replace("shapes ", "shapes.", 1)
                         ) from error
    if prepare:
        prepare_builder(builder)
    return DatasetSplits(train=WithImageIds(builder.as_data_source(split="train")),
                         test=WithImageIds(builder.as_data_source(split="test")),
                         class_names=CLASS_NAMES, image_size=data.image_size)


def _folder(root: str, data, prepare: bool) -> DatasetSplits:
    from jaxvision.data.folder import folder_builder

    builder, names = folder_builder(root, data_dir=data.data_dir,
                                    skip_bad_images=_skip_bad_images(data),
                                    **builder_kwargs("folder", data))
    return _decoded(builder, names, prepare)


def _imagefolder(root: str, data, prepare: bool) -> DatasetSplits:
    from jaxvision.data.imagefolder import imagefolder_builder

    builder, names = imagefolder_builder(root, data_dir=data.data_dir,
                                         skip_bad_images=_skip_bad_images(data))
    return _decoded(builder, names, prepare)


def _decoded(builder, names: tuple[str, ...], prepare: bool) -> DatasetSplits:
    """The splits of a folder builder storing image files' bytes, at their own sizes."""
    from jaxvision.data.images import DecodedImages

    if prepare:
        prepare_builder(builder)
    return DatasetSplits(train=DecodedImages(builder.as_data_source(split="train")),
                         test=DecodedImages(builder.as_data_source(split="test")),
                         class_names=names, image_size=0, skipped_images=_skipped(builder),
                         info={"root": builder.builder_config.root})


def _coco(root: str, data, prepare: bool) -> DatasetSplits:
    from jaxvision.data.coco import SPLITS, annotation_path, coco_builder
    from jaxvision.data.images import DecodedImages

    kw = builder_kwargs("coco", data)
    if kw["masks"] is None:
        kw["masks"] = bool(getattr(data, "instance_masks", True))
    builder = coco_builder(root, data_dir=data.data_dir,
                           skip_bad_images=_skip_bad_images(data), **kw)
    if prepare:
        prepare_builder(builder)
    meta = builder.info.metadata or {}
    return DatasetSplits(train=DecodedImages(builder.as_data_source(split="train")),
                         test=DecodedImages(builder.as_data_source(split="test")),
                         class_names=tuple(meta.get("class_names", ())), image_size=0,
                         label_map=tuple(meta.get("label_map", ())),
                         skipped_images=_skipped(builder),
                         info={"root": builder.builder_config.root,
                               "test_annotations": annotation_path(builder.builder_config.root,
                                                                   SPLITS["test"])})


def _voc_splits(builder, prepare: bool, **info) -> DatasetSplits:
    """The splits of a VOC-format builder (`voc:`, `sbd:`), read through VocSource."""
    from jaxvision.data.voc import CLASS_NAMES, VocSource

    if prepare:
        prepare_builder(builder)
    cfg = builder.builder_config
    return DatasetSplits(train=VocSource(builder.as_data_source(split="train")),
                         test=VocSource(builder.as_data_source(split="test")),
                         class_names=CLASS_NAMES, image_size=0, skipped_images=_skipped(builder),
                         info={"root": cfg.root, **info,
                               "splits": {"train": cfg.train_split, "test": cfg.test_split}})


def _voc(root: str, data, prepare: bool) -> DatasetSplits:
    from jaxvision.data.voc import voc_builder

    builder = voc_builder(root, data_dir=data.data_dir,
                          skip_bad_images=_skip_bad_images(data),
                          **builder_kwargs("voc", data))
    return _voc_splits(builder, prepare, segmentation=builder.builder_config.segmentation)


def _sbd(root: str, data, prepare: bool) -> DatasetSplits:
    from jaxvision.data.sbd import sbd_builder

    builder = sbd_builder(root, data_dir=data.data_dir,
                          skip_bad_images=_skip_bad_images(data),
                          **builder_kwargs("sbd", data))
    return _voc_splits(builder, prepare, voc_root=builder.builder_config.voc_root,
                       segmentation=True)


def _skipped(builder) -> dict:
    meta = builder.info.metadata or {}
    return {k: list(v) for k, v in dict(meta.get("skipped_images", {})).items()}


def _isbi(root: str, data, prepare: bool) -> DatasetSplits:
    del prepare  # read in memory (30 slices of 512 x 512)
    from jaxvision.data.isbi import CLASS_NAMES as ISBI_CLASSES
    from jaxvision.data.isbi import isbi_sources

    sources = isbi_sources(root, **builder_kwargs("isbi", data))
    return DatasetSplits(train=sources["train"], test=sources["test"], class_names=ISBI_CLASSES,
                         image_size=0, info={"root": root, "challenge": sources.get("challenge")})


def _pets(arg: str, data, prepare: bool) -> DatasetSplits:
    del arg, prepare
    from jaxvision.data.pets import CLASS_NAMES as PET_CLASSES
    from jaxvision.data.pets import pet_sources

    sources = pet_sources(data.data_dir, data.image_size)
    return DatasetSplits(train=sources["train"], test=sources["test"],
                         class_names=PET_CLASSES, image_size=data.image_size)


def _catalog(name: str) -> Callable:
    def build(arg: str, data, prepare: bool) -> DatasetSplits:
        del arg, prepare  # catalogue datasets are prepared with `tfds build` (the [tf] extra)
        sources, names = catalog_sources(name, data.data_dir)
        return DatasetSplits(train=sources["train"], test=sources["test"], class_names=names,
                             image_size=0, info={"tfds_name": CATALOG[name][0]})
    return build


# table name -> builder(argument after ':', data config namespace, prepare) -> DatasetSplits
TABLE: dict[str, Callable] = {"shapes": _shapes, "folder": _folder, "coco": _coco, "voc": _voc,
                              "sbd": _sbd, "imagefolder": _imagefolder, "isbi": _isbi,
                              "oxford_iiit_pet": _pets,
                              **{name: _catalog(name) for name in CATALOG}}
NEEDS_ROOT = ("folder", "coco", "voc", "sbd", "imagefolder", "isbi")


def parse_dataset(name: str) -> tuple[str, str]:
    """'coco:/data/x' -> ('coco', '/data/x'); ValueError for an unknown entry or a missing root."""
    entry, _, arg = name.partition(":")
    if entry not in TABLE:
        raise ValueError(f"dataset: expected one of {DATASETS}, got {name!r}")
    if (entry in NEEDS_ROOT) != bool(arg):
        want = f"{entry}:<root>" if entry in NEEDS_ROOT else entry
        raise ValueError(f"dataset: expected {want!r}, got {name!r}")
    return entry, arg


def load_splits(name: str, data_cfg, *, prepare: bool = True, instance_masks: bool = True
                ) -> DatasetSplits:
    """Builds (once, on first use) and opens the dataset `name` configured by `data_cfg` (the
    `config.data` fields, as a ConfigDict or namespace; `~` in `data_dir` is expanded; the
    entry's own settings in `data_cfg.builders.<entry>`). `instance_masks`: whether the task
    uses instance masks (a COCO folder decodes its polygons only then, unless
    `data.builders.coco.masks` says otherwise)."""
    entry, arg = parse_dataset(name)
    data = _namespace(data_cfg)
    data.instance_masks = instance_masks
    data.data_dir = os.path.expanduser(data.data_dir)
    splits = TABLE[entry](arg, data, prepare)
    settings = dict(getattr(data, "proposals", None) or {})
    if settings.get("method", "none") == "none":
        return splits
    return dataclasses.replace(splits, **{
        split: _with_proposals(getattr(splits, split), name, split, data, settings)
        for split in ("train", "test")})


def _with_proposals(source, name: str, split: str, data, settings: dict):
    """`source` with selective-search proposals from a per-split cache file under
    `<data_dir>/jaxvision_proposals/`, keyed by everything that decides the images and boxes
    (not the number of worker processes)."""
    from jaxvision.data.proposals import WithProposals, cached_proposals

    entry = parse_dataset(name)[0]
    key = dict(dataset=name, split=split, size=len(source), image_size=data.image_size,
               builder=builder_kwargs(entry, data) if entry in BUILDER_DEFAULTS else {},
               proposals={k: v for k, v in settings.items() if k != "processes"})
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=list).encode()).hexdigest()
    folder = os.path.join(data.data_dir, "jaxvision_proposals")
    os.makedirs(folder, exist_ok=True)
    stem = name.replace(":", "_").replace("/", "_")[-60:]
    boxes, valid = cached_proposals(
        source, os.path.join(folder, f"{stem}-{split}-{digest[:16]}.npz"),
        settings["max_proposals"], processes=settings["processes"],
        desc=f"selective search ({split})", ks=tuple(settings["ks"]),
        strategy=settings["strategy"], min_size=settings["min_size"], seed=settings["seed"])
    return WithProposals(source, boxes, valid)
