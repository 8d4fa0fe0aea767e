"""GeneralizedRCNN: backbone -> RPN (or given proposals) -> RoI heads (torchvision's wiring)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from flax import traverse_util

from jaxvision.layers import check_images
from jaxvision.models.detection.inputs import check_proposals, check_targets


class GeneralizedRCNN(nn.Module):
    """`__call__(images [B, H, W, 3], train=False, targets=None, image_sizes=None,
    proposals=None, proposals_valid=None)`.

    images are normalised and never resized; image_sizes [B, 2] int (height, width) is each
    image's content size inside the padded batch (boxes are clipped to it; default H, W).
    Eval: {'boxes' [B, D, 4], 'scores' [B, D], 'labels' [B, D] int32, 'valid' [B, D],
    'proposals' [B, P, 4], 'proposals_valid' [B, P]} (+ 'masks' [B, D, 28, 28]).
    Train (targets: 'boxes' [B, N, 4] xyxy, 'labels' [B, N] int32, 'boxes_valid' [B, N] bool,
    optional 'masks' [B, N, H, W], 'iscrowd' [B, N]; rngs 'sample'): {'losses': {'rpn_objectness',
    'rpn_box', 'classifier', 'box_reg' (+ 'mask')}, 'proposals', 'proposals_valid'}.
    With `rpn=None` (Fast R-CNN) `proposals` [B, P, 4] (and proposals_valid) are required.
    """

    backbone: nn.Module
    rpn: nn.Module | None
    roi_heads: nn.Module
    rpn_levels: tuple[str, ...]
    roi_levels: tuple[str, ...]
    arch: str = "rcnn"
    dtype: Any = jnp.float32
    # the trainer's device axis; the detection backbones' BatchNorm is frozen by default, so it
    # is unused there (with frozen_bn=False under pmap, statistics stay per device)
    axis_name: str | None = None

    def trainable_mask(self, params):
        """`params`' tree of bools: False where the backbone freezes a parameter (its
        `frozen(path)`), so that the optimiser leaves it unchanged, as torchvision's
        `requires_grad=False` keeps it out of the optimiser."""
        frozen = getattr(self.backbone, "frozen", None)
        flat = traverse_util.flatten_dict(params)
        return traverse_util.unflatten_dict(
            {p: not (frozen is not None and p[0] == "backbone" and frozen(p[1:])) for p in flat})

    @nn.compact
    def __call__(self, images, train: bool = False, targets=None, image_sizes=None,
                 proposals=None, proposals_valid=None):
        check_images(images, self.arch, channels=3, min_size=32)
        b, h, w, _ = images.shape
        if image_sizes is None:
            image_sizes = jnp.tile(jnp.array([[h, w]], jnp.int32), (b, 1))
        image_sizes = jnp.asarray(image_sizes, jnp.int32)
        if image_sizes.shape != (b, 2):
            raise ValueError(f"image_sizes: expected [{b}, 2] (height, width), got "
                             f"{image_sizes.shape}")
        if train:
            targets = check_targets(targets, b, self.arch)
        _, feats = self.backbone(images, train=train)
        losses = {}
        if self.rpn is not None:
            proposals, proposals_valid, losses = self.rpn(
                [feats[k] for k in self.rpn_levels], (h, w), image_sizes, train, targets)
        else:
            proposals, proposals_valid = check_proposals(proposals, proposals_valid, b,
                                                         self.arch)
        maps = [feats[k] for k in self.roi_levels]
        out = self.roi_heads(maps, (h, w), image_sizes, proposals, proposals_valid, train,
                             targets)
        extra = dict(proposals=proposals, proposals_valid=proposals_valid)
        if train:
            return {"losses": {**losses, **out}, **extra}
        return {**out, **extra}
