"""Datasets (the synthetic `shapes` TFDS builder, folder / ImageFolder / COCO builders, the TFDS
catalogue), host transforms driven by field kind, and grain pipelines."""

from jaxvision.data.pipeline import ExampleTransform, eval_batches, make_transforms, train_dataset
from jaxvision.data.shapes import Shapes, shapes_builder
from jaxvision.data.sources import DatasetSplits, load_splits

__all__ = ["DatasetSplits", "ExampleTransform", "Shapes", "eval_batches", "load_splits",
           "make_transforms", "shapes_builder", "train_dataset"]
