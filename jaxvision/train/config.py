"""The fields every training config has; `configs/<model>.py` start from `base_config()`."""

from __future__ import annotations

import ml_collections

DTYPES = ("float32", "bfloat16")
PARALLEL = ("jit", "pmap")
NONFINITE = ("stop", "skip")


def data_config() -> ml_collections.ConfigDict:
    """`config.data`: generic input settings, transforms, and per-dataset builder settings.

    Generic: image_size (the size shapes / pets images are stored at, the square every image is
    resized to when resize and crop are 'none', and the ImageNet crop size), data_dir (TFDS
    folder; `~` is expanded), skip_bad_images (folder / COCO / imagefolder: leave out and count
    unreadable images instead of failing), max_boxes (box fields are padded or truncated to
    it; the truncated count in `num_dropped_boxes`), workers (0: train batches are made in this
    process's threads; n > 0: in n grain worker processes, the same batches; a host feeding an
    accelerator at ImageNet rates needs them, benchmarks/README.md "input pipeline").

    Transforms (jaxvision.data.pipeline.ExampleTransform; the eval transform is derived from the
    train one with every random step off): random_flip; random_crop_padding (> 0: pad and random
    crop back, classification); crop ('none' | 'random_resized': ImageNet RandomResizedCrop to
    image_size, eval resize to image_size / 0.875 + centre crop); autoaugment ('none' |
    'imagenet': Cubuk et al.'s ImageNet policy after the crop, classification only);
    photometric_distort, zoom_out
    (canvas up to zoom_out_max times the image), min_iou_crop (SSD's augmentations); resize
    ('none': image_size x image_size unless crop is set, a no-op for shapes | 'fixed':
    fixed_size x fixed_size (SSD 300, YOLO 416) | 'min_max': torchvision
    GeneralizedRCNNTransform's rule with min_size / max_size, padded to a static square of side
    pad_size, or ceil(max_size / size_divisible) * size_divisible when pad_size is 0); pad_size
    > 0 also pads 'none' / 'fixed' images (bottom/right) to that square.

    U-Net (Ronneberger et al.; segmentation): elastic (sigma: > 0 deforms training images by
    N(0, sigma^2) px displacements on a grid x grid lattice, interpolated bicubically), tile
    (size > 0: the overlap-tile input of a size x size output window, margin px of mirrored
    context on every side (92 for the depth-4 valid U-Net), at a random place in training; the
    evaluation window is the smallest size + k * step covering the image, step = 2**depth;
    no fixed resize then), weight_map (w0, sigma of the border weight map; computed when the
    task asks for `weights`, task_kwargs.pixel_weights).

    Static shapes (jaxvision.data.buckets; one compiled train step per shape): aspect_buckets
    (increasing width / height boundaries, e.g. (1.0,): with 'min_max', each global batch is
    padded to its aspect-ratio bucket's shape instead of the square; () off); multi_scale (with
    'fixed', the square sizes Darknet's `random=1` draws from for each `multi_scale_every`
    batches, e.g. 320, 352, ..., 608; () off).

    builders: one section per dataset table entry (jaxvision.data.sources), read only when that
    dataset is chosen: `shapes` (num_train, num_test, min_shapes, max_shapes, min_extent,
    max_extent: shape diameter / image size, seed), `folder` (holdout: every n-th image is a
    test image without split folders), `coco` (masks: decode instance masks; None: when the
    task uses them), `voc` (train_split, test_split: list names in ImageSets/Main or
    ImageSets/Segmentation; segmentation: the segmentation lists and SegmentationClass masks
    instead of boxes), `sbd` (train_split, test_split: SBD's list names; voc_root: a VOC year
    folder whose segmentation list `test_split` is the test split instead).

    proposals: external region proposals for R-CNN and Fast R-CNN (jaxvision.data.proposals):
    method ('none' | 'selective_search': computed once per split in `processes` workers and
    cached under `<data_dir>/jaxvision_proposals/`), max_proposals (P, the padded count), and
    selective search's ks, strategy ('fast' | 'single'), min_size and seed. Examples then carry
    `proposals` [P, 4] and `proposals_valid` [P], moved with the image by the transforms.
    """
    from jaxvision.data.sources import BUILDER_DEFAULTS

    return ml_collections.ConfigDict(dict(
        image_size=64, data_dir="~/tensorflow_datasets", skip_bad_images=False, max_boxes=8,
        random_flip=True, random_crop_padding=0, crop="none", photometric_distort=False,
        zoom_out=False, zoom_out_max=4.0, min_iou_crop=False, resize="none", min_size=800,
        max_size=1333, size_divisible=32, fixed_size=300, eval_resize="", pad_size=0,
        elastic=ml_collections.ConfigDict(dict(sigma=0.0, grid=3)),
        tile=ml_collections.ConfigDict(dict(size=0, margin=0, step=16)),
        weight_map=ml_collections.ConfigDict(dict(w0=10.0, sigma=5.0)),
        autoaugment="none", workers=0, aspect_buckets=(), multi_scale=(), multi_scale_every=10,
        builders=ml_collections.ConfigDict(
            {k: ml_collections.ConfigDict(_placeholders(v)) for k, v in BUILDER_DEFAULTS.items()}),
        proposals=ml_collections.ConfigDict(dict(
            method="none", max_proposals=256, processes=2, ks=(50, 100, 200), strategy="fast",
            min_size=20, seed=0))))


