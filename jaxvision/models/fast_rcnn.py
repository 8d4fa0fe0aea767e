"""Registry entry `fast_rcnn`: the factory lives in jaxvision.models.detection.faster_rcnn."""

from jaxvision.models.detection.faster_rcnn import fast_rcnn

__all__ = ["fast_rcnn"]
