"""Predictions of a training run, drawn on the user's images at their original size, for every
task, from the run's latest checkpoint and its saved config (`--workdir` alone).

    python -m jaxvision.predict --workdir workdir/faster_rcnn --image photo.jpg --out out.png
    python -m jaxvision.predict --workdir W --image photos/ --out predictions/ \
        [--score_threshold 0.5] [--alpha 0.5]
    python -m jaxvision.predict --workdir W --eval

Classification writes the top class and its probability on the image (and prints the top 5);
segmentation blends the class colours over the image (background unpainted); detection draws
each detection scoring at least `--score_threshold` with its class name and score (and its
mask), labels kept apart so they stay readable. A folder of images gives one picture each and
`coco_instances_results.json` with every valid detection in each image's original pixels
(category ids the dataset's; `image_id` the file's position, `file_name` beside it). Images are
shown as a viewer shows them: their EXIF orientation is applied first.

`--config configs/x.py --config.a=b` (as given to train.py) is accepted and must agree with the
run's saved config. Predicting images opens no dataset (the class names are in the workdir);
`--eval` scores the test split as at the end of training, into `eval/<step>-predict/` (its files
and `metrics.json`; then `-predict-2`, ...: an earlier evaluation is never overwritten).
"""

from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from jaxvision.tasks.original_frame import boxes_to_original, paste_masks
from jaxvision.train.loop import Trainer, blank_example
from jaxvision.train.run_config import load_dataset_info, resolve_run_config

# class k >= 1 -> RGB; background (0) is not painted. Cycles past 12 classes.
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                    [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
                    [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40]], np.uint8)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_run(workdir: str, config=None, *, with_data: bool = False):
    """`(trainer, state)`: the run in `workdir` (its saved config, or `config` checked against
    it) with its latest saved state. `with_data=False` opens no dataset."""
    workdir = os.path.abspath(os.path.expanduser(workdir))
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory) or not any(s.isdigit() for s in os.listdir(directory)):
        raise ValueError(f"workdir: expected a training run with checkpoints in {directory}, "
                         "found none")
    config = resolve_run_config(workdir, config)
    if not with_data and load_dataset_info(workdir) is None:
        with_data = True  # a run from before dataset.json: the class names come from the data
    trainer = Trainer(config, workdir, with_data=with_data)
    return trainer, trainer.initial_state()


def read_image(path: str) -> np.ndarray:
    """uint8 [H, W, 3] of an image file as a viewer shows it (EXIF orientation applied)."""
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"), np.uint8)
    except Exception as error:
        raise ValueError(f"image {path}: expected an image file PIL can read, got "
                         f"{type(error).__name__}: {error}") from error


def predict_image(trainer, state, image: np.ndarray) -> dict:
    """uint8 image [H, W, 3] -> the task's predictions in the image's own pixels (numpy):
    classification `logits [K]`; segmentation `classes [H, W]` (-1 where a valid-padding model
    predicts nothing); detection `boxes [D, 4]` xyxy, `scores`, `labels`, `valid [D]` (and
    `masks` bool [D, H, W]). Images go through the run's eval transform (which resizes them);
    R-CNN and Fast R-CNN runs get the image's selective-search proposals."""
    height, width = image.shape[:2]
    example = blank_example(trainer.config, image)
    if trainer.config.data.proposals.method == "selective_search":
        from jaxvision.data.proposals import image_proposals

        boxes, valid = image_proposals(image, trainer.config.data.proposals)
        example.update(proposals=boxes, proposals_valid=valid)
    batch = {k: v[None] for k, v in trainer.eval_transform(example, 0).items()}
    if not hasattr(trainer, "predict_one"):  # one jit per run: images of one size compile once
        trainer.predict_one = jax.jit(lambda v, b: trainer.task.predict(trainer.model, v, b))
    out = jax.tree.map(lambda x: np.asarray(x)[0], trainer.predict_one(state.eval_variables,
                                                                       batch))
    if "classes" in out:
        from jaxvision.tasks.segmentation import to_original

        origin = tuple(batch["image_origin"][0]) if "image_origin" in batch else (0, 0)
        classes, window = to_original(out["classes"], batch["image"].shape[1:3],
                                      batch["image_size"][0], (height, width), origin)
        out["classes"] = np.full((height, width), -1, np.int32)
        out["classes"][window] = classes
    if "boxes" in out:
        origin = batch["image_origin"][0] if "image_origin" in batch else (0, 0)
        out["boxes"] = boxes_to_original(out["boxes"], batch["image_size"][0], (height, width),
                                         origin)
        if "masks" in out:
            out["masks"] = paste_masks(out["masks"], out["boxes"], height, width
                                       ) > trainer.task.mask_threshold
    return out


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 [H, W, 3]: `image` with class colours blended in at `alpha` where mask > 0.

    A mask smaller than the image is centred on it.
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


