"""The lecture's R-CNN -> Fast R-CNN -> Faster R-CNN table on this CPU: test time per image
(proposals included), the proposals' share of it, the speed-up over R-CNN and VOC07 mAP, for
trained runs of configs/rcnn.py, configs/fast_rcnn.py and configs/faster_rcnn.py on shapes.

    python -m benchmarks.rcnn_family                      # runs in /tmp/jaxvision_runs/<name>
    python -m benchmarks.rcnn_family --workdirs rcnn=DIR fast_rcnn=DIR faster_rcnn=DIR --images 64
    python -m benchmarks.rcnn_family --quick              # 2 train steps, 8 test images

Per test image, at batch 1: the proposal time (R-CNN and Fast R-CNN: selective search on the
image, on the host, with the config's `data.proposals` settings, exactly the call the data
pipeline caches; Faster R-CNN's RPN is inside the model, so 0) plus the jitted
`task.predict` (compiled and warmed up first, `block_until_ready`). The eval transform
(resize / pad / normalise, the same for all three) is not timed. The selective search boxes
timed are the ones the model is given, and are checked against the pipeline's cache.

mAP: VOC2007 11-point AP at IoU 0.5 over the first N test images (`jaxvision.metrics.voc_eval`,
crowd boxes as difficult, as the detection evaluator does), from the very predictions timed.
The lecture's figures (VOC 2007, a 2015 GPU, full VGG-16, ~2,000 proposals) are printed beside
each row for comparison only. The 1-minute load average is read at the start and the end of
each row's timing: the machine may be shared, and a time taken under load is an upper bound,
a ratio of two such times noise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

NAMES = ("rcnn", "fast_rcnn", "faster_rcnn")
DEFAULT_ROOT = "/tmp/jaxvision_runs"
# the lecture's slide: test time per image (s, with proposals), speed-up, VOC 2007 mAP (%)
LECTURE = {"rcnn": (50.0, 1, 66.0), "fast_rcnn": (2.0, 25, 66.9), "faster_rcnn": (0.2, 250, 66.9)}
QUICK_OVERRIDES = {"data.builders.shapes.num_train": 16, "data.builders.shapes.num_test": 8,
                   "train.steps": 2, "train.eval_every": 2, "train.checkpoint_every": 2,
                   "optimizer.warmup_steps": 1, "data.proposals.processes": 0}
QUICK_IMAGES = 8  # the whole tiny test split


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_for(name: str, overrides: dict | None = None):
    """configs/<name>.py's config with `overrides` ({'train.steps': 2, ...}) applied."""
    import importlib

    config = importlib.import_module(f"configs.{name}").get_config()
    for path, value in (overrides or {}).items():
        *parents, leaf = path.split(".")
        node = config
        for p in parents:
            node = node[p]
        node[leaf] = value
    return config


def proposer(config):
    """None when the model makes its own proposals (data.proposals.method 'none'), else
    image uint8 [H, W, 3] -> (boxes float32 [P, 4] xyxy, valid bool [P]): the data pipeline's
    selective search call for this config (`jaxvision.data.proposals.image_proposals`)."""
    import functools

    from jaxvision.data.proposals import image_proposals

    if config.data.proposals.method == "none":
        return None
    return functools.partial(image_proposals, settings=config.data.proposals)


def measure(name: str, config, workdir: str, images: int) -> dict:
    """One row: {'name', 'images', 'seconds' (mean per image), 'proposal_seconds' (mean),
    'map' (VOC07 11-point, IoU 0.5), 'load_start', 'load_end', 'cache_matches' (images whose
    recomputed proposals equal the pipeline's cache), 'predictions' / 'ground_truth' (per image:
    numpy boxes [D, 4] xyxy, scores [D], labels [D] / boxes [M, 4], labels [M], difficult [M],
    as voc_eval takes them)}."""
    import jax
    import numpy as np

    from jaxvision.metrics import voc_eval
    from jaxvision.predict import load_run

    trainer, state = load_run(workdir, config, with_data=True)
    source = trainer.splits.test
    n = min(int(images), len(source))
    if n < 1:
        raise ValueError(f"images: expected at least 1 test image, got {n}")
    propose = proposer(config)
    predict = jax.jit(lambda v, b: trainer.task.predict(trainer.model, v, b))
    # one device, batch 1 (a restored state is replicated over every device the trainer's
    # mesh spans, e.g. the tests' 8 virtual CPUs)
    variables = jax.device_put(state.eval_variables, jax.devices()[0])

    def batch_of(example, index):
        return {k: np.asarray(v)[None] for k, v in trainer.eval_transform(example, index).items()}

    jax.block_until_ready(predict(variables, batch_of(dict(source[0]), 0)))  # compile
    jax.block_until_ready(predict(variables, batch_of(dict(source[0]), 0)))  # warm up

    totals, proposal_times, predictions, ground_truth = [], [], [], []
    cache_matches = 0
    load_start = os.getloadavg()[0]
    for i in range(n):
        example = dict(source[i])
        spent = 0.0
        if propose is not None:
            start = time.perf_counter()
            boxes, valid = propose(example["image"])
            spent = time.perf_counter() - start
            cache_matches += bool(np.array_equal(boxes, example["proposals"])
                                  and np.array_equal(valid, example["proposals_valid"]))
            example["proposals"], example["proposals_valid"] = boxes, valid
        batch = batch_of(example, i)
        start = time.perf_counter()
        out = jax.block_until_ready(predict(variables, batch))
        totals.append(spent + time.perf_counter() - start)
        proposal_times.append(spent)
        keep = np.asarray(out["valid"][0], bool)
        predictions.append({k: np.asarray(out[k][0])[keep] for k in ("boxes", "scores", "labels")})
        real = np.asarray(batch["boxes_valid"][0], bool)
        ground_truth.append({"boxes": batch["boxes"][0][real], "labels": batch["labels"][0][real],
                             "difficult": np.asarray(batch["iscrowd"][0], bool)[real]})
    load_end = os.getloadavg()[0]
    mean_ap = float(voc_eval(predictions, ground_truth, use_07_metric=True)["map"])
    return dict(name=name, images=n, seconds=float(np.mean(totals)),
                proposal_seconds=float(np.mean(proposal_times)), map=mean_ap,
                load_start=load_start, load_end=load_end,
                cache_matches=cache_matches if propose is not None else None,
                predictions=predictions, ground_truth=ground_truth)


