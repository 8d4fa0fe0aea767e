"""grain input pipelines over TFDS data sources, and the per-example transform.

Train: global shuffle (a new permutation each epoch) -> repeat -> transform (randomness drawn from
`(seed, global index, k)`) -> this process's slice of every global batch -> batch. The global
batch is the same whatever the number of processes, so a 2-host run sees the data a 1-host run
sees. Eval: source order, the last batch padded, `example_valid` marking real examples.

The detection example (what a task asking for `boxes`, `labels`, `masks` or `iscrowd` receives;
a contract the detection tasks rely on):

    image             float32 [H, W, 3]  normalised (ImageNet mean/std), padded to the static size
    boxes             float32 [max_boxes, 4] xyxy absolute pixels of the transformed image
    labels            int32   [max_boxes]  dataset label + 1; 0 = background / padding
    boxes_valid       bool    [max_boxes]
    iscrowd           bool    [max_boxes]
    difficult         bool    [max_boxes]  only when the source has it (VOC)
    masks             uint8   [max_boxes, H, W]  only when the task asks for 'masks'
    image_id          int32   []   the source's id (COCO image id), else the source index
    orig_size         int32   [2]  original (height, width)
    image_size        int32   [2]  (height, width) of the resized content before padding
    num_dropped_boxes int32   []   boxes dropped by a crop, for having no area, or by max_boxes
    proposals         float32 [P, 4]  only when the source has them (data.proposals): external
                                      region proposals, moved with the image like boxes
    proposals_valid   bool    [P]     False for padding and for proposals a crop emptied

Classification (`image`, `label`) and segmentation (`image`, `segmentation`) examples carry only
the fields asked for (`image_size` as above when asked for: segmentation evaluation maps
predictions back to the original image with it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import grain
import jax
import numpy as np

from jaxvision.data import augment, autoaugment, elastic, letterbox, tiles, transforms
from jaxvision.data.weight_map import border_weights

ALL_FIELDS = ("image", "segmentation", "masks", "boxes", "labels", "iscrowd", "label",
              "image_id", "image_size", "weights")
BOX_REQUEST = frozenset({"boxes", "labels", "masks", "iscrowd"})
RESIZE_MODES = ("none", "fixed", "min_max", "letterbox")
CROPS = ("none", "random_resized", "center")
# stream k of np.random.default_rng([seed, index, k]); the flip keeps (seed, index)
_PAD_CROP, _PHOTOMETRIC, _ZOOM_OUT, _IOU_CROP, _RESIZED_CROP, _ELASTIC, _TILE = 1, 2, 3, 4, 5, 6, 7
_AUTOAUGMENT = 8


@dataclasses.dataclass(frozen=True)
class ExampleTransform:
    """Turns a raw example into model input: the requested fields, augmented, resized,
    normalised and padded to static shapes (see the module docstring for the detection example).

    In order: photometric distortion, zoom-out, min-IoU crop (SSD; detection), ImageNet crop
    (`crop`: 'random_resized' to `image_size` for training, 'center' = resize to image_size /
    0.875 then centre crop), horizontal flip, pad-and-random-crop (`random_crop_padding > 0`,
    not for boxes), resize (`resize`: 'none'; 'fixed' to fixed_size x fixed_size, SSD 300 / YOLO
    416; 'min_max' torchvision GeneralizedRCNNTransform's rule with min_size / max_size;
    'letterbox' Darknet's, aspect kept and centred on grey in fixed_size x fixed_size, adding
    `image_origin` [2] (top, left); `eval_resize` overrides `resize` in `eval()` when set),
    normalisation, padding to the static size (bottom/right; 'min_max': a square of side
    `pad_size` or ceil(max_size / size_divisible) * size_divisible; 'none' / 'fixed': `pad_size`
    when > 0; `pad_shape` (H, W) instead when given: jaxvision.data.buckets), then boxes with no
    area are dropped and the rest padded to `max_boxes`.
    AutoAugment (`autoaugment`: 'none' | 'imagenet'; classification, jaxvision.data.autoaugment)
    runs right after the ImageNet crop.

    U-Net (segmentation; `jaxvision.data.elastic`, `.weight_map`, `.tiles`): first an elastic
    deformation (`elastic_sigma` > 0: N(0, sigma^2) px vectors on an `elastic_grid`^2 lattice),
    and after the resize the `weights` field (the border weight map with `weight_w0`,
    `weight_sigma`; when asked for) and the overlap tile (`tile_size` > 0): the input of a
    `tile_size` output window, `tile_margin` larger on every side, mirrored beyond the image;
    random in the image for training, for evaluation the smallest `tile_size + k * tile_step`
    window from the image's top-left that covers it (then `image_origin` [2] says where the
    image's pixel (0, 0) is in the tile; `image_size` is the image's size).

    Randomness: the flip draws from `default_rng([seed, index])`, every other step k from
    `default_rng([seed, index, k])`, so turning one on changes no other draw. `eval()` gives the
    matching transform without randomness.
    """

    fields: Sequence[str] = ("image", "segmentation")
    max_boxes: int = 8
    random_flip: bool = False
    seed: int = 0
    random_crop_padding: int = 0
    photometric_distort: bool = False
    zoom_out: bool = False
    zoom_out_max: float = 4.0
    min_iou_crop: bool = False
    crop: str = "none"
    image_size: int = 224
    resize: str = "none"
    min_size: int = 800
    max_size: int = 1333
    size_divisible: int = 32
    fixed_size: int = 300
    eval_resize: str = ""
    pad_size: int = 0
    elastic_sigma: float = 0.0
    elastic_grid: int = 3
    tile_size: int = 0
    tile_margin: int = 0
    tile_step: int = 16
    random_tile: bool = True
    weight_w0: float = 10.0
    weight_sigma: float = 5.0
    autoaugment: str = "none"
    pad_shape: tuple[int, int] | None = None  # (H, W) instead of the square: one aspect bucket

    def __post_init__(self):
        unknown = set(self.fields) - set(ALL_FIELDS)
        if unknown:
            raise ValueError(
                f"data fields: expected a subset of {ALL_FIELDS}, got {sorted(unknown)}")
        if self.random_crop_padding < 0:
            raise ValueError(f"data.random_crop_padding: expected an integer >= 0, got "
                             f"{self.random_crop_padding}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"data.resize: expected one of {RESIZE_MODES}, got {self.resize!r}")
        if self.eval_resize not in ("",) + RESIZE_MODES:
            raise ValueError(f"data.eval_resize: expected '' (data.resize) or one of "
                             f"{RESIZE_MODES}, got {self.eval_resize!r}")
        if self.crop not in CROPS:
            raise ValueError(f"data.crop: expected one of {CROPS}, got {self.crop!r}")
        for name in ("max_boxes", "min_size", "max_size", "size_divisible", "fixed_size",
                     "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name}: expected a positive integer, got "
                                 f"{getattr(self, name)}")
        if self.pad_size < 0:
            raise ValueError(f"data.pad_size: expected an integer >= 0, got {self.pad_size}")
        if self.zoom_out_max < 1:
            raise ValueError(f"data.zoom_out_max: expected >= 1, got {self.zoom_out_max}")
        if (self.is_detection or "segmentation" in self.fields) and self.crop != "none":
            raise ValueError(f"data.crop: expected 'none' for box and segmentation fields (the "
                             f"ImageNet crops move only the image), got {self.crop!r}")
        if self.elastic_sigma < 0 or self.elastic_grid < 2:
            raise ValueError(f"data.elastic: expected sigma >= 0 and grid >= 2, got sigma="
                             f"{self.elastic_sigma}, grid={self.elastic_grid}")
        if min(self.tile_size, self.tile_margin) < 0 or self.tile_step < 1:
            raise ValueError(f"data.tile: expected size >= 0, margin >= 0 and step >= 1, got "
                             f"size={self.tile_size}, margin={self.tile_margin}, "
                             f"step={self.tile_step}")
        if self.tile_size and (self.is_detection or self.pad_size):
            raise ValueError(f"data.tile.size: expected 0 with box fields or data.pad_size "
                             f"(tiles are for segmentation), got {self.tile_size}")
        if "weights" in self.fields and "segmentation" not in self.fields:
            raise ValueError(f"data fields: expected 'segmentation' with 'weights' (the weight "
                             f"map is computed from it), got {tuple(self.fields)}")
        if self.autoaugment not in autoaugment.POLICIES:
            raise ValueError(f"data.autoaugment: expected one of {autoaugment.POLICIES}, got "
                             f"{self.autoaugment!r}")
        if self.autoaugment != "none" and (self.is_detection or "segmentation" in self.fields):
            raise ValueError(f"data.autoaugment: expected 'none' for box and segmentation fields "
                             f"(it moves only the image), got {self.autoaugment!r}")
        if self.is_detection and self.random_crop_padding:
            raise ValueError(f"data.random_crop_padding: expected 0 for box fields (use "
                             f"min_iou_crop), got {self.random_crop_padding}")

    @property
    def is_detection(self) -> bool:
        return bool(set(self.fields) & BOX_REQUEST)

    @property
    def static_size(self) -> tuple[int, int] | None:
        """(H, W) every output image has when the transform fixes it, else None (the input's)."""
        if self.pad_shape is not None:
            return tuple(self.pad_shape)
        if self.tile_size:
            side = self.tile_size + 2 * self.tile_margin
            return (side, side) if self.random_tile else None
        if self.resize == "min_max":
            side = self.pad_size or transforms.static_pad_size(self.max_size, self.size_divisible)
            return side, side
        if self.pad_size:
            return self.pad_size, self.pad_size
        if self.resize in ("fixed", "letterbox"):
            return self.fixed_size, self.fixed_size
        if self.crop != "none":
            return self.image_size, self.image_size
        return None

    def eval(self) -> ExampleTransform:
        """The evaluation transform: the same fields, resize and padding, no randomness (a
        random-resized crop becomes the resize + centre crop)."""
        return dataclasses.replace(
            self, random_flip=False, random_crop_padding=0, photometric_distort=False,
            zoom_out=False, min_iou_crop=False, elastic_sigma=0.0, random_tile=False,
            autoaugment="none",
            resize=self.eval_resize or self.resize,
            crop="center" if self.crop == "random_resized" else self.crop)

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, index, stream])

    def __call__(self, example: dict, index: int) -> dict[str, np.ndarray]:
        wanted = set(self.fields)
        detection = self.is_detection
        if detection:
            wanted |= {"boxes", "labels", "iscrowd", "difficult", "image_id", "orig_size",
                       "proposals", "proposals_valid"}
        source = example
        example = {k: np.asarray(v) for k, v in example.items() if k in wanted}
        dropped = 0
        if detection:
            example = _detection_defaults(example, source, index, self.fields)
        if self.elastic_sigma > 0:
            field = elastic.elastic_field(self._rng(index, _ELASTIC), *example["image"].shape[:2],
                                          self.elastic_sigma, self.elastic_grid)
            example = elastic.elastic_deform(example, field)
        if self.photometric_distort:
            params = augment.photometric_params(self._rng(index, _PHOTOMETRIC))
            example["image"] = augment.photometric_distort(example["image"], params)
        if self.zoom_out:
            params = augment.zoom_out_params(self._rng(index, _ZOOM_OUT),
                                             *example["image"].shape[:2], self.zoom_out_max)
            example = augment.zoom_out(example, params)
        if self.min_iou_crop and detection:
            params = augment.min_iou_crop_params(self._rng(index, _IOU_CROP), example["boxes"],
                                                 *example["image"].shape[:2])
            if params is not None:
                top, left, h, w, inside = params
                dropped += int((~inside).sum())
                example = transforms.crop(transforms.select_boxes(example, inside), top, left,
                                          h, w)
        if self.crop == "random_resized":
            example["image"] = augment.imagenet_train_crop(
                example["image"], self.image_size, self._rng(index, _RESIZED_CROP))
        elif self.crop == "center":
            example["image"] = augment.imagenet_eval_crop(example["image"], self.image_size)
        if self.autoaugment == "imagenet":
            example["image"] = autoaugment.autoaugment(example["image"],
                                                       self._rng(index, _AUTOAUGMENT))
        if self.random_flip and np.random.default_rng([self.seed, index]).random() < 0.5:
            example = transforms.hflip(example)
        if self.random_crop_padding:
            p = self.random_crop_padding
            offset = self._rng(index, _PAD_CROP).integers(0, 2 * p + 1, size=2)
            example = transforms.pad_and_crop(example, p, (int(offset[0]), int(offset[1])))
        example = self._resize(example)
        content = example["image"].shape[:2]
        if self.resize == "letterbox":  # Darknet's: centred on grey (jaxvision.data.letterbox)
            example, origin = letterbox.embed(example, self.fixed_size)
        if "weights" in wanted:
            example["weights"] = border_weights(example["segmentation"], w0=self.weight_w0,
                                                sigma=self.weight_sigma)
        if self.tile_size:
            example = self._tile(example, index)
        example["image"] = transforms.normalise(example["image"])
        if self.static_size is not None and self.static_size != example["image"].shape[:2]:
            example = transforms.place(example, self.static_size, 0, 0, fill=0.0)
        if "segmentation" in example:
            example["segmentation"] = example["segmentation"].astype(np.int32)
        if "label" in example:
            example["label"] = example["label"].astype(np.int32)
        if detection:
            example, empty = transforms.drop_empty(example)
            dropped += empty + max(len(example["boxes"]) - self.max_boxes, 0)
            example = transforms.pad_instances(example, self.max_boxes)
            if "proposals" in example:
                example = transforms.finish_proposals(example)
            example["image_size"] = np.asarray(content, np.int32)
            example["num_dropped_boxes"] = np.int32(dropped)
            if self.resize == "letterbox":
                example["image_origin"] = origin
        else:
            if "image_id" in example:
                example["image_id"] = example["image_id"].astype(np.int32)
            if "image_size" in wanted:
                example["image_size"] = np.asarray(content, np.int32)
        return example

    def _tile(self, example: dict, index: int) -> dict:
        if self.random_tile:
            return tiles.random_tile(example, self._rng(index, _TILE), self.tile_size,
                                     self.tile_margin)
        size = tiles.eval_tile_size(*example["image"].shape[:2], self.tile_size, self.tile_step)
        return tiles.tile_example(example, 0, 0, size, self.tile_margin)

    def _resize(self, example: dict) -> dict:
        height, width = example["image"].shape[:2]
        if self.resize == "fixed":
            size = (self.fixed_size, self.fixed_size)
        elif self.resize == "min_max":
            size = transforms.min_max_size(height, width, self.min_size, self.max_size)
        elif self.resize == "letterbox":
            size = letterbox.letterbox_size(height, width, self.fixed_size)
        else:
            return example
        return transforms.resize(example, size) if size != (height, width) else example


