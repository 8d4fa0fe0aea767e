"""Input checks shared by every model: clear `ValueError`s instead of shape errors deep in XLA."""

from __future__ import annotations


def check_images(x, model: str, *, channels: int | None = None, min_size: int | None = None):
    """Checks `x` is an NHWC batch `[B, H, W, C]`; raises ValueError naming what is wrong.

    Runs at trace time on static shapes, so it costs nothing under `jit`.
    """
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 4:
        raise ValueError(
            f"{model} input images: expected rank 4 [batch, height, width, channels] (NHWC), "
            f"got rank {len(shape)} with shape {shape}"
        )
    if channels is not None and shape[-1] != channels:
        raise ValueError(f"{model} input channels: expected {channels}, got {shape[-1]} ({shape})")
    if min_size is not None and min(shape[1:3]) < min_size:
        raise ValueError(
            f"{model} input height/width: expected at least {min_size}, got {shape[1:3]}"
        )
