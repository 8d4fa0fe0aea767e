"""Pure jnp vision ops (no Flax): boxes, anchors, matching, NMS, RoI ops, upsampling, proposals."""

from jaxvision.ops.boxes import (
    box_area,
    box_convert,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
)
from jaxvision.ops.nms import batched_nms, nms
from jaxvision.ops.roi import fpn_level, multiscale_roi_align, roi_align, roi_pool

__all__ = [
    "box_area",
    "box_convert",
    "box_iou",
    "clip_boxes",
    "decode_boxes",
    "encode_boxes",
    "batched_nms",
    "nms",
    "fpn_level",
    "multiscale_roi_align",
    "roi_align",
    "roi_pool",
]