def _detection_defaults(example: dict, source: dict, index: int, wanted=()) -> dict:
    """Fills what a box example needs and its source may lack: labels, iscrowd (False),
    image_id (the index), orig_size (the image's size); checks the box array's shape."""
    boxes = np.asarray(example.get("boxes", np.zeros((0, 4), np.float32)), np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes: expected [N, 4] xyxy, got shape {boxes.shape}")
    n = len(boxes)
    example["boxes"] = boxes.reshape(n, 4)
    example["labels"] = np.asarray(example.get("labels", np.zeros(n)), np.int64).reshape(n)
    example["iscrowd"] = np.asarray(example.get("iscrowd", np.zeros(n)), bool).reshape(n)
    if "difficult" in example:
        example["difficult"] = np.asarray(example["difficult"], bool).reshape(n)
    if "masks" in wanted and "masks" not in example:
        raise ValueError("masks: expected instance masks [N, H, W] in the source's examples (the "
                         f"task asks for them), got fields {sorted(source)}")
    if "masks" in example and example["masks"].shape[0] != n:
        raise ValueError(f"masks: expected one per box ({n}), got {example['masks'].shape[0]}")
    example["image_id"] = np.int32(source.get("image_id", index))
    example["orig_size"] = np.asarray(source.get("orig_size", example["image"].shape[:2]),
                                      np.int32)
    return example


def make_transforms(config, fields: Sequence[str]) -> tuple[ExampleTransform, ExampleTransform]:
    """(train, eval) transforms for the task `fields` from `config.data` and `config.seed`;
    the eval one is `train.eval()` without instance masks and pixel weights (evaluation reads
    the source's own ground truth, `Task.evaluator`).

    Static shapes whatever the source: `resize='none'` with `crop='none'` (and no `data.tile`)
    becomes a fixed resize to `data.image_size` square (bilinear image, nearest masks), a no-op
    for sources stored at that size (shapes, pets) and the resize for those whose images vary
    (folders, COCO, the catalogue; `DatasetSplits.image_size == 0`) or a user's own image
    (jaxvision.predict).
    """
    d = config.data
    resize, fixed_size = d.resize, d.fixed_size
    if resize == "none" and d.crop == "none" and not d.tile.size:  # a tile is static already
        resize, fixed_size = "fixed", d.image_size
    train = ExampleTransform(
        tuple(fields), d.max_boxes, random_flip=d.random_flip, seed=config.seed,
        random_crop_padding=d.random_crop_padding, photometric_distort=d.photometric_distort,
        zoom_out=d.zoom_out, zoom_out_max=d.zoom_out_max, min_iou_crop=d.min_iou_crop,
        crop=d.crop, image_size=d.image_size, resize=resize, min_size=d.min_size,
        max_size=d.max_size, size_divisible=d.size_divisible, fixed_size=fixed_size,
        eval_resize=d.get("eval_resize", ""), pad_size=d.pad_size,
        elastic_sigma=d.elastic.sigma, elastic_grid=d.elastic.grid,
        tile_size=d.tile.size, tile_margin=d.tile.margin, tile_step=d.tile.step,
        weight_w0=d.weight_map.w0, weight_sigma=d.weight_map.sigma,
        autoaugment=d.autoaugment)
    return train, dataclasses.replace(train.eval(), fields=tuple(
        f for f in fields if f not in ("masks", "weights")))


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
                  num_threads: int = 2, workers: int = 0) -> grain.IterDataset:
    """Endless per-process batches `{field: [global_batch / processes, ...]}`; checkpointable.
    `workers > 0`: batches are made in that many grain worker processes (`mp_prefetch`), the
    same batches in the same order; outside an absl app absl's flags must be parsed first."""
    local = local_batch_size(global_batch)
    ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
    ds = ds.map_with_index(lambda i, ex: transform(ex, i))
    ds = _ProcessSlice(ds, global_batch, jax.process_index(), jax.process_count())
    ds = ds.batch(local, drop_remainder=True)
    options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=4)
    ds = ds.to_iter_dataset(options)
    if workers:
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return ds


def eval_batches(source, transform: ExampleTransform, *, global_batch: int
                 ) -> Iterator[dict[str, np.ndarray]]:
    """One pass over `source` in order; the last global batch is padded with copies of example 0
    that carry `example_valid=False`. Every example carries `example_index` int32 (its position
    in `source`, 0 for padding), so an evaluator can read the source's own, untransformed
    ground truth."""
    local = local_batch_size(global_batch)
    total = len(source)
    padded = -(-total // global_batch) * global_batch

    def element(index: int) -> dict[str, np.ndarray]:
        example = transform(source[min(index, total - 1) if index < total else 0], index)
        example["example_valid"] = np.bool_(index < total)
        example["example_index"] = np.int32(index if index < total else 0)
        return example

    ds = grain.MapDataset.range(padded).map(element)
    ds = _ProcessSlice(ds, global_batch, jax.process_index(), jax.process_count())
    yield from ds.batch(local, drop_remainder=True)
