"""Registry entry `faster_rcnn`: the factory lives in jaxvision.models.detection.faster_rcnn."""

from jaxvision.models.detection.faster_rcnn import faster_rcnn

__all__ = ["faster_rcnn"]
