"""Losses by family, in float32 whatever the compute dtype: classification, segmentation,
detection (see each module)."""

from jaxvision.losses.classification import softmax_cross_entropy
from jaxvision.losses.detection import sigmoid_bce, smooth_l1
from jaxvision.losses.segmentation import pixel_cross_entropy

__all__ = ["pixel_cross_entropy", "sigmoid_bce", "smooth_l1", "softmax_cross_entropy"]