def _font(image_height: int, image_width: int):
    """PIL's default font at about 1/40 of the shorter side (at least 11 px)."""
    return ImageFont.load_default(size=max(11, round(min(image_height, image_width) / 40)))


def _place(box, size, taken: list, height: int) -> tuple[float, float]:
    """Top-left corner of a (w, h) label for `box`: above it when there is room, else inside its
    top; moved down past labels already `taken` ([x0, y0, x1, y1] each) that it would cover."""
    w, h = size
    x = max(0.0, float(box[0]))
    y = float(box[1]) - h if float(box[1]) - h >= 0 else max(0.0, float(box[1]))
    for _ in range(len(taken) + 1):
        hit = [t for t in taken if x < t[2] and t[0] < x + w and y < t[3] and t[1] < y + h]
        if not hit:
            break
        y = max(t[3] for t in hit)
    return x, min(y, max(0.0, height - h))


def draw_detections(image: np.ndarray, detections: dict, class_names, alpha: float = 0.5,
                    score_threshold: float = 0.5) -> np.ndarray:
    """uint8 [H, W, 3]: boxes (xyxy) with 'name score' labels on filled tags (most confident
    first, kept from covering each other) for valid detections scoring at least
    `score_threshold`; masks [D, H, W] (if present) blended in their class colour."""
    scores = np.asarray(detections["scores"])
    keep = np.asarray(detections["valid"], bool) & (scores >= score_threshold)
    order = np.flatnonzero(keep)[np.argsort(-scores[keep], kind="stable")]
    labels = np.asarray(detections["labels"])
    if "masks" in detections:
        for k in order[::-1]:
            mask = np.asarray(detections["masks"][k])
            image = overlay(image, np.where(mask, labels[k], 0).astype(np.int32), alpha)
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    font = _font(*image.shape[:2])
    line = max(2, round(min(image.shape[:2]) / 250))
    for k in order:
        colour = tuple(int(c) for c in PALETTE[labels[k] % len(PALETTE)])
        draw.rectangle([float(v) for v in detections["boxes"][k]], outline=colour, width=line)
    taken = []
    for k in order:
        colour = tuple(int(c) for c in PALETTE[labels[k] % len(PALETTE)])
        text = f"{class_names[labels[k]]} {scores[k]:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        size = (right - left + 4, bottom - top + 4)
        x, y = _place(detections["boxes"][k], size, taken, image.shape[0])
        taken.append((x, y, x + size[0], y + size[1]))
        draw.rectangle(taken[-1], fill=colour)
        ink = (0, 0, 0) if sum(c * w for c, w in zip(colour, (0.3, 0.59, 0.11),
                                                     strict=True)) > 150 else (255, 255, 255)
        draw.text((x + 2 - left, y + 2 - top), text, fill=ink, font=font)
    return np.asarray(picture)


