"""Tasks: how each family computes its loss, predicts and evaluates (see `base.Task`)."""

from __future__ import annotations

from jaxvision.tasks.base import Task

TASKS = ("classification", "segmentation", "detection")


def get_task(name: str, class_names: tuple[str, ...], **kwargs) -> Task:
    """The task `name` for a dataset with `class_names` (detection/segmentation add background)."""
    if name == "classification":
        from jaxvision.tasks.classification import ClassificationTask

        return ClassificationTask(class_names=tuple(class_names), **kwargs)
    if name == "segmentation":
        from jaxvision.tasks.segmentation import SegmentationTask

        return SegmentationTask(class_names=("background", *class_names), **kwargs)
    if name == "detection":
        from jaxvision.tasks.detection import DetectionTask

        return DetectionTask(class_names=("background", *class_names), **kwargs)
    raise ValueError(f"task: expected one of {TASKS}, got {name!r}")
