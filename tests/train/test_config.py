"""validate_config: every setting the trainer would refuse is refused before any dataset work."""

import os

import pytest

from jaxvision.train import train_and_evaluate
from jaxvision.train.config import validate_config
from jaxvision.train.optim import build_optimizer
from tests.train.conftest import tiny_unet_config


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("optimizer.warmup_steps", 13, r"config\.optimizer\.warmup_steps: expected an integer in "
                                       r"0\.\.train\.steps=12, got 13"),
        ("optimizer.warmup_steps", -1, r"config\.optimizer\.warmup_steps: .* got -1"),
        ("optimizer.name", "adam", r"config\.optimizer\.name: expected one of .*'adamw'.*"
                                   r"got 'adam'"),
        ("optimizer.schedule", "step", r"config\.optimizer\.schedule: .* got 'step'"),
        ("optimizer.learning_rate", 0.0, r"config\.optimizer\.learning_rate: expected > 0"),
        ("model", "unett", r"config\.model: expected one of .*'unet'.* got 'unett'"),
        ("task", "segment", r"config\.task: expected one of .* got 'segment'"),
    ],
)
def test_bad_setting_is_named(tmp_path, field, value, match):
    config = tiny_unet_config(str(tmp_path), steps=12)
    validate_config(config)
    section, _, name = field.rpartition(".")
    (config[section] if section else config)[name] = value
    with pytest.raises(ValueError, match=match):
        validate_config(config)


@pytest.mark.parametrize("warmup", [0, 12])  # the whole range, both ends (12 = train.steps)
def test_warmup_range_ends_are_accepted(tmp_path, warmup):
    config = tiny_unet_config(str(tmp_path), steps=12)
    config.optimizer.warmup_steps = warmup
    validate_config(config)
    build_optimizer(config.optimizer, config.train.steps)


def test_optimizer_builder_refuses_what_validate_config_refuses():
    config = tiny_unet_config("unused", steps=12)
    config.optimizer.warmup_steps = 13
    with pytest.raises(ValueError, match=r"config\.optimizer\.warmup_steps"):
        build_optimizer(config.optimizer, config.train.steps)


def test_config_error_comes_before_any_dataset_work(tmp_path):
    data_dir, workdir = tmp_path / "tfds", tmp_path / "run"
    config = tiny_unet_config(str(data_dir), steps=12)
    config.optimizer.warmup_steps = 13
    with pytest.raises(ValueError, match=r"config\.optimizer\.warmup_steps: .* got 13"):
        train_and_evaluate(config, str(workdir))
    assert not os.path.exists(data_dir) and not os.path.exists(workdir)
