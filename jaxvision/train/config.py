"""The fields every training config has; `configs/<model>.py` start from `base_config()`."""

from __future__ import annotations

import ml_collections

DTYPES = ("float32", "bfloat16")
PARALLEL = ("jit", "pmap")
NONFINITE = ("stop", "skip")


def base_config() -> ml_collections.ConfigDict:
    """Defaults for every field the trainer reads (unlocked: a model config edits, then locks)."""
    c = ml_collections.ConfigDict()
    c.model = "unet"
    c.model_kwargs = ml_collections.ConfigDict()
    c.task = "segmentation"
    c.task_kwargs = ml_collections.ConfigDict()
    c.dataset = "shapes"
    c.data = ml_collections.ConfigDict(dict(
        image_size=64, num_train=2000, num_test=256, min_shapes=1, max_shapes=3,
        min_extent=0.2, max_extent=0.45, seed=0,  # shapes: diameter / image size in [min, max]
        data_dir="~/tensorflow_datasets", max_boxes=8, random_flip=True,
        random_crop_padding=0))  # > 0: pad-and-random-crop (not for box tasks)
    c.train = ml_collections.ConfigDict(dict(
        steps=1000, batch_size=16, eval_batch_size=32, log_every=50, eval_every=500,
        checkpoint_every=250, keep_checkpoints=2, grad_accum_steps=1, nonfinite="stop"))
    c.optimizer = ml_collections.ConfigDict(dict(
        name="adamw", learning_rate=1e-3, momentum=0.9, nesterov=False, weight_decay=1e-4,
        warmup_steps=50, schedule="cosine", grad_clip_norm=0.0))
    c.seed = 0
    c.init_from = ""  # orbax checkpoint of the weights CLI; used when the workdir has none
    c.dtype = "float32"
    c.parallel = "jit"
    c.ema_decay = 0.0  # > 0: evaluate an exponential moving average of the params
    c.distributed = ml_collections.ConfigDict(dict(
        enabled=False, coordinator_address="", num_processes=0, process_id=0))
    return c


def validate_config(config) -> None:
    """Raises ValueError naming the field for values the trainer cannot run with."""
    choices = {"dtype": (config.dtype, DTYPES), "parallel": (config.parallel, PARALLEL),
               "train.nonfinite": (config.train.nonfinite, NONFINITE)}
    for field, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"config.{field}: expected one of {allowed}, got {value!r}")
    positive = {f"train.{k}": config.train[k] for k in
                ("steps", "batch_size", "eval_batch_size", "log_every", "eval_every",
                 "checkpoint_every", "keep_checkpoints", "grad_accum_steps")}
    positive["data.max_boxes"] = config.data.max_boxes
    if not isinstance(config.data.random_crop_padding, int) or config.data.random_crop_padding < 0:
        raise ValueError(f"config.data.random_crop_padding: expected an integer >= 0, got "
                         f"{config.data.random_crop_padding!r}")
    for field, value in positive.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"config.{field}: expected a positive integer, got {value!r}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"config.ema_decay: expected 0 <= decay < 1, got {config.ema_decay}")
    if config.optimizer.learning_rate <= 0:
        raise ValueError(f"config.optimizer.learning_rate: expected > 0, "
                         f"got {config.optimizer.learning_rate}")
