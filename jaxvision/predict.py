"""Predictions of a training run as pictures, for every task, from its latest checkpoint.

    python -m jaxvision.predict --config configs/unet.py --workdir workdir/unet \
        --image x.png --out y.png [--alpha 0.5]
    python -m jaxvision.predict --config configs/unet.py --workdir workdir/unet --eval

Classification writes the top class and its probability on the image (and prints the top 5);
segmentation blends the class colours over the image (background unpainted); detection draws
each detection's box with its class name and score (and blends its mask). `--eval` scores the
test split with the task's evaluator, as at the end of training. Everything reuses the
trainer: the same dataset metadata, model, checkpoint restore and eval transform.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from PIL import Image, ImageDraw

from jaxvision.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from jaxvision.train.loop import Trainer

# class k >= 1 -> RGB; background (0) is not painted. Cycles past 12 classes.
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                    [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
                    [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40]], np.uint8)


def load_run(config, workdir: str):
    """`(trainer, state)`: the run's trainer pieces and its latest saved state."""
    directory = os.path.join(os.path.abspath(os.path.expanduser(workdir)), "checkpoints")
    if not os.path.isdir(directory) or not any(s.isdigit() for s in os.listdir(directory)):
        raise ValueError(f"workdir: expected a training run with checkpoints in {directory}, "
                         "found none")
    trainer = Trainer(config, os.path.dirname(directory))
    return trainer, trainer.initial_state()


def predict_image(trainer, state, image: np.ndarray) -> tuple[np.ndarray, dict]:
    """uint8 image [H, W, 3] -> (the image as the model saw it, uint8 [h, w, 3]; the task's
    predictions for it, numpy, batch axis dropped). Resized to data.image_size first unless the
    transform resizes or crops (detection, ImageNet) itself; R-CNN and Fast R-CNN runs get the
    image's selective-search proposals with the run's `data.proposals` settings."""
    transform = trainer.eval_transform
    example = {"image": image, "boxes": np.zeros((0, 4), np.float32),
               "labels": np.zeros((0,), np.int64), "iscrowd": np.zeros((0,), bool),
               "image_id": 0, "label": 0, "masks": np.zeros((0, *image.shape[:2]), np.uint8),
               "segmentation": np.zeros(image.shape[:2], np.uint8)}
    if trainer.config.data.proposals.method == "selective_search":
        from jaxvision.data.proposals import image_proposals

        boxes, valid = image_proposals(image, trainer.config.data.proposals)
        example.update(proposals=boxes, proposals_valid=valid)
    batch = {k: v[None] for k, v in transform(example, 0).items()}
    predict = jax.jit(lambda v, b: trainer.task.predict(trainer.model, v, b))
    out = jax.tree.map(lambda x: np.asarray(x)[0], predict(state.eval_variables, batch))
    seen = batch["image"][0] * IMAGENET_STD + IMAGENET_MEAN
    return np.clip(np.round(seen), 0, 255).astype(np.uint8), out


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


def draw_detections(image: np.ndarray, detections: dict, class_names, alpha: float = 0.5,
                    min_score: float = 0.3) -> np.ndarray:
    """uint8 [H, W, 3]: boxes (xyxy) with 'name score' labels for valid detections scoring at
    least `min_score`, masks [D, H, W] (if present) blended in their class colour."""
    keep = np.asarray(detections["valid"], bool) & (np.asarray(detections["scores"]) >= min_score)
    labels = np.asarray(detections["labels"])[keep]
    if "masks" in detections:
        for mask, label in zip(np.asarray(detections["masks"])[keep], labels, strict=True):
            image = overlay(image, np.where(mask, label, 0).astype(np.int32), alpha)
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    for box, label, score in zip(np.asarray(detections["boxes"])[keep], labels,
                                 np.asarray(detections["scores"])[keep], strict=True):
        colour = tuple(int(c) for c in PALETTE[label % len(PALETTE)])
        draw.rectangle([float(v) for v in box], outline=colour, width=2)
        draw.text((float(box[0]) + 2, float(box[1]) + 1), f"{class_names[label]} {score:.2f}",
                  fill=colour)
    return np.asarray(picture)


def render(trainer, image: np.ndarray, predictions: dict, alpha: float = 0.5) -> tuple:
    """(picture uint8 [H, W, 3], a one-line summary) for the task's predictions of `image`."""
    names = trainer.task.class_names
    if "logits" in predictions:
        probs = np.asarray(jax.nn.softmax(predictions["logits"]))
        top = np.argsort(-probs, kind="stable")[:5]
        picture = Image.fromarray(image)
        ImageDraw.Draw(picture).text((2, 1), f"{names[top[0]]} {probs[top[0]]:.2f}",
                                     fill=(255, 255, 255))
        summary = ", ".join(f"{names[k]} {probs[k]:.3f}" for k in top)
        return np.asarray(picture), summary
    if "classes" in predictions:
        mask = predictions["classes"]
        counts = np.bincount(mask.ravel(), minlength=len(names))
        summary = "pixels: " + ", ".join(f"{n} {c}" for n, c in zip(names, counts, strict=True))
        return overlay(image, mask, alpha), summary
    picture = draw_detections(image, predictions, names, alpha)
    keep = np.asarray(predictions["valid"], bool)
    summary = ", ".join(f"{names[label]} {score:.2f}" for label, score in
                        zip(predictions["labels"][keep], predictions["scores"][keep], strict=True))
    return picture, f"{int(keep.sum())} detections: {summary}"


def main(argv=None):
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="configs/<model>.py")
    parser.add_argument("--workdir", required=True, help="the training run's workdir")
    parser.add_argument("--image", help="input image (any format PIL reads)")
    parser.add_argument("--out", help="output PNG")
    parser.add_argument("--alpha", type=float, default=0.5, help="mask opacity")
    parser.add_argument("--eval", action="store_true",
                        help="print the test split's metrics as JSON instead")
    args = parser.parse_args(argv)
    if not args.eval and (not args.image or not args.out):
        parser.error("--image and --out are required (or --eval)")
    config = load_config(args.config)
    trainer, state = load_run(config, args.workdir)
    if args.eval:
        step = int(trainer.parallel.to_host(state.step))
        print(json.dumps({"step": step, **trainer.evaluate(state, step)}))
        return
    image = np.asarray(Image.open(args.image).convert("RGB"), np.uint8)
    seen, predictions = predict_image(trainer, state, image)
    picture, summary = render(trainer, seen, predictions, args.alpha)
    Image.fromarray(picture).save(args.out)
    print(f"wrote {args.out}: {summary}")


def load_config(path: str):
    """`get_config()` of the config file at `path`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("jaxvision_predict_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


if __name__ == "__main__":
    main()

