"""End to end: a short run, its logs, SIGTERM-save, resume to identical results."""

import os
import re
import signal
import subprocess
import sys
import time

import chex
import pytest

from jaxvision.train import loop, train_and_evaluate
from tests.train.conftest import (
    REPO,
    checkpoint_steps,
    records,
    saved_state,
    tiny_unet_config,
    train_cmd,
)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, data_dir):
    workdir = str(tmp_path_factory.mktemp("reference"))
    return workdir, train_and_evaluate(tiny_unet_config(data_dir), workdir)


@pytest.mark.slow
def test_short_run_logs_and_evaluates(reference_run):
    workdir, final = reference_run
    logged = records(workdir)
    train = [r for r in logged if r["split"] == "train"]
    test = [r for r in logged if r["split"] == "test"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12]
    assert [r["step"] for r in test] == [6, 12]
    assert train[-1]["loss"] < train[0]["loss"]
    assert test[-1]["miou"] == final["miou"] and 0 <= final["miou"] <= 1
    assert {"pixel_accuracy", "iou/background", "iou/circle"} <= set(final)
    assert os.listdir(os.path.join(workdir, "tensorboard"))
    assert checkpoint_steps(workdir) == [9, 12]


@pytest.mark.slow
def test_finished_workdir_is_resumed_not_restarted(reference_run, data_dir):
    workdir, final = reference_run
    before = len(records(workdir))
    again = train_and_evaluate(tiny_unet_config(data_dir), workdir)
    assert again == final
    assert [r["split"] for r in records(workdir)[before:]] == ["test"]


class _StopAfter:
    """Stands in for SIGTERM arriving after `n` steps."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @property
    def requested(self):
        self.n -= 1
        return self.n < 0


def _progress_steps(stderr: str, total: int) -> list[int]:
    """The steps of the plain progress lines (stderr not a terminal) of a `total`-step run."""
    line = re.compile(rf"step (\d+)/{total}  loss \d+\.\d{{4}}  \d+\.\d img/s  ETA \w+")
    return [int(m.group(1)) for m in map(line.fullmatch, stderr.splitlines()) if m]


@pytest.mark.slow
def test_stopped_run_resumes_to_identical_parameters(reference_run, data_dir, tmp_path,
                                                     monkeypatch, capsys):
    ref_dir, ref_final = reference_run
    workdir = str(tmp_path)
    monkeypatch.setattr(loop, "StopRequest", lambda: _StopAfter(4))
    stopped = train_and_evaluate(tiny_unet_config(data_dir), workdir)
    assert stopped == {"step": 5, "stopped": True}  # saved off the 3-step interval
    assert _progress_steps(capsys.readouterr().err, 12) == [2, 4]  # log_every 2
    monkeypatch.undo()
    final = train_and_evaluate(tiny_unet_config(data_dir), workdir)
    assert final == ref_final
    assert _progress_steps(capsys.readouterr().err, 12) == [6, 8, 10, 12]
    chex.assert_trees_all_equal(saved_state(workdir, 12), saved_state(ref_dir, 12))


@pytest.mark.slow
def test_unfinished_checkpoint_write_is_ignored(reference_run, data_dir, tmp_path):
    """A crash in the middle of a save leaves only a temporary directory: the run resumes from
    the newest complete checkpoint."""
    ref_dir, ref_final = reference_run
    workdir = str(tmp_path)
    train_and_evaluate(tiny_unet_config(data_dir, steps=12), workdir)
    broken = os.path.join(workdir, "checkpoints", "15.orbax-checkpoint-tmp-1234", "state")
    os.makedirs(broken)
    with open(os.path.join(broken, "garbage"), "wb") as f:
        f.write(os.urandom(64))
    before = len(records(workdir))
    final = train_and_evaluate(tiny_unet_config(data_dir, steps=15), workdir)
    assert final["step"] == 15 and 15 in checkpoint_steps(workdir)
    assert [r["step"] for r in records(workdir)[before:] if r["split"] == "train"] == [14, 15]


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly(tmp_path):
    """Also what train.py prints off a terminal: plain progress lines, no INFO logs (orbax's,
    TFDS's), no TFDS progress bars or "Downloading and preparing" for the local dataset."""
    workdir, data_dir = str(tmp_path / "run"), str(tmp_path / "tfds")  # prepared by this run
    proc = subprocess.Popen(
        train_cmd(workdir, data_dir, "--config.train.steps=100000", "--config.train.log_every=1",
                  "--config.train.checkpoint_every=100000"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = os.path.join(workdir, "metrics.jsonl")
    try:
        for _ in range(1200):
            if os.path.exists(metrics) and len(open(metrics).readlines()) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail(f"training exited early: {proc.communicate()[1][-2000:]}")
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "SIGTERM: saved a checkpoint" in err
    steps = checkpoint_steps(workdir)
    assert len(steps) == 1 and steps[0] >= 3
    assert _progress_steps(err, 100000) == list(range(1, steps[0] + 1))
    assert out == ""  # stdout only ever holds the final JSON line
    assert "Preparing dataset shapes in " in err
    info = [line for line in err.splitlines() if re.match(r"I\d{4} ", line)]  # absl's format
    assert not info, info[:5]
    assert not re.search(r"Downloading and preparing|downloaded and prepared|Generating", err)


def test_config_typo_is_named():
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "train.py"), "--config",
         os.path.join(REPO, "configs", "unet.py"), "--config.trian.steps=5"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "trian" in result.stderr and 'Did you mean "train"' in result.stderr
