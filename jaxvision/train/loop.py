"""`train_and_evaluate(config, workdir)`: data, model, state, parallel step, checkpoints, logs."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from jaxvision.data import buckets, eval_batches, load_splits, make_transforms
from jaxvision.models import get_model
from jaxvision.tasks import get_task
from jaxvision.train.checkpoint import Checkpoints
from jaxvision.train.config import validate_config
from jaxvision.train.distributed import initialize_distributed
from jaxvision.train.init_from import load_pretrained, merge_pretrained
from jaxvision.train.logging import MetricsWriter
from jaxvision.train.optim import build_optimizer
from jaxvision.train.parallel import make_parallel
from jaxvision.train.preemption import StopRequest
from jaxvision.train.run_config import load_dataset_info, resolve_run_config, save_run
from jaxvision.train.state import create_train_state
from jaxvision.train.step import make_train_step


class NonFiniteLossError(FloatingPointError):
    """Training produced a non-finite loss or gradient and `train.nonfinite` is 'stop'."""


def _say(message: str) -> None:
    """One line on stderr from process 0 (absl INFO is silenced by train.py by default)."""
    if jax.process_index() == 0:
        print(message, file=sys.stderr, flush=True)


def load_data(config):
    """Process 0 builds the dataset first; the others then open (or build their own copy)."""
    data_cfg = config.data
    masks = config.task == "detection" and bool(config.task_kwargs.get("masks", False))
    if jax.process_count() > 1:
        if jax.process_index() == 0:
            load_splits(config.dataset, data_cfg, instance_masks=masks)
        multihost_utils.sync_global_devices("jaxvision:data_prepared")
    return load_splits(config.dataset, data_cfg, instance_masks=masks)


def _saved_dataset(workdir: str) -> dict:
    info = load_dataset_info(workdir)
    if info is None:
        raise ValueError(f"workdir {workdir}: expected dataset.json (the class names, written by "
                         "train.py when a run starts), not found")
    return info


def blank_example(config, image: np.ndarray | None = None) -> dict:
    """A source example of `image` (default: black 64 x 64) with no annotations and every field
    a transform may ask for, with empty proposals when the run uses them (for shapes, and for
    predicting a new image)."""
    image = np.zeros((64, 64, 3), np.uint8) if image is None else image
    size = image.shape[:2]
    example = {"image": image, "boxes": np.zeros((0, 4), np.float32),
               "labels": np.zeros((0,), np.int64), "iscrowd": np.zeros((0,), bool),
               "image_id": 0, "label": 0, "masks": np.zeros((0, *size), np.uint8),
               "segmentation": np.zeros(size, np.uint8)}
    if config.data.proposals.method != "none":
        count = config.data.proposals.max_proposals
        example.update(proposals=np.zeros((count, 4), np.float32),
                       proposals_valid=np.zeros((count,), bool))
    return example


def _any_process(flag: bool) -> bool:
    """True on every process if `flag` is true on any (so all stop at the same step)."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.array(flag))))


@dataclasses.dataclass
class Trainer:
    """Everything a run needs, built once from the config."""

    config: object
    workdir: str
    with_data: bool = True  # False: no dataset is opened (predicting images; needs dataset.json)

    def __post_init__(self):
        config = self.config
        self.splits = load_data(config) if self.with_data else None
        class_names = (self.splits.class_names if self.with_data
                       else tuple(_saved_dataset(self.workdir)["class_names"]))
        self.task = get_task(config.task, class_names, **config.task_kwargs)
        self.parallel = make_parallel(config.parallel)
        self.model = get_model(config.model, num_classes=self.task.num_classes,
                               dtype=jnp.dtype(config.dtype), axis_name=self.parallel.axis_name,
                               **config.model_kwargs)
        self.transform, self.eval_transform = make_transforms(config, self.task.fields)
        self.train_iter = (iter(buckets.train_dataset(config, self.splits, self.transform))
                           if self.with_data else None)
        self.eval_data = (buckets.eval_data(config, self.splits, self.eval_transform)
                          if self.with_data else None)
        self.tx = build_optimizer(config.optimizer, config.train.steps,
                                  trainable=getattr(self.model, "trainable_mask", None))
        self.step_fn = self.parallel.jit_step(make_train_step(
            self.model, self.task, self.tx, axis_name=self.parallel.axis_name,
            grad_accum_steps=config.train.grad_accum_steps, ema_decay=config.ema_decay))
        self.predict_fn = self.parallel.jit_predict(
            lambda variables, batch: self.task.predict(self.model, variables, batch))
        self.checkpoints = Checkpoints(os.path.join(self.workdir, "checkpoints"),
                                       every=config.train.checkpoint_every,
                                       keep=config.train.keep_checkpoints)

    def initial_state(self):
        """The latest checkpoint's state (data iterator moved to match), else a fresh one."""
        init_rng = jax.random.fold_in(jax.random.key(self.config.seed), 0)
        source = self.splits.test if self.with_data else [blank_example(self.config)]
        example = next(iter(eval_batches(source, self.eval_transform,
                                         global_batch=jax.process_count())))
        example = {k: v for k, v in example.items() if k not in ("example_valid", "example_index")}

        def init(rng, batch, pretrained=None):
            variables = self.task.init(self.model.clone(axis_name=None), rng, batch)
            if pretrained is not None:  # config.init_from (see jaxvision.train.init_from)
                variables = merge_pretrained(variables, pretrained, path=self.config.init_from,
                                             heads=getattr(self.model, "head_names", ()),
                                             mapping=self.config.get("init_from_map", ()))
            return create_train_state(variables, self.tx, ema=self.config.ema_decay > 0)

        if self.checkpoints.latest_step is not None:
            abstract = self.parallel.saved_abstract(jax.eval_shape(init, init_rng, example))
            _say(f"Resuming from {self.checkpoints.manager.directory} at step "
                 f"{self.checkpoints.latest_step}")
            saved = self.checkpoints.restore(abstract, self.train_iter)
            return self.parallel.from_saved(saved)
        if self.config.init_from:
            _say(f"Initialising from {self.config.init_from}")
            pretrained = load_pretrained(self.config.init_from)
            return self.parallel.jit_init(init)(init_rng, example, pretrained)
        return self.parallel.jit_init(init)(init_rng, example)

    def save(self, step: int, state, *, force: bool = False):
        self.checkpoints.save(step, self.parallel.to_saved(state), self.train_iter, force=force)

    def check_finite(self, state):
        """Raises NonFiniteLossError naming the first bad step when `train.nonfinite == 'stop'`."""
        if self.config.train.nonfinite != "stop":
            return
        skipped, first = self.parallel.to_host((state.skipped, state.first_skipped))
        if skipped:
            raise NonFiniteLossError(
                f"non-finite loss or gradient at step {int(first) + 1}: training stopped and no "
                f"checkpoint was written after it (latest: {self.checkpoints.latest_step}); "
                "lower the learning rate, or set --config.train.nonfinite=skip to drop such "
                "updates")

    def evaluate(self, state, step: int, name: str | None = None) -> dict[str, float]:
        """Task metrics over the whole test split (EMA params when EMA is on): predictions are
        gathered to the host, padding dropped, and fed to the task's evaluator, whose files go
        to `workdir/eval/<name or step>/` (process 0 only)."""
        output_dir = (os.path.join(self.workdir, "eval", name or str(step))
                      if jax.process_index() == 0 else None)
        evaluator = self.task.evaluator(output_dir, self.splits)
        for local in self.eval_data():
            outputs = self.predict_fn(state.eval_variables, self.parallel.put_batch(local))
            predictions, batch = self.parallel.gather(outputs, local)
            keep = np.asarray(batch.pop("example_valid"), bool)
            evaluator.update(_rows(predictions, keep), _rows(batch, keep))
        return evaluator.result()


