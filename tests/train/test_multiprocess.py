"""Processes as hosts: a 2-process `jax.distributed` run (gloo on localhost) that stops and
resumes equals a 1-process run on the same 4 devices; a SIGKILLed run restarts to the same end."""

import os
import signal
import socket
import subprocess
import time

import chex
import pytest

from tests.train.conftest import checkpoint_steps, records, saved_state, train_cmd

pytestmark = pytest.mark.slow

# A constant learning rate makes a 3-step run the exact first half of a 6-step run.
CONSTANT_LR = ("--config.optimizer.schedule=constant", "--config.optimizer.warmup_steps=0",
               "--config.optimizer.name=sgd", "--config.optimizer.learning_rate=0.05",
               "--config.train.checkpoint_every=3", "--config.train.log_every=1")


def _env(devices: int) -> dict:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmds, env, timeout=400):
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for c in cmds]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]


def _two_hosts(workdir, data_dir, steps):
    port = _free_port()
    return [train_cmd(workdir, data_dir, *CONSTANT_LR, f"--config.train.steps={steps}",
                      "--config.distributed.enabled=True",
                      f"--config.distributed.coordinator_address=127.0.0.1:{port}",
                      "--config.distributed.num_processes=2",
                      f"--config.distributed.process_id={i}") for i in range(2)]


def test_two_processes_stop_resume_equal_one_process(tmp_path, data_dir):
    reference = str(tmp_path / "one_process")
    _run([train_cmd(reference, data_dir, *CONSTANT_LR, "--config.train.steps=6")], _env(4))
    hosts = str(tmp_path / "two_processes")
    _run(_two_hosts(hosts, data_dir, steps=3), _env(2))
    assert checkpoint_steps(hosts) == [3]
    _run(_two_hosts(hosts, data_dir, steps=6), _env(2))
    assert checkpoint_steps(hosts) == [3, 6]
    train_steps = [r["step"] for r in records(hosts) if r["split"] == "train"]
    assert train_steps == [1, 2, 3, 4, 5, 6]  # only process 0 writes, and nothing twice
    chex.assert_trees_all_close(saved_state(hosts, 6)["params"],
                                saved_state(reference, 6)["params"], rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(saved_state(hosts, 6)["batch_stats"],
                                saved_state(reference, 6)["batch_stats"], rtol=1e-5, atol=1e-7)


def test_sigkill_mid_run_then_restart_ends_identical(tmp_path, data_dir):
    steps = ("--config.train.steps=14", "--config.train.checkpoint_every=2",
             "--config.train.log_every=1")
    reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
    _run([train_cmd(reference, data_dir, *steps)], _env(2))
    proc = subprocess.Popen(train_cmd(killed, data_dir, *steps), env=_env(2),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = os.path.join(killed, "metrics.jsonl")
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(metrics) and len(open(metrics).readlines()) >= 5:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert max(checkpoint_steps(killed)) < 14
    _run([train_cmd(killed, data_dir, *steps)], _env(2))
    chex.assert_trees_all_equal(saved_state(killed, 14), saved_state(reference, 14))
