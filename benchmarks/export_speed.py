"""Serving speed: the exported CPU artifact (`python -m jaxvision.export`) against the
in-process predict (`jaxvision.predict.predict_image`) on the same image at the run's eval input
size. They run the same program, so the ratio should be 1; the in-process figure also holds its
host-side work (the eval transform, Mask R-CNN's host paste).

    python -m benchmarks.export_speed --workdir W [--image photo.jpg] [--repeats 10]
    python -m benchmarks.export_speed --quick    # a tiny U-Net run made in a temporary folder

Calls alternate (artifact, predict, artifact, ...) after one warm-up each, and the medians are
reported with the 1-minute load average before and after: only a ratio measured at a load
below 0.5 is a result (DESIGN.md, Testing).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def tiny_run(workdir: str) -> str:
    """A U-Net run (depth 2, width 4, 8 tiny shapes images) with its initial state saved as
    train.py leaves a run (config.json, dataset.json, checkpoint 0)."""
    from configs import unet
    from jaxvision.train.loop import Trainer
    from jaxvision.train.run_config import save_run

    config = unet.get_config()
    config.unlock()
    config.model_kwargs.update(dict(depth=2, base_width=4))
    config.data.data_dir = os.path.join(workdir, "tfds")
    config.data.builders.shapes.update(dict(num_train=8, num_test=8))
    config.lock()
    trainer = Trainer(config, workdir)
    save_run(workdir, config, trainer.splits)
    trainer.save(0, trainer.initial_state(), force=True)
    trainer.checkpoints.manager.wait_until_finished()
    return workdir


def measure(workdir: str, image_path: str | None = None, repeats: int = 10) -> dict:
    """{'artifact_ms', 'predict_ms', 'ratio', 'load_before', 'load_after', 'input_shape'}."""
    import skimage.data

    from jaxvision.export import export_run
    from jaxvision.predict import load_run, predict_image, read_image

    with tempfile.TemporaryDirectory() as out:
        export_run(workdir, out, platforms=("cpu",))
        with open(os.path.join(out, "model.jax_exported"), "rb") as f:
            artifact = jax.export.deserialize(f.read())
    _, height, width, _ = artifact.in_avals[0].shape
    image = read_image(image_path) if image_path else skimage.data.astronaut()
    image = np.asarray(Image.fromarray(image).resize((width, height)))
    trainer, state = load_run(workdir)
    calls = {"artifact": lambda: artifact.call(image[None]),
             "predict": lambda: predict_image(trainer, state, image)}
    load_before = os.getloadavg()[0]
    times = {k: [] for k in calls}
    for k in range(repeats + 1):
        for name, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            if k:  # the first round compiles
                times[name].append(time.perf_counter() - start)
    ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    return {"artifact_ms": ms["artifact"], "predict_ms": ms["predict"],
            "ratio": ms["artifact"] / ms["predict"], "load_before": load_before,
            "load_after": os.getloadavg()[0], "input_shape": [height, width]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="a training run (see jaxvision.export)")
    parser.add_argument("--image", help="an image file (default: skimage's astronaut)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a tiny U-Net run, 3 repeats")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (not args.quick and not args.workdir):
        parser.error(f"expected --workdir (or --quick) and --repeats >= 1, got "
                     f"{args.workdir!r}, {args.repeats}")
    with tempfile.TemporaryDirectory() as scratch:
        workdir = tiny_run(scratch) if args.quick else args.workdir
        row = measure(workdir, args.image, 3 if args.quick else args.repeats)
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, load {row['load_before']:.2f} -> "
          f"{row['load_after']:.2f}, input {row['input_shape']}\n")
    print("| artifact ms | predict ms | artifact / predict |\n| --- | --- | --- |")
    print(f"| {row['artifact_ms']:.2f} | {row['predict_ms']:.2f} | {row['ratio']:.2f} |")
    return row


if __name__ == "__main__":
    main()