def _placeholders(settings: dict) -> dict:
    """None defaults (e.g. coco `masks`: decided by the task) as typed placeholders, so that
    `--config.data.builders.coco.masks=false` still parses."""
    return {k: ml_collections.config_dict.placeholder(bool) if v is None else v
            for k, v in settings.items()}


def base_config() -> ml_collections.ConfigDict:
    """Defaults for every field the trainer reads (unlocked: a model config edits, then locks)."""
    c = ml_collections.ConfigDict()
    c.model = "unet"
    c.model_kwargs = ml_collections.ConfigDict()
    c.task = "segmentation"
    c.task_kwargs = ml_collections.ConfigDict()
    c.dataset = "shapes"
    c.data = data_config()
    c.train = ml_collections.ConfigDict(dict(
        steps=1000, batch_size=16, eval_batch_size=32, log_every=50, eval_every=500,
        checkpoint_every=250, keep_checkpoints=2, grad_accum_steps=1, nonfinite="stop"))
    c.optimizer = ml_collections.ConfigDict(dict(
        name="adamw", learning_rate=1e-3, momentum=0.9, nesterov=False, weight_decay=1e-4,
        warmup_steps=50, warmup="linear", warmup_start=0.0, schedule="cosine",
        boundaries=(), decay_factor=0.1, decay_every=1, rms_decay=0.9, eps=1e-3,
        grad_clip_norm=0.0))
    c.seed = 0
    c.init_from = ""  # orbax checkpoint of the weights CLI; used when the workdir has none
    # 'SRC:DST' entries placing the checkpoint's SRC prefix at the model's DST prefix (e.g.
    # ':backbone/body', an ImageNet ResNet in a detector); empty: the checkpoint is the model
    c.init_from_map = ()
    c.dtype = "float32"
    c.parallel = "jit"
    c.ema_decay = 0.0  # > 0: evaluate an exponential moving average of the params
    c.distributed = ml_collections.ConfigDict(dict(
        enabled=False, coordinator_address="", num_processes=0, process_id=0))
    return c


def validate_config(config) -> None:
    """Raises ValueError naming the field for values the trainer cannot run with (called before
    any dataset work)."""
    from jaxvision.models import list_models
    from jaxvision.tasks import TASKS
    from jaxvision.train.init_from import parse_map

    choices = {"model": (config.model, tuple(list_models())), "task": (config.task, TASKS),
               "dtype": (config.dtype, DTYPES), "parallel": (config.parallel, PARALLEL),
               "train.nonfinite": (config.train.nonfinite, NONFINITE)}
    for field, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"config.{field}: expected one of {allowed}, got {value!r}")
    positive = {f"train.{k}": config.train[k] for k in
                ("steps", "batch_size", "eval_batch_size", "log_every", "eval_every",
                 "checkpoint_every", "keep_checkpoints", "grad_accum_steps")}
    for field, value in positive.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"config.{field}: expected a positive integer, got {value!r}")
    validate_data(config.data)
    parse_map(config.get("init_from_map", ()))
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"config.ema_decay: expected 0 <= decay < 1, got {config.ema_decay}")
    validate_optimizer(config.optimizer, config.train.steps)


def validate_optimizer(optimizer, steps: int) -> None:
    """Raises ValueError naming the `config.optimizer` field that `jaxvision.train.optim` cannot
    build a `steps`-step schedule from."""
    from jaxvision.train.optim import OPTIMIZERS, SCHEDULES, WARMUPS

    for field, allowed in (("name", OPTIMIZERS), ("schedule", SCHEDULES),
                           ("warmup", WARMUPS)):
        value = getattr(optimizer, field)
        if value not in allowed:
            raise ValueError(f"config.optimizer.{field}: expected one of {allowed}, got "
                             f"{value!r}")
    if not optimizer.learning_rate > 0:
        raise ValueError(f"config.optimizer.learning_rate: expected > 0, "
                         f"got {optimizer.learning_rate}")
    warmup = optimizer.warmup_steps
    if not isinstance(warmup, int) or isinstance(warmup, bool) or not 0 <= warmup <= steps:
        raise ValueError(f"config.optimizer.warmup_steps: expected an integer in 0..train.steps="
                         f"{steps}, got {warmup!r}")
    if not 0.0 <= optimizer.warmup_start <= 1.0:
        raise ValueError(f"config.optimizer.warmup_start: expected a fraction of the learning "
                         f"rate in [0, 1], got {optimizer.warmup_start}")
    bounds = list(optimizer.boundaries)
    if optimizer.schedule == "steps" and (
            not all(isinstance(b, int) for b in bounds) or bounds != sorted(set(bounds))
            or (bounds and not warmup < bounds[0] <= bounds[-1] <= steps)):
        raise ValueError(f"config.optimizer.boundaries: expected increasing integer steps in "
                         f"warmup_steps+1..train.steps={steps}, got {tuple(bounds)}")
    if optimizer.schedule == "exponential" and not (
            isinstance(optimizer.decay_every, int) and optimizer.decay_every >= 1):
        raise ValueError(f"config.optimizer.decay_every: expected a positive integer, got "
                         f"{optimizer.decay_every!r}")
    if not 0.0 < optimizer.decay_factor <= 1.0:
        raise ValueError(f"config.optimizer.decay_factor: expected a value in (0, 1], got "
                         f"{optimizer.decay_factor}")


