"""Dataset sources by name: random-access TFDS data sources plus what a task needs to know."""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxvision.data.shapes import CLASS_NAMES, shapes_builder

DATASETS = ("shapes",)


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
    """Random-access train and test sources (`len`, `[i]` -> dict of numpy) and their metadata."""

    train: Any
    test: Any
    class_names: tuple[str, ...]
    image_size: int


def load_splits(name: str, data_cfg, *, prepare: bool = True) -> DatasetSplits:
    """Builds (once, on first use) and opens the dataset `name` configured by `data_cfg`."""
    if name != "shapes":
        raise ValueError(f"dataset: expected one of {DATASETS}, got {name!r}")
    builder = shapes_builder(
        image_size=data_cfg.image_size, num_train=data_cfg.num_train,
        num_test=data_cfg.num_test, min_shapes=data_cfg.min_shapes,
        max_shapes=data_cfg.max_shapes, seed=data_cfg.seed, data_dir=data_cfg.data_dir,
    )
    if prepare:
        builder.download_and_prepare()
    return DatasetSplits(
        train=builder.as_data_source(split="train"),
        test=builder.as_data_source(split="test"),
        class_names=CLASS_NAMES,
        image_size=data_cfg.image_size,
    )
