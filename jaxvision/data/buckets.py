"""A few static shapes instead of one padded square: aspect-ratio buckets (R-CNN's min/max resize)
and Darknet's multi-scale training sizes (YOLO), each global batch one shape, so the train step
compiles once per shape.

Aspect-ratio buckets (`data.aspect_buckets`, increasing width / height boundaries b_0 < ... <
b_{n-1}: n + 1 buckets (0, b_0), [b_0, b_1), ..., [b_{n-1}, inf)): an image goes to the bucket of
its original aspect ratio; the bucket's padded shape is the largest min/max-resized content of any
aspect ratio in it, rounded up to `size_divisible` (`bucket_shapes`). Batches follow torchvision's
GroupedBatchSampler: walk a seeded permutation of the train split (a new one each epoch), append
each image to its bucket's pending list, and emit that list as the next global batch when it
holds `global_batch` images (what is pending at an epoch's end carries on into the next one). The
batches depend only on the seed and the image sizes, never on the process count: each process
takes its slice of every global batch (`jaxvision.data.pipeline` does the same unbucketed), and
the grain iterator's checkpoint (its position) resumes the same sequence. Evaluation groups the
test split by bucket, in source order within each bucket, the last batch of a bucket padded with
`example_valid=False` copies (the evaluator matches by `example_index`, so the order is free).

Multi-scale (`data.multi_scale`, the square sizes to draw from, e.g. 320, 352, ..., 608):
pjreddie/darknet's `train_detector` (src/detector.c) resizes the network every 10 batches to
`(rand() % 10 + 10) * 32` and to 608 once fewer than 200 batches are left. Here global batch k
trains at the size drawn for its period k // `multi_scale_every` from
`default_rng([seed, period, MULTI_SCALE_STREAM])`, the largest size when the period starts within
`MULTI_SCALE_FINAL` batches of `train.steps`; the data come in a seeded permutation each epoch
(as unbucketed, not the same permutation).

Image sizes come from the stored examples without decoding an image (`image_sizes`).
"""

from __future__ import annotations

import dataclasses
import io
import math
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence

import grain
import jax
import numpy as np
from PIL import Image

from jaxvision.data import pipeline, transforms
from jaxvision.data.images import DecodedImages

MULTI_SCALE_STREAM = 101  # rng stream of the sizes (the example transforms use 1..5)
MULTI_SCALE_FINAL = 200  # Darknet: the last 200 batches train at the largest size


# ---------------------------------------------------------------------------------------------
# shapes


def _content(ratio: float, min_size: int, max_size: int) -> tuple[float, float]:
    """(height, width) the min/max rule gives an image of width / height `ratio` (unfloored)."""
    scale = min(min_size / min(1.0, ratio), max_size / max(1.0, ratio))
    return scale, scale * ratio


