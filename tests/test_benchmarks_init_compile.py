"""benchmarks/init_compile.py in --quick mode: one row with positive compile times, their ratio
as printed, and the same bits from both programs (no timing is asserted: the machine is
shared)."""

import math

import pytest

from benchmarks import init_compile


@pytest.mark.slow
def test_quick_mode_prints_a_row_with_the_same_bits(capsys):
    text = init_compile.main(["--quick"])
    assert text in capsys.readouterr().out
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[2:]]
    assert len(rows) == 1
    name, size, default, o1, ratio, same, load = rows[0]
    assert (name, size, same) == ("unet", "16x16", "yes")
    default, o1, ratio = float(default), float(o1), float(ratio)
    assert math.isfinite(default) and default > 0 and math.isfinite(o1) and o1 > 0
    # each cell printed to 0.01: the ratio of the unrounded times lies between these
    half = 0.005
    assert (default - half) / (o1 + half) - half <= ratio <= (default + half) / (o1 - half) + half
    assert float(load) >= 0


def test_table_says_when_the_bits_differ():
    row = dict(name="unet", size=16, default_s=3.0, o1_s=1.5, same_bits=False, load=0.25)
    assert init_compile.table([row]).splitlines()[2] == (
        "| unet | 16x16 | 3.00 | 1.50 | 2.00 | no | 0.25 |")
