"""Dataset sources by name: random-access TFDS data sources plus what a task needs to know."""

from __future__ import annotations

import dataclasses
import os
import types
from typing import Any

from jaxvision.data.shapes import CLASS_NAMES, shapes_builder

DATASETS = ("shapes", "imagenet2012", "oxford_iiit_pet", "folder:<root>")
# Catalog datasets that need TensorFlow (the `[tf]` extra) and a prepared TFDS copy.
CATALOG = {"imagenet2012": "manual download of ILSVRC2012_img_{train,val}.tar into "
                           "<data_dir>/downloads/manual, then `tfds build imagenet2012 "
                           "--data_dir <data_dir> --file_format array_record`"}


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
    """Random-access train and test sources (`len`, `[i]` -> dict of numpy) and their metadata."""

    train: Any
    test: Any
    class_names: tuple[str, ...]
    image_size: int


def load_splits(name: str, data_cfg, *, prepare: bool = True) -> DatasetSplits:
    """Builds (once, on first use) and opens the dataset `name` configured by `data_cfg` (the
    `config.data` fields, as a ConfigDict or namespace; `~` in `data_dir` is expanded)."""
    fields = data_cfg.to_dict() if hasattr(data_cfg, "to_dict") else dict(vars(data_cfg))
    data_cfg = types.SimpleNamespace(**fields)
    data_cfg.data_dir = os.path.expanduser(data_cfg.data_dir)
    if name in CATALOG:
        _catalog_unavailable(name, data_cfg)
    if name == "oxford_iiit_pet" or name.startswith("folder:"):
        return _segmentation_splits(name, data_cfg, prepare)
    if name != "shapes":
        raise ValueError(f"dataset: expected one of {DATASETS}, got {name!r}")
    builder = shapes_builder(
        image_size=data_cfg.image_size, num_train=data_cfg.num_train,
        num_test=data_cfg.num_test, min_shapes=data_cfg.min_shapes,
        max_shapes=data_cfg.max_shapes, min_extent=data_cfg.min_extent,
        max_extent=data_cfg.max_extent, seed=data_cfg.seed, data_dir=data_cfg.data_dir,
    )
    if prepare:
        builder.download_and_prepare()
    return DatasetSplits(
        train=builder.as_data_source(split="train"),
        test=builder.as_data_source(split="test"),
        class_names=CLASS_NAMES,
        image_size=data_cfg.image_size,
    )


def _catalog_unavailable(name: str, data_cfg) -> None:
    """Raises a ValueError saying what dataset `name` needs (the ImageNet input path -- decode,
    random-resized crop to data.image_size -- is not implemented yet)."""
    try:
        import tensorflow  # noqa: F401

        have_tf = True
    except ImportError:
        have_tf = False
    needs = [] if have_tf else ["`pip install -e '.[tf]'` (TensorFlow, to prepare it)"]
    needs.append(f"a prepared TFDS {name} in data.data_dir={data_cfg.data_dir!r} ({CATALOG[name]})")
    needs.append("the decode + random-resized-crop input path for it, not implemented yet")
    raise ValueError(f"dataset={name!r}: expected a prepared catalog dataset; it needs "
                     + "; ".join(needs))


def _segmentation_splits(name: str, data_cfg, prepare: bool) -> DatasetSplits:
    """`oxford_iiit_pet` (trimap -> background/pet/ignore) or `folder:<root>` (images + PNG
    masks; see jaxvision.data.folder), resized to data.image_size."""
    if name == "oxford_iiit_pet":
        from jaxvision.data.pets import CLASS_NAMES as PET_CLASSES
        from jaxvision.data.pets import pet_sources

        sources = pet_sources(data_cfg.data_dir, data_cfg.image_size)
        return DatasetSplits(train=sources["train"], test=sources["test"],
                             class_names=PET_CLASSES, image_size=data_cfg.image_size)
    from jaxvision.data.folder import folder_builder

    root = name.split(":", 1)[1]
    builder, names = folder_builder(root, image_size=data_cfg.image_size,
                                    data_dir=data_cfg.data_dir)
    if prepare:
        builder.download_and_prepare()
    return DatasetSplits(train=builder.as_data_source(split="train"),
                         test=builder.as_data_source(split="test"),
                         class_names=names, image_size=data_cfg.image_size)
