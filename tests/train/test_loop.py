"""End to end: a short run, its logs, SIGTERM-save, resume to identical results."""

import json
import os
import signal
import subprocess
import sys
import time

import chex
import orbax.checkpoint as ocp
import pytest

from jaxvision.train import loop, train_and_evaluate
from tests.train.conftest import tiny_unet_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _params(workdir, step):
    state = ocp.StandardCheckpointer().restore(os.path.join(workdir, "checkpoints", str(step),
                                                            "state"))
    return state["params"], state["batch_stats"]


def _records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, data_dir):
    workdir = str(tmp_path_factory.mktemp("reference"))
    return workdir, train_and_evaluate(tiny_unet_config(data_dir), workdir)


def test_short_run_logs_and_evaluates(reference_run, capsys):
    workdir, final = reference_run
    records = _records(workdir)
    train = [r for r in records if r["split"] == "train"]
    test = [r for r in records if r["split"] == "test"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12]
    assert [r["step"] for r in test] == [6, 12]
    assert train[-1]["loss"] < train[0]["loss"]
    assert test[-1]["miou"] == final["miou"] and 0 <= final["miou"] <= 1
    assert {"pixel_accuracy", "iou/background", "iou/circle"} <= set(final)
    assert os.listdir(os.path.join(workdir, "tensorboard"))
    assert sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))
                  if s.isdigit()) == [9, 12]


def test_finished_workdir_is_resumed_not_restarted(reference_run, data_dir):
    workdir, final = reference_run
    before = len(_records(workdir))
    again = train_and_evaluate(tiny_unet_config(data_dir), workdir)
    assert again == final
    new = _records(workdir)[before:]
    assert [r["split"] for r in new] == ["test"]


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


def test_stopped_run_resumes_to_identical_parameters(reference_run, data_dir, tmp_path,
                                                     monkeypatch):
    ref_dir, ref_final = reference_run
    workdir = str(tmp_path)
    monkeypatch.setattr(loop, "StopRequest", lambda: _StopAfter(4))
    stopped = train_and_evaluate(tiny_unet_config(data_dir), workdir)
    assert stopped == {"step": 5, "stopped": True}  # saved off the 3-step interval
    monkeypatch.undo()
    final = train_and_evaluate(tiny_unet_config(data_dir), workdir)
    assert final == ref_final
    chex.assert_trees_all_equal(_params(workdir, 12), _params(ref_dir, 12))


def _train_cmd(workdir, data_dir, *extra):
    return [sys.executable, os.path.join(REPO, "train.py"), "--config",
            os.path.join(REPO, "configs", "unet.py"), f"--workdir={workdir}",
            f"--config.data.data_dir={data_dir}", "--config.data.image_size=32",
            "--config.data.num_train=48", "--config.data.num_test=12",
            "--config.model_kwargs.depth=2", "--config.model_kwargs.base_width=4",
            "--config.train.batch_size=8", "--config.train.eval_batch_size=8", *extra]


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly(tmp_path, data_dir):
    workdir = str(tmp_path)
    proc = subprocess.Popen(
        _train_cmd(workdir, data_dir, "--config.train.steps=100000",
                   "--config.train.log_every=1", "--config.train.checkpoint_every=100000"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = os.path.join(workdir, "metrics.jsonl")
    try:
        for _ in range(600):
            if os.path.exists(metrics) and len(open(metrics).readlines()) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail(f"training exited early: {proc.communicate()[1][-2000:]}")
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "SIGTERM: saved a checkpoint" in err
    steps = [int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit()]
    assert len(steps) == 1 and steps[0] >= 3


def test_config_typo_is_named():
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "train.py"), "--config",
         os.path.join(REPO, "configs", "unet.py"), "--config.trian.steps=5"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "trian" in result.stderr and 'Did you mean "train"' in result.stderr