def table(rows: list[dict]) -> str:
    """The markdown table of `measure` rows (R-CNN's row first: the speed-up's base)."""
    base = rows[0]["seconds"]
    lines = ["| model | s / image | proposals | speed-up | VOC07 mAP | load start / end "
             "| lecture s / image | lecture speed-up | lecture mAP |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, up, m = LECTURE[r["name"]]
        share = 100 * r["proposal_seconds"] / r["seconds"]
        lines.append(f"| {r['name']} | {r['seconds']:.4g} | {share:.1f}% "
                     f"| {base / r['seconds']:.1f}x | {100 * r['map']:.1f} "
                     f"| {r['load_start']:.2f} / {r['load_end']:.2f} | {s:g} | {up}x | {m} |")
    n = rows[0]["images"]
    notes = [f"\n{n} test image(s) each, batch 1; mAP in %, IoU 0.5, 11-point."]
    for r in rows:
        if r["cache_matches"] is not None:
            notes.append(f"{r['name']}: recomputed proposals equal the pipeline's cache on "
                         f"{r['cache_matches']}/{r['images']} images.")
    return "\n".join(lines + notes)


def train_quick(root: str) -> dict[str, str]:
    """Trains each config QUICK_OVERRIDES' few steps on a tiny shapes set under `root` and saves
    the final checkpoint (the trainer's own step and checkpointing; the end-of-run test-split
    evaluation of `train_and_evaluate` is skipped: the table evaluates); returns {name: workdir}.
    """
    import jax

    from jaxvision.train.loop import Trainer

    workdirs = {}
    for name in NAMES:
        config = config_for(name, {**QUICK_OVERRIDES, "data.data_dir": os.path.join(root, "data")})
        workdirs[name] = os.path.join(root, name)
        trainer = Trainer(config, workdirs[name])
        state = trainer.initial_state()
        key = jax.random.fold_in(jax.random.key(config.seed), 1)
        for _ in range(config.train.steps):
            state, _ = trainer.step_fn(state, trainer.parallel.put_batch(next(trainer.train_iter)),
                                       key)
        trainer.check_finite(state)
        trainer.save(config.train.steps, state, force=True)
        trainer.checkpoints.wait()
    return workdirs


def parse_workdirs(items) -> dict[str, str]:
    """['rcnn=DIR', ...] -> {name: DIR}, every name of NAMES present (default under
    DEFAULT_ROOT)."""
    workdirs = {name: os.path.join(DEFAULT_ROOT, name) for name in NAMES}
    for item in items or ():
        name, sep, path = item.partition("=")
        if not sep or name not in NAMES:
            raise ValueError(f"--workdirs: expected NAME=DIR with NAME one of {NAMES}, "
                             f"got {item!r}")
        workdirs[name] = path
    return workdirs


def run(argv=None) -> tuple[str, list[dict]]:
    """(the printed table, its rows as `measure` returns them, in NAMES order)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdirs", nargs="*", default=[], metavar="NAME=DIR",
                        help=f"training runs (default {DEFAULT_ROOT}/<name>)")
    parser.add_argument("--images", type=int, default=64, help="test images per model")
    parser.add_argument("--quick", action="store_true",
                        help="train each config 2 steps on tiny data, time its 8 test images")
    args = parser.parse_args(argv)
    sys.path.insert(0, _repo_root())  # configs/ imports its siblings as `configs.*`
    with tempfile.TemporaryDirectory(prefix="rcnn_family_") as tmp:
        if args.quick:
            workdirs, images = train_quick(tmp), QUICK_IMAGES
            overrides = {**QUICK_OVERRIDES, "data.data_dir": os.path.join(tmp, "data")}
        else:
            workdirs, images, overrides = parse_workdirs(args.workdirs), args.images, {}
        rows = [measure(name, config_for(name, overrides), workdirs[name], images)
                for name in NAMES]
    out = table(rows)
    print(out)
    return out, rows


def main(argv=None) -> str:
    """Prints and returns the table."""
    return run(argv)[0]


if __name__ == "__main__":
    main()
