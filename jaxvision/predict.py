"""Segmentation predictions as pictures, from a training run's latest checkpoint.

    python -m jaxvision.predict --config configs/fcn8s.py --workdir /tmp/fcn8s \
        --image x.png --out y.png [--alpha 0.5] [--size 64]

Loads `workdir/checkpoints/<latest>/state` (params and batch_stats; the EMA params when the run
kept them) with orbax, resizes the image to `data.image_size` unless `--size 0`, normalises it as
the pipeline does, and writes the colour-coded class mask blended over the image (class 0,
background, is left unpainted). `evaluate_boundary` scores a run's test split with the boundary
F-score of `jaxvision.metrics.boundary`.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxvision.data.transforms import normalise
from jaxvision.models import get_model

# class k >= 1 -> RGB; background (0) is not painted. Cycles past 12 classes.
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                    [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
                    [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40]], np.uint8)


def load_variables(workdir: str, step: int | None = None) -> tuple[dict, int]:
    """`({'params', ['batch_stats']}, step)` from `workdir/checkpoints` (latest unless `step`)."""
    import orbax.checkpoint as ocp

    directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    if not os.path.isdir(directory):
        raise ValueError(f"workdir: expected a training run with {directory}, found none")
    manager = ocp.CheckpointManager(directory, item_names=("state", "data"))
    step = manager.latest_step() if step is None else step
    if step is None:
        raise ValueError(f"workdir: expected a checkpoint in {directory}, found none")
    state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    state = state["state"]
    manager.close()
    params = state.get("ema_params") or state["params"]
    variables = {"params": params}
    if state.get("batch_stats"):
        variables["batch_stats"] = state["batch_stats"]
    return variables, int(step)


def build_model(config, num_classes: int):
    """The config's model for inference (no device axis)."""
    return get_model(config.model, num_classes=num_classes, dtype=jnp.dtype(config.dtype),
                     axis_name=None, **config.model_kwargs)


def predict_mask(model, variables, image: np.ndarray) -> np.ndarray:
    """uint8 image [H, W, 3] -> int32 class map [H', W'] (H' = H but for valid-padding U-Nets)."""
    x = normalise(image)[None]
    logits, _ = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    return np.asarray(jnp.argmax(logits[0], -1), np.int32)


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 [H, W, 3]: `image` with class colours blended in at `alpha` where mask > 0.

    A mask smaller than the image (valid padding) is centred on it.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a value in [0, 1], got {alpha}")
    h, w = mask.shape
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    if top < 0 or left < 0:
        raise ValueError(f"mask: expected at most the image size {image.shape[:2]}, got {(h, w)}")
    out = image.astype(np.float32).copy()
    region = out[top:top + h, left:left + w]
    colours = PALETTE[mask % len(PALETTE)].astype(np.float32)
    paint = (mask > 0)[..., None]
    region[...] = np.where(paint, (1 - alpha) * region + alpha * colours, region)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def predict_file(config, workdir: str, image_path: str, out_path: str, *, alpha: float = 0.5,
                 size: int | None = None, num_classes: int | None = None) -> np.ndarray:
    """Reads `image_path`, writes the overlay PNG to `out_path`, returns the class map."""
    variables, _ = load_variables(workdir)
    if num_classes is None:  # the score layer's width
        num_classes = _num_classes(variables["params"])
    model = build_model(config, num_classes)
    image = Image.open(image_path).convert("RGB")
    size = config.data.image_size if size is None else size
    if size:
        image = image.resize((size, size), Image.BILINEAR)
    image = np.asarray(image, np.uint8)
    mask = predict_mask(model, variables, image)
    Image.fromarray(overlay(image, mask, alpha)).save(out_path)
    return mask


def _num_classes(params) -> int:
    """Classes of a segmentation model from its last layer (the output width of the last-named
    kernel: score / upscore / head)."""
    for name in ("upscore", "score", "head"):
        if name in params:
            leaf = jax.tree.leaves(params[name])[0]
            return int(leaf.shape[-1])
    raise ValueError("params: expected a segmentation model with an 'upscore', 'score' or "
                     f"'head' layer, got {sorted(params)}")


def evaluate_boundary(config, workdir: str, tolerance: int = 2) -> dict[str, float]:
    """Boundary precision/recall/F (and mIoU) of the run in `workdir` on its test split."""
    from jaxvision.data import ExampleTransform, eval_batches
    from jaxvision.metrics.boundary import boundary_counts, boundary_f_score
    from jaxvision.metrics.segmentation import confusion_matrix, segmentation_scores
    from jaxvision.tasks import get_task
    from jaxvision.train.loop import load_data

    splits = load_data(config)
    task = get_task(config.task, splits.class_names, **config.task_kwargs)
    variables, step = load_variables(workdir)
    model = build_model(config, task.num_classes)
    transform = ExampleTransform(("image", "segmentation"), config.data.max_boxes,
                                 random_flip=False, seed=0)
    apply = jax.jit(lambda v, x: jnp.argmax(model.apply(v, x, train=False)[0], -1))
    counts, confusion = np.zeros(4, np.int64), 0
    for batch in eval_batches(splits.test, transform, global_batch=config.train.eval_batch_size):
        pred = np.asarray(apply(variables, batch["image"]))
        keep = np.asarray(batch.get("example_valid", np.ones(len(pred), bool)), bool)
        labels = np.asarray(batch["segmentation"])[keep]
        counts += boundary_counts(labels, pred[keep], tolerance)
        confusion = confusion + np.asarray(confusion_matrix(labels, pred[keep],
                                                            task.num_classes))
    return {"step": step, **segmentation_scores(confusion, task.class_names),
            **boundary_f_score(counts)}


def main(argv=None):
    import argparse
    import importlib.util
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="configs/<model>.py")
    parser.add_argument("--workdir", required=True, help="the training run's workdir")
    parser.add_argument("--image", help="input image (any format PIL reads)")
    parser.add_argument("--out", help="output PNG")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=None,
                        help="resize to size x size first (default data.image_size; 0: keep)")
    parser.add_argument("--eval_boundary", action="store_true",
                        help="print test mIoU and boundary F-score as JSON instead")
    parser.add_argument("--tolerance", type=int, default=2,
                        help="boundary match distance in pixels for --eval_boundary")
    args = parser.parse_args(argv)
    spec = importlib.util.spec_from_file_location("jaxvision_predict_config", args.config)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    if args.eval_boundary:
        print(json.dumps(evaluate_boundary(config, args.workdir, args.tolerance)))
        return
    if not args.image or not args.out:
        parser.error("--image and --out are required (or --eval_boundary)")
    mask = predict_file(config, args.workdir, args.image, args.out, alpha=args.alpha,
                        size=args.size)
    counts = np.bincount(mask.ravel())
    print(f"wrote {args.out}: class pixel counts {dict(enumerate(counts.tolist()))}")


if __name__ == "__main__":
    main()