def render(trainer, image: np.ndarray, predictions: dict, alpha: float = 0.5,
           score_threshold: float = 0.5) -> tuple:
    """(picture uint8 [H, W, 3], a one-line summary) for the task's predictions of `image`."""
    names = trainer.task.class_names
    if "logits" in predictions:
        probs = np.asarray(jax.nn.softmax(predictions["logits"]))
        top = np.argsort(-probs, kind="stable")[:5]
        picture = Image.fromarray(image)
        ImageDraw.Draw(picture).text((4, 2), f"{names[top[0]]} {probs[top[0]]:.2f}",
                                     fill=(255, 255, 255), font=_font(*image.shape[:2]),
                                     stroke_width=2, stroke_fill=(0, 0, 0))
        summary = ", ".join(f"{names[k]} {probs[k]:.3f}" for k in top)
        return np.asarray(picture), summary
    if "classes" in predictions:
        mask = predictions["classes"]
        counts = np.bincount(mask[mask >= 0].ravel(), minlength=len(names))
        summary = "pixels: " + ", ".join(f"{n} {c}" for n, c in zip(names, counts, strict=True))
        return overlay(image, mask, alpha), summary
    picture = draw_detections(image, predictions, names, alpha, score_threshold)
    keep = np.asarray(predictions["valid"], bool) & (
        np.asarray(predictions["scores"]) >= score_threshold)
    summary = ", ".join(f"{names[label]} {score:.2f}" for label, score in
                        zip(predictions["labels"][keep], predictions["scores"][keep], strict=True))
    return picture, f"{int(keep.sum())} detections at score >= {score_threshold}: {summary}"


def detection_results(predictions: dict, image_id: int, category_of, file_name: str
                      ) -> list[dict]:
    """COCO results entries (original pixels, dataset category ids) of one image's valid
    detections, with the image's `file_name`."""
    from jaxvision.metrics import coco_results_json

    keep = np.asarray(predictions["valid"], bool)
    pred = {"boxes": predictions["boxes"][keep], "scores": predictions["scores"][keep],
            "labels": np.asarray(category_of)[predictions["labels"][keep]]}
    iou_type = "bbox"
    if "masks" in predictions:
        pred["masks"], iou_type = predictions["masks"][keep], "segm"
    return [dict(r, file_name=file_name)
            for r in coco_results_json([pred], iou_type, [image_id])]


def _inputs(path: str, out: str) -> list[tuple[str, str]]:
    """(image file, picture to write) pairs for a file or a folder of images."""
    if not os.path.isdir(path):
        return [(path, out)]
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise ValueError(f"--image {path}: expected image files {IMAGE_EXTENSIONS}, found none")
    os.makedirs(out, exist_ok=True)
    return [(os.path.join(path, n), os.path.join(out, os.path.splitext(n)[0] + ".png"))
            for n in names]


def _eval_name(workdir: str, step: int) -> str:
    """`<step>-predict`, or `<step>-predict-N` with the first N >= 2 not yet taken."""
    name, n = f"{step}-predict", 2
    while os.path.exists(os.path.join(workdir, "eval", name)):
        name, n = f"{step}-predict-{n}", n + 1
    return name


