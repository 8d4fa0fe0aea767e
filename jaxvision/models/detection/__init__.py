"""Two-stage detectors composed from parts: anchors, RPN, RoI heads, GeneralizedRCNN wiring."""

from jaxvision.models.detection.faster_rcnn import fast_rcnn, faster_rcnn, mask_rcnn
from jaxvision.models.detection.generalized_rcnn import GeneralizedRCNN

__all__ = ["GeneralizedRCNN", "fast_rcnn", "faster_rcnn", "mask_rcnn"]
