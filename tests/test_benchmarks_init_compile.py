"""benchmarks/init_compile.py in --quick mode: one row with positive compile times, their ratio
as printed, and the same bits from both programs (no timing is asserted: the machine is
shared)."""

import math

import pytest

from benchmarks import init_compile
from tests.markdown_tables import half_last_digit, table_rows


@pytest.mark.slow
def test_quick_mode_prints_a_row_with_the_same_bits(capsys):
    text = init_compile.main(["--quick"])
    assert text in capsys.readouterr().out
    header, *rows = table_rows(text)
    assert len(rows) == 1 and header[0] == "model"
    name, size, default_cell, o1_cell, ratio_cell, same, load = rows[0]
    assert (name, size, same) == ("unet", "16x16", "yes")
    default, o1, ratio = float(default_cell), float(o1_cell), float(ratio_cell)
    assert math.isfinite(default) and default > 0 and math.isfinite(o1) and o1 > 0
    # the ratio of the unrounded times lies between these, each cell rounded as printed
    d, o, r = (half_last_digit(c) for c in (default_cell, o1_cell, ratio_cell))
    assert (default - d) / (o1 + o) - r <= ratio <= (default + d) / (o1 - o) + r
    assert float(load) >= 0


def test_table_says_when_the_bits_differ():
    row = dict(name="unet", size=16, default_s=3.0, o1_s=1.5, same_bits=False, load=0.25)
    assert init_compile.table([row]).splitlines()[2] == (
        "| unet | 16x16 | 3.00 | 1.50 | 2.00 | no | 0.25 |")