def validate_data(data) -> None:
    """Raises ValueError naming the `config.data` field for values the pipeline cannot run with
    (the builders' own settings are checked by the builder that reads them)."""
    from jaxvision.data.autoaugment import POLICIES
    from jaxvision.data.buckets import validate_shapes
    from jaxvision.data.pipeline import CROPS, RESIZE_MODES
    from jaxvision.data.sources import BUILDER_DEFAULTS, builder_kwargs

    for field, allowed in (("resize", RESIZE_MODES), ("crop", CROPS), ("autoaugment", POLICIES),
                           ("eval_resize", ("",) + RESIZE_MODES)):
        if data[field] not in allowed:
            raise ValueError(f"config.data.{field}: expected one of {allowed}, got "
                             f"{data[field]!r}")
    for field in ("max_boxes", "image_size", "min_size", "max_size", "size_divisible",
                  "fixed_size"):
        if not isinstance(data[field], int) or data[field] < 1:
            raise ValueError(f"config.data.{field}: expected a positive integer, got "
                             f"{data[field]!r}")
    for field in ("random_crop_padding", "pad_size", "workers"):
        if not isinstance(data[field], int) or data[field] < 0:
            raise ValueError(f"config.data.{field}: expected an integer >= 0, got "
                             f"{data[field]!r}")
    if data.min_size > data.max_size:
        raise ValueError(f"config.data.min_size: expected <= data.max_size={data.max_size}, got "
                         f"{data.min_size}")
    if data.resize == "min_max" and 0 < data.pad_size < data.max_size:
        raise ValueError(f"config.data.pad_size: expected 0 or >= data.max_size={data.max_size} "
                         f"(every resized image must fit), got {data.pad_size}")
    if data.zoom_out_max < 1:
        raise ValueError(f"config.data.zoom_out_max: expected >= 1, got {data.zoom_out_max}")
    for field, low in (("elastic.grid", 2), ("tile.size", 0), ("tile.margin", 0),
                       ("tile.step", 1)):
        section, key = field.split(".")
        if not isinstance(data[section][key], int) or data[section][key] < low:
            raise ValueError(f"config.data.{field}: expected an integer >= {low}, got "
                             f"{data[section][key]!r}")
    for field, value, ok, expected in (
            ("elastic.sigma", data.elastic.sigma, data.elastic.sigma >= 0, ">= 0"),
            ("weight_map.w0", data.weight_map.w0, data.weight_map.w0 >= 0, ">= 0"),
            ("weight_map.sigma", data.weight_map.sigma, data.weight_map.sigma > 0, "> 0")):
        if not ok:
            raise ValueError(f"config.data.{field}: expected {expected}, got {value}")
    validate_shapes(data)
    validate_proposals(data.proposals)
    unknown = set(data.builders) - set(BUILDER_DEFAULTS)
    if unknown:
        raise ValueError(f"config.data.builders: expected sections among "
                         f"{sorted(BUILDER_DEFAULTS)}, got {sorted(unknown)}")
    for entry in data.builders:
        builder_kwargs(entry, data)


def validate_proposals(proposals) -> None:
    """Raises ValueError naming the `config.data.proposals` field the pipeline cannot run with."""
    from jaxvision.data.proposals import METHODS
    from jaxvision.ops.proposals import STRATEGIES

    for field, allowed in (("method", METHODS), ("strategy", STRATEGIES)):
        if proposals[field] not in allowed:
            raise ValueError(f"config.data.proposals.{field}: expected one of {allowed}, got "
                             f"{proposals[field]!r}")
    for field, low in (("max_proposals", 1), ("processes", 0), ("min_size", 1)):
        if not isinstance(proposals[field], int) or proposals[field] < low:
            raise ValueError(f"config.data.proposals.{field}: expected an integer >= {low}, "
                             f"got {proposals[field]!r}")
    ks = tuple(proposals.ks)
    if not ks or not all(isinstance(k, (int, float)) and k > 0 for k in ks):
        raise ValueError(f"config.data.proposals.ks: expected positive Felzenszwalb scales, "
                         f"got {ks!r}")
