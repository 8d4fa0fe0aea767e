"""benchmarks/detection.py in --quick mode: every table row is printed with positive numbers.

No timing is asserted (the machine is shared); the check is that the script runs end to end and
that each figure it reports is a positive, finite number, with the load recorded beside it.
"""

import math
import re

import pytest

from benchmarks import detection
from tests.markdown_tables import table_rows

STAGES = ("backbone", "RPN", "RoI heads", "postprocess", "sum of stages")


def _rows(table):
    """{first cell: [the other cells]} of every markdown table row (header rows included)."""
    return {(cells[0], cells[2]) if cells[0] in ("faster_rcnn", "ssd300", "yolov3")
            else cells[0]: cells[1:] for cells in table_rows(table)}


def _positive(cell):
    value = float(cell.rstrip("%"))
    assert math.isfinite(value) and value > 0, cell
    return value


@pytest.mark.slow
def test_quick_mode_prints_every_row_with_positive_numbers(capsys):
    table = detection.main(["--quick"])
    assert table in capsys.readouterr().out
    rows = _rows(table)

    infer = rows["inference, batch 1 (postprocess included)"]
    train = rows["train step, batch 2 (fwd+bwd+SGD)"]
    for cells in (infer, train):  # jax ms, load, torch ms, load, torch excl. test ops, ratio
        assert len(cells) == 6
        for i in (0, 2, 4, 5):
            _positive(cells[i])
        assert float(cells[1]) >= 0 and float(cells[3]) >= 0
        # the time inside the tests' ops is part of torchvision's, not more than it
        assert float(cells[4]) <= float(cells[2])

    for stage in STAGES:
        cells = rows[stage]
        _positive(cells[0])
        _positive(cells[2])
        if stage != "sum of stages":
            assert float(cells[5]) >= 0  # load
            assert float(cells[4]) <= float(cells[2])
    shares = [float(rows[s][1].rstrip("%")) for s in STAGES[:-1]]
    assert abs(sum(shares) - 100) <= 2  # rounded shares of the sum

    m = re.search(r"Detections \(batch 1\): jaxvision (\d+), torchvision (\d+)", table)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0

    for name, batches in (("faster_rcnn", ("1",)), ("ssd300", ("1", "2")),
                          ("yolov3", ("1", "2"))):
        for b in batches:
            cells = rows[(name, b)]  # input, batch, jax img/s, load, torch img/s, excl, load, x, x
            assert len(cells) == 9
            _positive(cells[2])
            if name == "yolov3":  # torchvision has no YOLO
                assert cells[4:7] == ["-", "-", "-"] and cells[8] == "-"
            else:
                _positive(cells[4])
                assert float(cells[5]) >= float(cells[4])  # without the test ops: faster
                _positive(cells[8])
            _positive(cells[7])
    assert rows[("faster_rcnn", "1")][7:] == ["1.0", "1.0"]


def test_milliseconds_keep_two_digits_below_ten():
    """A sub-millisecond stage of the quick run prints as a positive number, not 0; from 10 ms
    on (the threshold itself included) whole milliseconds."""
    assert [detection._ms(s) for s in (0.0003, 0.0095, 0.010, 0.01049, 1.2345)] == [
        "0.3", "9.5", "10", "10", "1234"]
