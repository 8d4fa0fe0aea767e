"""A tiny U-Net run on a tiny shapes dataset, shared by the training-system tests."""

import json
import os
import sys

import jax
import orbax.checkpoint as ocp
import pytest

from configs import unet as unet_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(image_size=32)
TINY_SHAPES = dict(num_train=48, num_test=12)  # config.data.builders.shapes


def tiny_unet_config(data_dir: str, steps: int = 12):
    config = unet_config.get_config()
    config.data.update(dict(data_dir=data_dir, **TINY))
    config.data.builders.shapes.update(TINY_SHAPES)
    config.model_kwargs.update(dict(depth=2, base_width=4))
    config.train.update(dict(steps=steps, batch_size=8, eval_batch_size=8, log_every=2,
                             eval_every=6, checkpoint_every=3, keep_checkpoints=2))
    config.optimizer.warmup_steps = 2
    return config


def train_cmd(workdir: str, data_dir: str, *overrides: str) -> list[str]:
    """`python train.py` with the tiny config of `tiny_unet_config` plus `overrides`."""
    tiny = [f"--config.data.{k}={v}" for k, v in TINY.items()]
    tiny += [f"--config.data.builders.shapes.{k}={v}" for k, v in TINY_SHAPES.items()]
    return [sys.executable, os.path.join(REPO, "train.py"), "--config",
            os.path.join(REPO, "configs", "unet.py"), f"--workdir={workdir}",
            f"--config.data.data_dir={data_dir}", *tiny, "--config.model_kwargs.depth=2",
            "--config.model_kwargs.base_width=4", "--config.train.batch_size=8",
            "--config.train.eval_batch_size=8", "--config.optimizer.warmup_steps=2", *overrides]


def saved_state(workdir: str, step: int) -> dict:
    """The train state saved at `step` as a tree of numpy arrays."""
    path = os.path.join(workdir, "checkpoints", str(step), "state")
    checkpointer = ocp.StandardCheckpointer()
    here = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(  # saved on any topology, read onto this process's first device
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=here),
        checkpointer.metadata(path).item_metadata.tree)
    return jax.device_get(checkpointer.restore(path, target))


def records(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def checkpoint_steps(workdir: str) -> list[int]:
    return sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit())


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))
