"""warp_regions against a float64 loop written from R-CNN's warp definition (appendix A)."""

import jax
import numpy as np
import pytest

from jaxvision.ops import warp_regions


def warp_ref(images, boxes, idx, size, p, fill=0.0):
    """float64 loop: dilate the box so it fills the inner (o - 2p) of the crop, sample each
    output pixel centre's relative position bilinearly between pixel centres (edge-clamped);
    points outside [0, W] x [0, H] get `fill`."""
    images = np.asarray(images, np.float64)
    _, h, w, c = images.shape
    oh, ow = size
    out = np.zeros((len(boxes), oh, ow, c))
    for k, (bx, b) in enumerate(zip(np.asarray(boxes, np.float64), idx, strict=True)):
        bw, bh = bx[2] - bx[0], bx[3] - bx[1]
        # the box maps to [p, ow - p] of the crop: scale s = (ow - 2p) / bw
        sx, sy = (ow - 2 * p) / bw if bw else None, (oh - 2 * p) / bh if bh else None
        for i in range(oh):
            for j in range(ow):
                x = bx[0] + (j + 0.5 - p) / sx if sx else bx[0]
                y = bx[1] + (i + 0.5 - p) / sy if sy else bx[1]
                if not (0 <= x <= w and 0 <= y <= h):
                    out[k, i, j] = fill
                    continue
                u, v = x - 0.5, y - 0.5
                x0, y0 = int(np.floor(u)), int(np.floor(v))
                ax, ay = u - x0, v - y0
                xa, xb = min(max(x0, 0), w - 1), min(max(x0 + 1, 0), w - 1)
                ya, yb = min(max(y0, 0), h - 1), min(max(y0 + 1, 0), h - 1)
                im = images[b]
                out[k, i, j] = ((1 - ay) * ((1 - ax) * im[ya, xa] + ax * im[ya, xb])
                                + ay * ((1 - ax) * im[yb, xa] + ax * im[yb, xb]))
    return out


BOXES = np.array([
    [2.0, 3.0, 9.0, 7.0],        # inside, context reaches the border
    [0.5, 0.25, 12.0, 10.0],     # whole image: context outside -> fill
    [-3.0, -2.0, 4.0, 5.0],      # partly outside
    [5.3, 1.7, 6.1, 9.9],        # thin, fractional
    [6.0, 2.0, 6.0, 8.0],        # zero width
    [20.0, 20.0, 25.0, 24.0],    # wholly outside
], np.float32)
IDX = np.array([0, 1, 1, 0, 1, 0], np.int32)


@pytest.mark.parametrize("size,p", [((8, 10), 2), ((7, 7), 0), ((12, 9), 3)])
def test_warp_matches_reference(size, p):
    images = np.random.default_rng(0).normal(size=(2, 10, 12, 3)).astype(np.float32)
    got = jax.jit(warp_regions, static_argnums=(3, 4))(images, BOXES, IDX, size, p)
    assert got.shape == (len(BOXES), *size, 3)
    np.testing.assert_allclose(got, warp_ref(images, BOXES, IDX, size, p), atol=2e-5)


@pytest.mark.slow
def test_warp_default_padding_and_fill():
    images = np.random.default_rng(1).normal(size=(1, 40, 50, 3)).astype(np.float32)
    boxes = np.array([[1.0, 2.0, 30.0, 38.0], [10.0, 5.0, 48.0, 25.0]], np.float32)
    got = warp_regions(images, boxes, np.zeros(2, np.int32), (36, 40), fill=-0.5)  # p = 16
    want = warp_ref(images, boxes, [0, 0], (36, 40), 16, fill=-0.5)
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.any(want == -0.5)


@pytest.mark.slow
def test_warp_box_fills_inner_region_exactly():
    # an image whose value is the x coordinate of the pixel centre: after warping, the columns
    # p .. ow - p - 1 sample inside the box at its evenly spaced positions
    w = 20
    images = np.broadcast_to((np.arange(w) + 0.5)[None, None, :, None], (1, 6, w, 1))
    images = images.astype(np.float32)
    ow, p = 8, 2
    got = np.asarray(warp_regions(images, np.array([[4.0, 1.0, 12.0, 5.0]]), [0], (6, ow), p))
    inner = got[0, 3, p:ow - p, 0]
    np.testing.assert_allclose(inner, 4.0 + (np.arange(ow - 2 * p) + 0.5) * 2.0, atol=1e-5)


def test_warp_bad_padding():
    with pytest.raises(ValueError, match="context_padding"):
        warp_regions(np.zeros((1, 8, 8, 3)), np.zeros((1, 4)), [0], (8, 8), 4)
