import math

import numpy as np
import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList

from jaxvision.ops.anchors import grid_anchors, ssd_default_boxes, yolo_anchor_grid


def test_grid_anchors_17100_for_38x50_and_paper_shapes():
    a = np.asarray(grid_anchors((38, 50), 16))
    assert a.shape == (38 * 50 * 9, 4) == (17100, 4)
    # written from the definition: centre at (j*16, i*16), area ~ s^2, h/w = ratio
    first = a[:9]
    w, h = first[:, 2] - first[:, 0], first[:, 3] - first[:, 1]
    ratios = np.repeat([0.5, 1.0, 2.0], 3)
    sizes = np.tile([128, 256, 512], 3)
    np.testing.assert_allclose(h / w, ratios, rtol=0.02)
    np.testing.assert_allclose(np.sqrt(w * h), sizes, rtol=0.02)
    pos = (7 * 50 + 11) * 9
    np.testing.assert_allclose((a[pos:pos + 9, :2] + a[pos:pos + 9, 2:]) / 2 - [11 * 16, 7 * 16],
                               0, atol=0.5)


def test_grid_anchors_match_torchvision_anchor_generator():
    gen = AnchorGenerator(sizes=((32, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    images = ImageList(torch.zeros(1, 3, 96, 128), [(96, 128)])
    fmap = torch.zeros(1, 8, 6, 8)
    want = gen(images, [fmap])[0].numpy()
    got = np.asarray(grid_anchors((6, 8), 16, sizes=(32, 64)))
    np.testing.assert_allclose(got, want)


def test_ssd300_default_boxes_match_torchvision():
    ratios = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    scales = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
    steps = [8, 16, 32, 64, 100, 300]
    sizes = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    got = np.asarray(ssd_default_boxes(sizes, (300, 300), ratios, scales, steps))
    assert got.shape == (8732, 4)
    gen = DefaultBoxGenerator(ratios, scales=scales, steps=steps)
    d = gen._grid_default_boxes(sizes, [300, 300]).numpy() * 300.0
    want = np.concatenate([d[:, :2] - 0.5 * d[:, 2:], d[:, :2] + 0.5 * d[:, 2:]], 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


def test_ssd_default_scales_from_min_max():
    got = np.asarray(ssd_default_boxes([(2, 2), (1, 1)], (100, 100), [[], []]))
    # layer 0 scale 0.15, layer 1 scale 0.9, extra 1.0; square boxes s_k and sqrt(s_k s_k+1)
    w = got[:, 2] - got[:, 0]
    np.testing.assert_allclose(w[:2], [15, math.sqrt(0.15 * 0.9) * 100], rtol=1e-5)
    np.testing.assert_allclose(w[-2:], [90, math.sqrt(0.9) * 100], rtol=1e-5)


def test_yolo_grid():
    anchors = [(116, 90), (156, 198), (373, 326)]
    g = np.asarray(yolo_anchor_grid((13, 13), 32, anchors))
    assert g.shape == (13, 13, 3, 4)
    for i, j, a in [(0, 0, 0), (5, 12, 2), (12, 3, 1)]:
        cx, cy = (j + 0.5) * 32, (i + 0.5) * 32
        w, h = anchors[a]
        np.testing.assert_allclose(g[i, j, a], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def test_anchor_errors():
    with pytest.raises(ValueError, match="feature_size"):
        grid_anchors((0, 5), 16)
    with pytest.raises(ValueError, match="aspect_ratios"):
        ssd_default_boxes([(2, 2)], (10, 10), [[2], [3]])
    with pytest.raises(ValueError, match="anchors"):
        yolo_anchor_grid((2, 2), 8, [(1, 2, 3)])
