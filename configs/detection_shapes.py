"""The data settings detector configs use on shapes: boxes, labels and instance masks.

128x128 images with 1-3 shapes, each 20-45% of the image wide (at most 3 boxes; max_boxes 4 so
every image has a padding row), 2,000 train / 256 test images: small enough for a detector to
learn on 2 CPU cores. The builder's boxes are tight xyxy pixel boxes around each shape's mask.

    from configs.detection_shapes import detection_shapes
    config = base_config(); detection_shapes(config, recipe="rcnn")

`recipe` picks the transform: 'flip' (horizontal flips at 128 px, no resize), 'rcnn'
(torchvision's GeneralizedRCNNTransform rule with min_size=max_size=128: the image stays 128 px
and is padded to a static 128 square) or 'ssd' (photometric distortion, zoom-out up to 2x,
min-IoU crop, flips, then a fixed resize to `size`, SSD's 300 / YOLO's 416 scaled down to 128
by default).
"""

from __future__ import annotations

RECIPES = ("flip", "rcnn", "ssd")
DATA = dict(image_size=128, max_boxes=4, random_flip=True, random_crop_padding=0, crop="none")
BUILDER = dict(num_train=2000, num_test=256, min_shapes=1, max_shapes=3, min_extent=0.2,
               max_extent=0.45, seed=0)


def detection_shapes(config, *, recipe: str = "flip", size: int = 128):
    """Sets `config.dataset` and `config.data` for shapes detection; returns the config."""
    if recipe not in RECIPES:
        raise ValueError(f"detection_shapes recipe: expected one of {RECIPES}, got {recipe!r}")
    config.dataset = "shapes"
    config.data.update(DATA)
    config.data.builders.shapes.update(BUILDER)
    if recipe == "rcnn":
        config.data.update(dict(resize="min_max", min_size=128, max_size=128,
                                size_divisible=32, pad_size=0))
    elif recipe == "ssd":
        config.data.update(dict(resize="fixed", fixed_size=size, photometric_distort=True,
                                zoom_out=True, zoom_out_max=2.0, min_iou_crop=True))
    return config
