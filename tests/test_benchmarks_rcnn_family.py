"""benchmarks/rcnn_family.py in --quick mode: every row has positive finite times, a VOC07 mAP in
[0, 1] that a float64 devkit loop recomputes from the returned predictions, R-CNN's speed-up
exactly 1, the load recorded, and the lecture's figures beside each row.

No timing is asserted (the machine is shared).
"""

import math

import numpy as np
import pytest

from benchmarks import rcnn_family
from tests.markdown_tables import table_rows
from tests.metrics.test_voc import _reference_voc

LECTURE = {"rcnn": ("50", "1x", "66.0"), "fast_rcnn": ("2", "25x", "66.9"),
           "faster_rcnn": ("0.2", "250x", "66.9")}


def _cells(table):
    """{model: [the other cells]} of the table's data rows."""
    return {cells[0]: cells[1:] for cells in table_rows(table) if cells[0] != "model"}


@pytest.fixture(scope="module")
def quick():  # trains three detectors: about 70 s, so its tests are slow
    return rcnn_family.run(["--quick"])


@pytest.mark.slow
def test_quick_mode_rows(quick, capsys):
    table, rows = quick
    assert [r["name"] for r in rows] == list(rcnn_family.NAMES)
    cells = _cells(table)
    assert list(cells) == list(rcnn_family.NAMES)
    for r in rows:
        assert r["images"] == rcnn_family.QUICK_IMAGES
        assert len(r["predictions"]) == len(r["ground_truth"]) == r["images"]
        assert math.isfinite(r["seconds"]) and r["seconds"] > 0
        assert 0 <= r["proposal_seconds"] < r["seconds"]
        assert 0.0 <= r["map"] <= 1.0
        assert r["load_start"] >= 0 and r["load_end"] >= 0
        row = cells[r["name"]]
        # s/image, share, speed-up, mAP, load, lecture s, lecture speed-up, lecture mAP
        assert len(row) == 8
        assert float(row[0]) > 0
        assert row[5:] == list(LECTURE[r["name"]])
        assert float(row[3]) == pytest.approx(100 * r["map"], abs=0.05)
        start, end = (float(v) for v in row[4].split("/"))
        assert start >= 0 and end >= 0
    # selective search is timed for R-CNN and Fast R-CNN, matching the pipeline's cache;
    # Faster R-CNN's proposals come from its RPN, inside the timed predict
    for r in rows[:2]:
        assert r["proposal_seconds"] > 0
        assert r["cache_matches"] == r["images"]
    assert rows[2]["proposal_seconds"] == 0 and rows[2]["cache_matches"] is None
    assert cells["rcnn"][2] == "1.0x"
    assert cells["faster_rcnn"][1] == "0.0%"
    for r in rows[1:]:
        # printed to one decimal: rounding moves it by at most 0.05, whatever the ratio
        assert float(cells[r["name"]][2].rstrip("x")) == pytest.approx(
            rows[0]["seconds"] / r["seconds"], abs=0.05 + 1e-9)


@pytest.mark.slow
def test_map_column_matches_a_float64_devkit_loop(quick):
    _, rows = quick
    for r in rows:
        per_class = _reference_voc(r["predictions"], r["ground_truth"], 0.5, use_07=True)
        assert per_class, "the quick test images have ground truth"
        expected = float(np.mean(list(per_class.values())))
        assert r["map"] == pytest.approx(expected, abs=1e-6)
    # not only 0 == 0: after 2 steps (fixed seeds) Faster R-CNN finds a shape on these images
    assert any(r["map"] > 0 for r in rows), [r["map"] for r in rows]


def test_workdirs_argument():
    dirs = rcnn_family.parse_workdirs(["fast_rcnn=/x/y"])
    assert dirs == {"rcnn": "/tmp/jaxvision_runs/rcnn", "fast_rcnn": "/x/y",
                    "faster_rcnn": "/tmp/jaxvision_runs/faster_rcnn"}
    with pytest.raises(ValueError, match="--workdirs: expected NAME=DIR"):
        rcnn_family.parse_workdirs(["yolo=/x"])
    with pytest.raises(ValueError, match="--workdirs"):
        rcnn_family.parse_workdirs(["rcnn"])
