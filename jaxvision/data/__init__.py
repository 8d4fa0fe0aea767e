"""Datasets (the synthetic `shapes` TFDS builder), host transforms and grain pipelines."""

from jaxvision.data.pipeline import ExampleTransform, eval_batches, train_dataset
from jaxvision.data.shapes import Shapes, shapes_builder
from jaxvision.data.sources import DatasetSplits, load_splits

__all__ = ["DatasetSplits", "ExampleTransform", "Shapes", "eval_batches", "load_splits",
           "shapes_builder", "train_dataset"]
