"""Checks of what every detector's call takes besides images: training targets and external
region proposals (R-CNN, Fast R-CNN), with errors that name the model and the field."""

from __future__ import annotations

import jax.numpy as jnp

TARGET_FIELDS = ("boxes", "labels", "boxes_valid")


def check_targets(targets, batch: int, model: str) -> dict:
    """targets: {'boxes' [B, N, 4] xyxy, 'labels' [B, N], 'boxes_valid' [B, N], ...} for
    training. Returns them with boxes float32, labels int32, boxes_valid bool (other fields,
    e.g. masks, passed through)."""
    if targets is None:
        raise ValueError(f"{model} targets: expected a dict with {TARGET_FIELDS} when "
                         "train=True, got None")
    missing = [k for k in TARGET_FIELDS if k not in targets]
    if missing:
        raise ValueError(f"{model} targets: expected fields {TARGET_FIELDS}, missing {missing} "
                         f"(got {sorted(targets)})")
    shape = tuple(jnp.shape(targets["boxes"]))
    if len(shape) != 3 or shape[0] != batch or shape[2] != 4:
        raise ValueError(f"{model} targets['boxes']: expected [{batch}, N, 4] xyxy, got {shape}")
    for k in ("labels", "boxes_valid"):
        if tuple(jnp.shape(targets[k])) != shape[:2]:
            raise ValueError(f"{model} targets[{k!r}]: expected shape {shape[:2]}, got "
                             f"{tuple(jnp.shape(targets[k]))}")
    return {**targets, "boxes": jnp.asarray(targets["boxes"], jnp.float32),
            "labels": jnp.asarray(targets["labels"], jnp.int32),
            "boxes_valid": jnp.asarray(targets["boxes_valid"], bool)}


def check_proposals(proposals, proposals_valid, batch: int, model: str):
    """External regions: proposals [B, P, 4] xyxy (required), proposals_valid [B, P] (default all
    valid). Returns (float32 proposals, bool valid)."""
    if proposals is None:
        raise ValueError(f"{model} proposals: expected [{batch}, P, 4] xyxy boxes (e.g. selective "
                         "search) for a model without an RPN, got None")
    proposals = jnp.asarray(proposals, jnp.float32)
    if proposals.ndim != 3 or proposals.shape[0] != batch or proposals.shape[2] != 4:
        raise ValueError(f"{model} proposals: expected [{batch}, P, 4] xyxy, got "
                         f"{proposals.shape}")
    if proposals_valid is None:
        proposals_valid = jnp.ones(proposals.shape[:2], bool)
    proposals_valid = jnp.asarray(proposals_valid, bool)
    if proposals_valid.shape != proposals.shape[:2]:
        raise ValueError(f"{model} proposals_valid: expected shape {proposals.shape[:2]}, got "
                         f"{proposals_valid.shape}")
    return proposals, proposals_valid