def _rows(tree, keep: np.ndarray):
    """The rows of every numpy leaf [B, ...] where `keep` [B] is True."""
    return jax.tree.map(lambda x: x[keep], tree)


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
    """Trains `config.train.steps` steps (resuming from `workdir/checkpoints` if present),
    evaluates on the test split, writes `workdir/metrics.jsonl` and returns the final metrics."""
    validate_config(config)
    workdir = os.path.abspath(os.path.expanduser(workdir))
    resolve_run_config(workdir, config)  # a resumed run keeps what it trains
    initialize_distributed(config.distributed)
    trainer = Trainer(config, workdir)
    if jax.process_index() == 0:
        save_run(workdir, config, trainer.splits)
    state = trainer.initial_state()
    to_host = trainer.parallel.to_host
    start, total = int(to_host(state.step)), config.train.steps
    num_params = sum(np.prod(x.shape) for x in jax.tree.leaves(trainer.parallel.to_saved(
        state).params))
    _say(f"{config.model}: {num_params:,} parameters on {trainer.parallel.num_devices} "
         f"device(s) ({config.parallel}, {jax.process_count()} process(es)); steps {start}.."
         f"{total}; workdir {workdir}")
    writer = MetricsWriter(workdir, total_steps=total, initial_step=start)
    try:
        state, stopped = _train(trainer, state, writer, start, total)
        if stopped:
            return {"step": int(to_host(state.step)), "stopped": True}
        trainer.checkpoints.wait()
        final = {"step": total, **writer.write(total, "test", trainer.evaluate(state, total))}
    finally:  # a crash still finishes the checkpoint being written
        writer.close()
        trainer.checkpoints.wait()
        trainer.checkpoints.close()
    if jax.process_index() == 0:
        print(json.dumps(final), flush=True)
    return final


def _train(trainer: Trainer, state, writer: MetricsWriter, start: int, total: int):
    """Steps `start..total`; returns the last state and whether SIGTERM stopped the run."""
    config, to_host = trainer.config, trainer.parallel.to_host
    step_key = jax.random.fold_in(jax.random.key(config.seed), 1)
    last_log, last_time = start, time.time()
    with StopRequest() as stop:
        for step in range(start, total):
            batch = trainer.parallel.put_batch(next(trainer.train_iter))
            state, metrics = trainer.step_fn(state, batch, step_key)
            done = step + 1
            writer.progress(1)
            if done % config.train.log_every == 0 or done == total:
                trainer.check_finite(state)
                metrics = to_host(metrics)
                now = time.time()
                rate = (done - last_log) * config.train.batch_size / (now - last_time)
                writer.write(done, "train", {**metrics, "images_per_s": rate})
                writer.log_progress(done, float(metrics["loss"]), rate)
                last_log, last_time = done, now
            if done % config.train.eval_every == 0 and done != total:
                writer.write(done, "test", trainer.evaluate(state, done))
            stopping = _any_process(stop.requested)
            if stopping or done % config.train.checkpoint_every == 0 or done == total:
                trainer.check_finite(state)
                trainer.save(done, state, force=True)
            if stopping:
                _say(f"SIGTERM: saved a checkpoint at step {done} and stopped")
                return state, True
    return state, False