def bucket_shapes(boundaries: Sequence[float], min_size: int, max_size: int,
                  size_divisible: int) -> tuple[tuple[int, int], ...]:
    """(H, W) of each of the len(boundaries) + 1 buckets: the height of the bucket's lowest
    aspect ratio and the width of its highest (the min/max content shrinks in height and grows in
    width with width / height), each rounded up to a multiple of `size_divisible`."""
    up = lambda v: -(-math.ceil(v - 1e-9) // size_divisible) * size_divisible  # noqa: E731
    edges = [0.0, *boundaries, math.inf]
    shapes = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        height = max_size if lo == 0 else _content(lo, min_size, max_size)[0]
        width = max_size if hi == math.inf else _content(hi, min_size, max_size)[1]
        shapes.append((up(height), up(width)))
    return tuple(shapes)


def check_boundaries(boundaries: Sequence[float]) -> None:
    """ValueError unless `boundaries` are increasing positive width / height ratios."""
    values = list(boundaries)
    if any(not v > 0 for v in values) or values != sorted(set(values)):
        raise ValueError(f"config.data.aspect_buckets: expected increasing width / height "
                         f"ratios > 0 (e.g. (1.0,): portrait, landscape), got {tuple(values)}")


def bucket_of(sizes: np.ndarray, boundaries: Sequence[float]) -> np.ndarray:
    """int [N]: the bucket of each image of `sizes` [N, 2] (height, width)."""
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    return np.searchsorted(np.asarray(boundaries, np.float64), sizes[:, 1] / sizes[:, 0],
                           side="right")


def padded_fraction(sizes: np.ndarray, boundaries: Sequence[float] | None, min_size: int,
                    max_size: int, size_divisible: int) -> float:
    """Fraction of the padded pixels that are padding, for images of `sizes` [N, 2] resized by
    the min/max rule; `boundaries` None: every image in the max_size square."""
    content = np.array([transforms.min_max_size(h, w, min_size, max_size) for h, w in sizes])
    if boundaries is None:
        side = transforms.static_pad_size(max_size, size_divisible)
        padded = np.full(len(sizes), side * side)
    else:
        shapes = np.array(bucket_shapes(boundaries, min_size, max_size, size_divisible))
        padded = shapes[bucket_of(sizes, boundaries)].prod(1)
    return float(1.0 - content.prod(1).sum() / padded.sum())


# ---------------------------------------------------------------------------------------------
# image sizes without decoding


def image_sizes(source, stored_size: int = 0) -> np.ndarray:
    """int [N, 2] (height, width) of every image of `source`, without decoding one: all
    `stored_size` when the split stores one size; else each stored example's `orig_size` (COCO:
    the annotation file's width / height, VOC: the XML's <size>, both checked against the file
    when prepared) or the image file's header (folders). ValueError for a source that cannot say
    (e.g. TFDS catalogue copies store decoded images)."""
    if stored_size:
        return np.full((len(source), 2), stored_size, np.int64)
    base = source
    while not isinstance(base, DecodedImages):
        if not hasattr(base, "base"):
            raise ValueError(f"data.aspect_buckets: expected a source that stores image sizes or "
                             f"file bytes (coco:, voc:, folder:, imagefolder:), got {source!r}; "
                             f"set data.aspect_buckets=() to pad every image to one square")
        base = base.base
    records = base.base
    sizes = np.zeros((len(records), 2), np.int64)
    chunk = 256
    for start in range(0, len(records), chunk):
        indices = list(range(start, min(start + chunk, len(records))))
        rows = (records.__getitems__(indices) if hasattr(records, "__getitems__")
                else [records[i] for i in indices])
        for i, row in zip(indices, rows, strict=True):
            if "orig_size" in row:
                sizes[i] = np.asarray(row["orig_size"]).reshape(2)
            else:
                with Image.open(io.BytesIO(bytes(row["image"]))) as image:
                    sizes[i] = image.size[::-1]
    return sizes


# ---------------------------------------------------------------------------------------------
# batch plans: global batch k -> (shape key, source indices)


class _EpochOrder:
    """Position p of the endless shuffled stream: permutation p // N (seeded) at p % N."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self._cache = size, seed, {}

    def epoch(self, e: int) -> np.ndarray:
        if e not in self._cache:
            if len(self._cache) > 4:
                self._cache.pop(min(self._cache))
            self._cache[e] = np.random.default_rng([self.seed, e]).permutation(self.size)
        return self._cache[e]


class GroupedBatches:
    """`plan(k) -> (bucket, indices [global_batch])`: the k-th global batch of torchvision's
    grouped sampling over `buckets` [N] (see the module docstring), computed epoch by epoch as
    far as asked for (thread-safe)."""

    def __init__(self, buckets: np.ndarray, global_batch: int, seed: int):
        self.buckets = np.asarray(buckets)
        self.global_batch = global_batch
        self._order = _EpochOrder(len(self.buckets), seed)
        self._batches: list[tuple[int, np.ndarray]] = []
        self._pending = {int(b): [] for b in np.unique(self.buckets)}
        self._epochs = 0
        self._lock = threading.Lock()

    def __call__(self, k: int) -> tuple[int, np.ndarray]:
        with self._lock:
            while len(self._batches) <= k:
                for index in self._order.epoch(self._epochs):
                    bucket = int(self.buckets[index])
                    pending = self._pending[bucket]
                    pending.append(int(index))
                    if len(pending) == self.global_batch:
                        self._batches.append((bucket, np.array(pending)))
                        self._pending[bucket] = []
                self._epochs += 1
            return self._batches[k]


class MultiScale:
    """`plan(k) -> (size, indices [global_batch])`: a seeded permutation of the `num_examples`
    train examples each epoch, and the size of global batch k by Darknet's rule (module
    docstring) over `sizes`, changed every `every` batches, the largest for the batches of the
    last `MULTI_SCALE_FINAL` of `steps`."""

    def __init__(self, num_examples: int, global_batch: int, seed: int, sizes: Sequence[int],
                 every: int, steps: int):
        self.global_batch, self.seed, self.sizes = global_batch, seed, tuple(sizes)
        self.every, self.steps, self.num_examples = every, steps, num_examples
        self._order = _EpochOrder(num_examples, seed)
        self._lock = threading.Lock()

    def size(self, k: int) -> int:
        start = k // self.every * self.every
        if start + MULTI_SCALE_FINAL > self.steps:
            return max(self.sizes)
        rng = np.random.default_rng([self.seed, k // self.every, MULTI_SCALE_STREAM])
        return int(self.sizes[rng.integers(len(self.sizes))])

    def __call__(self, k: int) -> tuple[int, np.ndarray]:
        positions = k * self.global_batch + np.arange(self.global_batch)
        epochs, offsets = np.divmod(positions, self.num_examples)
        with self._lock:
            indices = np.array([self._order.epoch(int(e))[o]
                                for e, o in zip(epochs, offsets, strict=True)])
        return self.size(k), indices


class _PlannedExamples(grain.MapDataset):
    """Element i of this process: its share of global batch i // local of `plan`, each example
    transformed by the transform of that batch's key, with randomness from its position in the
    stream of global batches."""

    def __init__(self, source, plan, transforms_by_key: dict, global_batch: int):
        super().__init__()
        count = jax.process_count()
        self._source, self._plan, self._transforms = source, plan, transforms_by_key
        self._global, self._local = global_batch, global_batch // count
        self._first = jax.process_index() * self._local

    def __len__(self) -> int:
        return sys.maxsize // self._global * self._local

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.slice(i)
        batch, offset = divmod(i, self._local)
        key, indices = self._plan(batch)
        j = self._first + offset
        return self._transforms[key](self._source[int(indices[j])], batch * self._global + j)


def planned_dataset(source, plan, transforms_by_key: dict, *, global_batch: int,
                    num_threads: int = 2, workers: int = 0) -> grain.IterDataset:
    """Endless per-process batches of `plan`'s global batches; checkpointable (the position).
    `workers > 0`: made in that many grain worker processes, as `pipeline.train_dataset`."""
    local = pipeline.local_batch_size(global_batch)
    ds = _PlannedExamples(source, plan, transforms_by_key, global_batch)
    ds = ds.batch(local, drop_remainder=True)
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=4))
    if workers:
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return ds


# ---------------------------------------------------------------------------------------------
# evaluation


class _Subset:
    """The examples `indices` of `source`, with `image_id` = the source index when missing."""

    def __init__(self, source, indices: np.ndarray):
        self.source, self.indices = source, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j):
        index = int(self.indices[j])
        example = self.source[index]
        return example if "image_id" in example else {**example, "image_id": index}


def bucketed_eval_batches(source, transforms_by_bucket: Sequence, buckets: np.ndarray, *,
                          global_batch: int) -> Iterator[dict[str, np.ndarray]]:
    """`pipeline.eval_batches` bucket by bucket: every batch one bucket's shape, `example_index`
    the position in `source`."""
    for bucket in np.unique(buckets):
        indices = np.flatnonzero(buckets == bucket)
        for batch in pipeline.eval_batches(_Subset(source, indices),
                                           transforms_by_bucket[int(bucket)],
                                           global_batch=global_batch):
            batch["example_index"] = indices[batch["example_index"]].astype(np.int32)
            yield batch


# ---------------------------------------------------------------------------------------------
# from the config


def validate_shapes(data) -> None:
    """ValueError naming the `config.data` field when buckets or multi-scale cannot run."""
    data = _shape_settings(data)
    if data.aspect_buckets and data.multi_scale:
        raise ValueError(f"config.data.aspect_buckets: expected () with data.multi_scale "
                         f"{tuple(data.multi_scale)} (one or the other), got "
                         f"{tuple(data.aspect_buckets)}")
    if data.aspect_buckets:
        check_boundaries(data.aspect_buckets)
        wrong = {"data.resize": (data.resize, "min_max"), "data.pad_size": (data.pad_size, 0),
                 "data.zoom_out": (data.zoom_out, False),
                 "data.min_iou_crop": (data.min_iou_crop, False)}
        for field, (value, want) in wrong.items():
            if value != want:
                raise ValueError(f"config.{field}: expected {want!r} with data.aspect_buckets "
                                 f"(the bucket is chosen from the original aspect ratio), got "
                                 f"{value!r}")
    if data.multi_scale:
        sizes = list(data.multi_scale)
        if any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"config.data.multi_scale: expected positive integer sizes, got "
                             f"{tuple(sizes)}")
        if data.resize != "fixed" or data.pad_size:
            raise ValueError(f"config.data.resize: expected 'fixed' and data.pad_size 0 with "
                             f"data.multi_scale, got {data.resize!r} and {data.pad_size}")
        if not isinstance(data.multi_scale_every, int) or data.multi_scale_every < 1:
            raise ValueError(f"config.data.multi_scale_every: expected a positive integer, got "
                             f"{data.multi_scale_every!r}")


def _shape_settings(data):
    """`config.data` with the fields of this module defaulted (configs saved before them)."""
    return types.SimpleNamespace(**{**dict(aspect_buckets=(), multi_scale=(),
                                           multi_scale_every=10, workers=0),
                                    **dict(data.items())})


def bucket_transforms(transform: pipeline.ExampleTransform, boundaries) -> list:
    """One transform per bucket: `transform` padding to the bucket's shape."""
    shapes = bucket_shapes(boundaries, transform.min_size, transform.max_size,
                           transform.size_divisible)
    return [dataclasses.replace(transform, pad_shape=shape) for shape in shapes]


