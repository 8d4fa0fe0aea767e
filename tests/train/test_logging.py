"""MetricsWriter's progress: the bar on a terminal, plain lines with an ETA elsewhere."""

import io

import pytest

from jaxvision.train import logging as train_logging
from jaxvision.train.logging import MetricsWriter


class _Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _writer(tmp_path, monkeypatch, clock, *, total=1200, initial=0):
    monkeypatch.setattr(train_logging.time, "monotonic", clock)
    return MetricsWriter(str(tmp_path), total_steps=total, initial_step=initial)


def test_plain_lines_off_a_terminal(tmp_path, monkeypatch, capsys):
    clock = _Clock(100.0)
    writer = _writer(tmp_path, monkeypatch, clock)
    clock.now += 15.0  # 50 steps in 15 s: 0.3 s/step, 1150 steps left -> 345 s
    line = writer.log_progress(50, 0.81234, 31.24)
    assert line == "step 50/1200  loss 0.8123  31.2 img/s  ETA 5m45s"
    clock.now += 3.0  # the ETA follows the last interval: 0.06 s/step x 1100 steps
    assert writer.log_progress(100, float("nan"), 266.66).endswith("loss nan  266.7 img/s  "
                                                                    "ETA 1m06s")
    clock.now += 14.0 * 3600  # 14 h for 100 steps, 1000 left: 140 h
    assert writer.log_progress(200, 0.5, 0.01).endswith("0.0 img/s  ETA 140h00m")
    clock.now += 1.0
    assert writer.log_progress(1200, 0.5, 1.0).endswith("ETA 0s")
    writer.close()
    assert capsys.readouterr().err.splitlines() == [
        "step 50/1200  loss 0.8123  31.2 img/s  ETA 5m45s",
        "step 100/1200  loss nan  266.7 img/s  ETA 1m06s",
        "step 200/1200  loss 0.5000  0.0 img/s  ETA 140h00m",
        "step 1200/1200  loss 0.5000  1.0 img/s  ETA 0s",
    ]


def test_resumed_run_times_from_its_first_step(tmp_path, monkeypatch, capsys):
    clock = _Clock(0.0)
    writer = _writer(tmp_path, monkeypatch, clock, total=12, initial=5)
    clock.now = 9.5  # steps 6..8 in 9.5 s, 4 left
    assert writer.log_progress(8, 1.0, 2.0).endswith("ETA 13s")  # 12.67 s rounds to 13
    writer.close()


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0s"), (59.4, "59s"), (59.6, "1m00s"),
                                                (365, "6m05s"), (3599.4, "59m59s"),
                                                (3600, "1h00m"), (7380, "2h03m")])
def test_duration(seconds, text):
    assert train_logging._duration(seconds) == text


def test_a_terminal_gets_the_bar_not_lines(tmp_path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(train_logging.sys, "stderr", terminal)
    clock = _Clock(0.0)
    writer = _writer(tmp_path, monkeypatch, clock, total=4)
    writer.progress(2)
    clock.now = 1.0
    assert writer.log_progress(2, 0.25, 16.0) is None
    writer.progress(2)
    writer.close()
    shown = terminal.getvalue()
    assert "4/4" in shown and "loss=0.25" in shown and "img_s=16" in shown
    assert "step 2/4" not in shown
