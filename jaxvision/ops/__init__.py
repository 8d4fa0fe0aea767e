"""Pure jnp vision ops (no Flax): boxes, anchors, matching, NMS, RoI ops, upsampling, proposals."""

from jaxvision.ops.anchors import (
    base_anchors,
    grid_anchors,
    ssd_default_boxes,
    ssd_scales,
    yolo_anchor_grid,
)
from jaxvision.ops.boxes import (
    box_area,
    box_convert,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
)
from jaxvision.ops.kmeans import kmeans_anchors
from jaxvision.ops.masks import paste_masks_in_image
from jaxvision.ops.matching import match_anchors, sample_balanced
from jaxvision.ops.nms import batched_nms, nms
from jaxvision.ops.proposals import felzenszwalb, selective_search, sliding_windows
from jaxvision.ops.roi import fpn_level, multiscale_roi_align, roi_align, roi_pool
from jaxvision.ops.upsample import (
    bilinear_init,
    bilinear_kernel,
    block_upsample,
    max_pool_with_argmax,
    max_unpool,
    nearest_upsample,
)
from jaxvision.ops.warp import warp_regions

__all__ = [
    "base_anchors",
    "grid_anchors",
    "ssd_default_boxes",
    "ssd_scales",
    "yolo_anchor_grid",
    "box_area",
    "box_convert",
    "box_iou",
    "clip_boxes",
    "decode_boxes",
    "encode_boxes",
    "kmeans_anchors",
    "match_anchors",
    "sample_balanced",
    "paste_masks_in_image",
    "batched_nms",
    "nms",
    "felzenszwalb",
    "selective_search",
    "sliding_windows",
    "fpn_level",
    "multiscale_roi_align",
    "roi_align",
    "roi_pool",
    "bilinear_init",
    "block_upsample",
    "bilinear_kernel",
    "max_pool_with_argmax",
    "max_unpool",
    "nearest_upsample",
    "warp_regions",
]