def train_dataset(config, splits, transform: pipeline.ExampleTransform) -> grain.IterDataset:
    """The run's train batches: `pipeline.train_dataset`, bucketed or multi-scale when the config
    asks for it."""
    data, batch = _shape_settings(config.data), config.train.batch_size
    if data.aspect_buckets:
        sizes = image_sizes(splits.train, splits.image_size)
        plan = GroupedBatches(bucket_of(sizes, data.aspect_buckets), batch, config.seed)
        variants = dict(enumerate(bucket_transforms(transform, data.aspect_buckets)))
        return planned_dataset(splits.train, plan, variants, global_batch=batch,
                               workers=data.workers)
    if data.multi_scale:
        plan = MultiScale(len(splits.train), batch, config.seed, tuple(data.multi_scale),
                          data.multi_scale_every, config.train.steps)
        variants = {s: dataclasses.replace(transform, fixed_size=s) for s in data.multi_scale}
        return planned_dataset(splits.train, plan, variants, global_batch=batch,
                               workers=data.workers)
    return pipeline.train_dataset(splits.train, transform, global_batch=batch, seed=config.seed,
                                  workers=data.workers)


def eval_data(config, splits, transform: pipeline.ExampleTransform
              ) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """`() -> iterator` over the run's evaluation batches: `pipeline.eval_batches`, bucket by
    bucket with buckets (the test images' sizes read once, here)."""
    boundaries = _shape_settings(config.data).aspect_buckets
    batch = config.train.eval_batch_size
    if not boundaries:
        return lambda: pipeline.eval_batches(splits.test, transform, global_batch=batch)
    buckets = bucket_of(image_sizes(splits.test, splits.image_size), boundaries)
    variants = bucket_transforms(transform, boundaries)
    return lambda: bucketed_eval_batches(splits.test, variants, buckets, global_batch=batch)
