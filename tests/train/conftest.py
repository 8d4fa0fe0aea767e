"""A tiny U-Net run on a tiny shapes dataset, shared by the training-system tests."""

import pytest

from configs import unet as unet_config


def tiny_unet_config(data_dir: str, steps: int = 12):
    config = unet_config.get_config()
    config.data.update(dict(image_size=32, num_train=48, num_test=12, data_dir=data_dir))
    config.model_kwargs.update(dict(depth=2, base_width=4))
    config.train.update(dict(steps=steps, batch_size=8, eval_batch_size=8, log_every=2,
                             eval_every=6, checkpoint_every=3, keep_checkpoints=2))
    config.optimizer.warmup_steps = 2
    return config


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))
