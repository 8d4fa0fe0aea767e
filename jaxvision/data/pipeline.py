"""grain input pipelines over TFDS data sources.

Train: global shuffle (a new permutation each epoch) -> repeat -> transform (flip drawn from
`(seed, global index)`) -> this process's slice of every global batch -> batch. The global batch is
the same whatever the number of processes, so a 2-host run sees the data a 1-host run sees.
Eval: source order, the last batch padded, `example_valid` marking real examples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import grain
import jax
import numpy as np

from jaxvision.data import transforms

ALL_FIELDS = ("image", "segmentation", "masks", "boxes", "labels", "label")


@dataclasses.dataclass(frozen=True)
class ExampleTransform:
    """Turns a raw example into model input: the requested fields, normalised, flipped, padded.

    `random_crop_padding > 0`: zero-pad by that many pixels and crop back to the input size at an
    offset drawn from `(seed, index, 1)` (the flip draws from `(seed, index)`, so turning the crop
    on does not change which examples are flipped). Not for box fields.
    """

    fields: Sequence[str] = ("image", "segmentation")
    max_boxes: int = 8
    random_flip: bool = False
    seed: int = 0
    random_crop_padding: int = 0

    def __post_init__(self):
        unknown = set(self.fields) - set(ALL_FIELDS)
        if unknown:
            raise ValueError(
                f"data fields: expected a subset of {ALL_FIELDS}, got {sorted(unknown)}")
        if self.random_crop_padding < 0:
            raise ValueError(f"data.random_crop_padding: expected an integer >= 0, got "
                             f"{self.random_crop_padding}")

    def __call__(self, example: dict, index: int) -> dict[str, np.ndarray]:
        wanted = set(self.fields)
        if wanted & {"boxes", "labels", "masks"}:
            wanted |= {"boxes", "labels"}
        example = {k: np.asarray(v) for k, v in example.items() if k in wanted}
        if self.random_flip and np.random.default_rng([self.seed, index]).random() < 0.5:
            example = transforms.hflip(example)
        if self.random_crop_padding:
            p = self.random_crop_padding
            offset = np.random.default_rng([self.seed, index, 1]).integers(0, 2 * p + 1, size=2)
            example = transforms.pad_and_crop(example, p, (int(offset[0]), int(offset[1])))
        if "boxes" in example:
            example = transforms.pad_instances(example, self.max_boxes)
        example["image"] = transforms.normalise(example["image"])
        if "segmentation" in example:
            example["segmentation"] = example["segmentation"].astype(np.int32)
        if "label" in example:
            example["label"] = example["label"].astype(np.int32)
        return example


class _ProcessSlice(grain.MapDataset):
    """Element i of this process = element of its contiguous share of global batch i // local."""

    def __init__(self, parent: grain.MapDataset, global_batch: int, index: int, count: int):
        super().__init__(parent)
        self._global, self._local, self._index = global_batch, global_batch // count, index
        self._length = len(parent) // global_batch * self._local

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.slice(i)
        batch, offset = divmod(i, self._local)
        return self._parents[0][batch * self._global + self._index * self._local + offset]


def local_batch_size(global_batch: int) -> int:
    """Per-process share of `global_batch`; it must divide evenly."""
    count = jax.process_count()
    if global_batch % count:
        raise ValueError(
            f"batch_size: expected a multiple of the process count {count}, got {global_batch}"
        )
    return global_batch // count


def train_dataset(source, transform: ExampleTransform, *, global_batch: int, seed: int,
                  num_threads: int = 2) -> grain.IterDataset:
    """Endless per-process batches `{field: [global_batch / processes, ...]}`; checkpointable."""
    local = local_batch_size(global_batch)
    ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
    ds = ds.map_with_index(lambda i, ex: transform(ex, i))
    ds = _ProcessSlice(ds, global_batch, jax.process_index(), jax.process_count())
    ds = ds.batch(local, drop_remainder=True)
    options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=4)
    return ds.to_iter_dataset(options)


def eval_batches(source, transform: ExampleTransform, *, global_batch: int
                 ) -> Iterator[dict[str, np.ndarray]]:
    """One pass over `source` in order; the last global batch is padded with copies of example 0
    that carry `example_valid=False`."""
    local = local_batch_size(global_batch)
    total = len(source)
    padded = -(-total // global_batch) * global_batch

    def element(index: int) -> dict[str, np.ndarray]:
        example = transform(source[min(index, total - 1) if index < total else 0], index)
        example["example_valid"] = np.bool_(index < total)
        return example

    ds = grain.MapDataset.range(padded).map(element)
    ds = _ProcessSlice(ds, global_batch, jax.process_index(), jax.process_count())
    yield from ds.batch(local, drop_remainder=True)
