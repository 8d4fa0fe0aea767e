"""Losses by family, in float32 whatever the compute dtype: classification, segmentation,
detection (see each module)."""

from jaxvision.losses.classification import softmax_cross_entropy
from jaxvision.losses.segmentation import pixel_cross_entropy

__all__ = ["pixel_cross_entropy", "softmax_cross_entropy"]
