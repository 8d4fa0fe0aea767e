"""The per-unit breakdowns (benchmarks/*_layers.py) list each model's units as often as the
architecture has them, so their per-class sums stand for one train step."""

import collections

import pytest

from benchmarks import efficientnet_layers, resnet50_layers, unet_layers


def _counts(units):
    per_class = collections.Counter()
    for unit in units:
        per_class[unit.cls] += unit.count
    return per_class


def test_resnet50_units_are_its_53_convolutions():
    counts = _counts(resnet50_layers.units(2))
    # stem + 16 bottlenecks x 3 convs + 4 downsample shortcuts (He et al., Table 1)
    assert sum(counts.values()) == 1 + 16 * 3 + 4 == 53
    assert counts["1x1/2"] == 3 and counts["3x3/2"] == 3  # stages 3-5 stride in conv2 and shortcut
    assert counts["3x3"] == 16 - 3


def test_efficientnet_b0_units_are_its_16_mbconv_blocks():
    counts = _counts(efficientnet_layers.units(2))
    assert counts["depthwise"] + counts["depthwise/2"] == 16 == counts["se"] == counts["project"]
    assert counts["depthwise/2"] == 4  # stages 2, 3, 4 and 6 start with stride 2
    assert counts["expand"] == 15  # block 1 has expand ratio 1
    assert counts["stem"] == counts["head"] == 1
    shapes = {u.label: u.shape for u in efficientnet_layers.units(2)}
    assert shapes["head 1x1/1 320->1280 at 7"] == (2, 7, 7, 320)


@pytest.mark.parametrize("depth", [3, 4])
def test_unet_units_follow_its_depth(depth):
    units = unet_layers.units(2, size=16 * 2**depth, depth=depth)
    counts = _counts(units)
    convs = sum(n for cls, n in counts.items() if cls.startswith("3x3"))
    assert convs == 2 * (2 * depth + 1)  # two per encoder and decoder level and bottleneck
    assert counts["max pool"] == counts["up 2x2/2"] == depth
    assert counts["head"] == 1
    bottleneck = [u for u in units if u.label.startswith("3x3") and u.shape[1] == 16]
    assert bottleneck[-1].shape[-1] == 16 * 2**depth  # the widest map is the bottleneck's
