"""benchmarks/export_speed.py in --quick mode: both timings and their ratio are positive and
finite, with the load recorded beside them. No timing is asserted (the machine is shared)."""

import math

import pytest

from benchmarks import export_speed


@pytest.mark.slow
def test_quick_mode_reports_positive_times_and_the_load(capsys):
    row = export_speed.main(["--quick"])
    for key in ("artifact_ms", "predict_ms", "ratio", "load_before", "load_after"):
        assert math.isfinite(row[key]) and row[key] >= 0, key
    assert row["artifact_ms"] > 0 and row["predict_ms"] > 0
    assert row["ratio"] == row["artifact_ms"] / row["predict_ms"]
    assert f"| {row['artifact_ms']:.2f} | {row['predict_ms']:.2f} |" in capsys.readouterr().out
