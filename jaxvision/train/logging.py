"""Where metrics go: a progress bar on a terminal, `workdir/metrics.jsonl`, TensorBoard events.

Only process 0 writes; other processes get a writer that does nothing.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import jax
import numpy as np
import tqdm


def _plain(value):
    value = np.asarray(value).item() if np.ndim(value) == 0 else np.asarray(value).tolist()
    return None if isinstance(value, float) and not math.isfinite(value) else value


class MetricsWriter:
    """Appends `{"step", "split", "time", metrics...}` lines to metrics.jsonl and TB scalars."""

    def __init__(self, workdir: str, *, total_steps: int, initial_step: int):
        self.active = jax.process_index() == 0
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.bar = None
        self.tb = None
        if not self.active:
            return
        os.makedirs(workdir, exist_ok=True)
        from tensorboardX import SummaryWriter

        self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
        self.bar = tqdm.tqdm(total=total_steps, initial=initial_step, desc="train",
                             unit="step", dynamic_ncols=True, disable=None, file=sys.stderr)

    def write(self, step: int, split: str, metrics: dict) -> dict:
        """Records scalar metrics of `split` ('train' or 'test') at `step`; returns them as plain
        Python values."""
        record = {k: _plain(v) for k, v in metrics.items()}
        if not self.active:
            return record
        with open(self.path, "a") as f:
            line = {"step": step, "split": split, "time": time.time(), **record}
            f.write(json.dumps(line) + "\n")
        for name, value in record.items():
            if isinstance(value, int | float):
                self.tb.add_scalar(f"{split}/{name}", value, step)
        self.tb.flush()
        return record

    def progress(self, steps: int, **postfix):
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