def run(args, config) -> None:
    """Carries out the parsed command line (see the module docstring)."""
    if not 0.0 <= args.score_threshold <= 1.0:
        raise ValueError(f"--score_threshold: expected a value in [0, 1], got "
                         f"{args.score_threshold}")
    trainer, state = load_run(args.workdir, config, with_data=args.eval)
    if args.eval:
        step = int(trainer.parallel.to_host(state.step))
        name = _eval_name(trainer.workdir, step)
        metrics = {"step": step, **trainer.evaluate(state, step, name=name)}
        eval_dir = os.path.join(trainer.workdir, "eval", name)
        os.makedirs(eval_dir, exist_ok=True)
        with open(os.path.join(eval_dir, "metrics.json"), "w") as f:
            json.dump(metrics, f)
        print(json.dumps({**metrics, "eval_dir": eval_dir}))
        return
    pairs = _inputs(args.image, args.out)
    info = load_dataset_info(trainer.workdir) or {}
    label_map = info.get("label_map")
    category_of = [0, *label_map] if label_map else range(len(trainer.task.class_names))
    results = []
    from tqdm.auto import tqdm

    for k, (source, target) in enumerate(tqdm(pairs, desc="predict", disable=len(pairs) < 2)):
        image = read_image(source)
        predictions = predict_image(trainer, state, image)
        picture, summary = render(trainer, image, predictions, args.alpha, args.score_threshold)
        Image.fromarray(picture).save(target)
        if "boxes" in predictions:
            results += detection_results(predictions, k, category_of, os.path.basename(source))
        print(f"wrote {target}: {summary}")
    if os.path.isdir(args.image) and results:
        path = os.path.join(args.out, "coco_instances_results.json")
        with open(path, "w") as f:
            json.dump(results, f)
        print(f"wrote {path}: {len(results)} detections")


def _define_flags(argv):
    """absl flags of the command line; the config flag holds the run's saved config unless a
    config file is given (then `--config.*` overrides apply to that file, as in train.py)."""
    from absl import flags
    from ml_collections import config_flags

    from jaxvision.train.run_config import load_saved_config

    fv = flags.FlagValues()
    flags.DEFINE_string("workdir", None, "the training run's workdir", flag_values=fv)
    flags.DEFINE_string("image", None, "an image file, or a folder of images", flag_values=fv)
    flags.DEFINE_string("out", None, "output PNG (a folder when --image is one)",
                        flag_values=fv)
    flags.DEFINE_float("alpha", 0.5, "mask opacity", flag_values=fv)
    flags.DEFINE_float("score_threshold", 0.5, "detections drawn from this score",
                       flag_values=fv)
    flags.DEFINE_bool("eval", False, "score the test split and print its metrics as JSON",
                      flag_values=fv)
    given_file = any(a == "--config" or a.startswith("--config=") for a in argv[1:])
    workdir = _flag_value(argv, "--workdir")
    if given_file:
        config_flags.DEFINE_config_file("config", None, "configs/<model>.py (optional)",
                                        flag_values=fv, lock_config=True, sys_argv=argv)
    else:
        saved = load_saved_config(os.path.expanduser(workdir)) if workdir else None
        if saved is not None:
            config_flags.DEFINE_config_dict("config", saved, "the run's saved config",
                                            flag_values=fv, lock_config=True, sys_argv=argv)
    return fv, given_file


def _flag_value(argv, name: str) -> str | None:
    for k, arg in enumerate(argv[1:], 1):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and k + 1 < len(argv):
            return argv[k + 1]
    return None


def main(argv=None):
    argv = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    fv, given_file = _define_flags(argv)
    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in argv[1:]):
        print(f"{__doc__.strip()}\n\n{fv.get_help()}")
        sys.exit(0)
    try:
        fv(argv)
    except Exception as error:  # absl flag errors, unknown or mistyped config overrides
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        sys.exit(f"predict: bad flag or config override: {message}")
    if not fv.workdir:
        sys.exit("predict: --workdir is required (the training run to predict with)")
    if not fv.eval and (not fv.image or not fv.out):
        sys.exit("predict: --image and --out are required (or --eval)")
    config = fv.config if given_file else None
    if config is None and "config" in fv and any(a.startswith("--config.") for a in argv):
        config = fv.config  # the saved config with overrides: checked against the saved one
    try:
        run(fv, config)
    except ValueError as error:
        sys.exit(f"predict: {error}")


def cli():
    """Entry point of `jaxvision-predict` and `python -m jaxvision.predict`: library logs below
    WARNING off (orbax and TFDS log every file at INFO), TFDS bars only on a terminal."""
    import tensorflow_datasets as tfds
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    tfds.display_progress_bar(sys.stderr.isatty())
    main()


if __name__ == "__main__":
    cli()
