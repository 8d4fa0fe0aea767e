"""Registry entry `mask_rcnn`: the factory lives in jaxvision.models.detection.faster_rcnn."""

from jaxvision.models.detection.faster_rcnn import mask_rcnn

__all__ = ["mask_rcnn"]
