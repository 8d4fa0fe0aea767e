import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste

from jaxvision.ops import paste_masks_in_image

H, W, M = 23, 31, 6


def _boxes():
    return np.array([
        [3.0, 4.0, 17.0, 15.0],      # inside
        [0.4, 1.6, 30.2, 22.7],      # almost the whole image, fractional
        [-6.5, -3.2, 8.1, 9.9],      # partly outside top-left
        [20.3, 14.0, 40.0, 35.5],    # partly outside bottom-right
        [-10.0, 5.0, 45.0, 9.0],     # wider than the image
        [12.0, 12.0, 12.4, 12.3],    # tiny: the resized mask is 1 x 1 .. 2 x 2 pixels
        [7.0, 2.0, 7.0, 2.0],        # zero size
        [5.0, 5.0, 6.5, 19.0],       # thin
        [25.0, 18.0, 33.0, 26.0],    # corner, mostly outside
        [9.0, 9.0, 4.0, 6.0],        # inverted (nothing pasted)
        [9.0, 9.0, 14.0, 6.0],       # inverted in y only
        [9.0, 9.0, 4.0, 14.0],       # inverted in x only
    ], np.float32)


def _want(masks, boxes):
    out = [tv_paste(torch.tensor(m[:, None]), torch.tensor(b), (H, W))[:, 0].numpy()
           for m, b in zip(masks, boxes, strict=True)]
    return np.stack(out)


def test_paste_masks_matches_torchvision():
    rng = np.random.default_rng(0)
    boxes = np.stack([_boxes(), _boxes()[::-1] * np.float32(0.9) + np.float32(1.3)])
    masks = rng.uniform(size=(2, len(boxes[0]), M, M)).astype(np.float32)
    got = paste_masks_in_image(masks, boxes, H, W)
    chex.assert_shape(got, (2, len(boxes[0]), H, W))
    np.testing.assert_allclose(np.asarray(got), _want(masks, boxes), rtol=1e-6, atol=1e-6)


def test_paste_masks_random_boxes_and_mask_sizes():
    rng = np.random.default_rng(1)
    for m in (1, 5, 28):
        # centres inside the image: torchvision slices with negative bounds (a wrong paste or
        # an error) when the expanded integer box lies wholly left of / above / below the image
        c = rng.uniform(0, 1, size=(1, 24, 2)) * [W, H]
        wh = rng.uniform(0, 40, size=(1, 24, 2)) ** rng.uniform(0.3, 1, size=(1, 24, 1))
        boxes = np.concatenate([c - wh / 2, c + wh / 2], -1).astype(np.float32)
        masks = rng.uniform(size=(1, 24, m, m)).astype(np.float32)
        got = paste_masks_in_image(masks, boxes, H, W)
        np.testing.assert_allclose(np.asarray(got), _want(masks, boxes), rtol=1e-6, atol=1e-6)


def test_paste_masks_jits_once_for_new_boxes():
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(m, b):
        return paste_masks_in_image(m, b, H, W)

    rng = np.random.default_rng(2)
    masks = jnp.asarray(rng.uniform(size=(1, 3, M, M)).astype(np.float32))
    for s in (1.0, 2.0, 0.5):
        run(masks, jnp.asarray(_boxes()[None, :3] * s))


def test_paste_masks_errors_name_the_field():
    m = jnp.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="masks"):
        paste_masks_in_image(jnp.zeros((2, 4, 4)), jnp.zeros((1, 2, 4)), H, W)
    with pytest.raises(ValueError, match="boxes"):
        paste_masks_in_image(m, jnp.zeros((1, 3, 4)), H, W)
    with pytest.raises(ValueError, match="masks"):
        paste_masks_in_image(jnp.zeros((1, 2, 4, 5)), jnp.zeros((1, 2, 4)), H, W)
    with pytest.raises(ValueError, match="height"):
        paste_masks_in_image(m, jnp.zeros((1, 2, 4)), 0, W)
