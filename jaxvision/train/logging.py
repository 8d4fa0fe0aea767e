"""Where metrics go: progress on stderr (a bar on a terminal, else a line every `log_every`
steps), `workdir/metrics.jsonl`, TensorBoard events.

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


def _duration(seconds: float) -> str:
    """'45s', '6m05s', '2h03m' (rounded to whole seconds)."""
    s = max(round(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class MetricsWriter:
    """Appends `{"step", "split", "time", metrics...}` lines to metrics.jsonl and TB scalars."""

    def __init__(self, workdir: str, *, total_steps: int, initial_step: int):
        self.active = jax.process_index() == 0
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.bar = None
        self.tb = None
        self.total_steps = total_steps
        self._last = initial_step, time.monotonic()  # (step, time) of the last progress
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

    def progress(self, steps: int):
        """Moves the bar (on a terminal) `steps` steps on."""
        if self.bar is not None:
            self.bar.update(steps)

    def log_progress(self, step: int, loss: float, images_per_s: float) -> str | None:
        """At a logged `step`: loss and rate on the bar on a terminal; elsewhere (stderr not a
        terminal: the bar is off) one line on stderr, returned,
        `step 50/1200  loss 0.8123  31.2 img/s  ETA 6m05s`, the ETA from the time per step
        since the previous call (or since the writer was made)."""
        now = time.monotonic()
        last_step, last_time = self._last
        self._last = step, now
        if self.bar is None:
            return None
        if not self.bar.disable:
            self.bar.set_postfix({"loss": f"{loss:.4g}", "img_s": f"{images_per_s:.4g}"},
                                 refresh=False)
            return None
        eta = (now - last_time) / max(step - last_step, 1) * (self.total_steps - step)
        line = (f"step {step}/{self.total_steps}  loss {loss:.4f}  {images_per_s:.1f} img/s  "
                f"ETA {_duration(eta)}")
        print(line, file=sys.stderr, flush=True)
        return line

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
