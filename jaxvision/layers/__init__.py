"""Small shared Flax blocks and input checks used by the models."""

from jaxvision.layers.validation import check_images

__all__ = ["check_images"]
