"""Input pipeline images/s per CPU core: jaxvision's train transforms against torchvision's
DataLoader doing the same work on the same JPEG files (issue 20, part 5).

    python -m benchmarks.input_pipeline [--images 192] [--quick] [--json]

Files: scikit-image photographs written as JPEG (quality 90), ImageNet-like 500x375 (every
third one portrait) in an ImageFolder, COCO-like 640x480 with 7 polygon instances each in a
COCO folder (a quarter as many, timed in batches of 2). Pipelines, per image:

- `imagenet`: decode + random-resized crop 224 + flip + normalise (configs/imagenet/resnet50),
  `imagenet+autoaugment` the same with AutoAugment after the crop (configs/imagenet/
  efficientnet_b0); torchvision: ImageFolder + RandomResizedCrop(224) [+ AutoAugment] +
  RandomHorizontalFlip + ToTensor + Normalize.
- `mask_rcnn`: configs/coco/mask_rcnn_r50_fpn's transform of the `coco:` source (JPEG decode,
  the instance masks its builder made from the polygons, read back from array_record) + flip +
  min/max 800/1333 resize + normalise + pad to the static 1344 square (image and the 100 mask
  planes of `max_boxes`); torchvision: decode + masks from the polygons with pycocotools
  (references/detection's ConvertCocoPolysToMask) + flip, then GeneralizedRCNNTransform's
  resize (bilinear, no antialias; masks nearest) + normalise + pad of the image to 1344.

Rows: `in process` (one loop in the main process: one core), `grain 1 worker` (grain
`mp_prefetch` with one worker process) and torchvision `num_workers` 0 and 1: each keeps one
core busy, so images/s is images/s per core. The first batch (worker start-up) is not timed.
`os.getloadavg()` is recorded before the run (the dev machine is shared: ratios are results
only when the 1-minute load was below 0.5).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import tempfile
import time

import numpy as np

# photographs written at (height, width) sizes; every PORTRAIT_EVERY-th one (k = 0, 3, ...) portrait
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry")
IMAGENET_SIZE, COCO_SIZE, PORTRAIT_EVERY = (375, 500), (480, 640), 3
INSTANCES = 7  # COCO train2017 averages 7.3 instances per image
TARGETS = {"imagenet": 20_000, "imagenet+autoaugment": 20_000, "mask_rcnn": 100}  # img/s/host
ACCELERATORS = 8
BATCH = 16


@dataclasses.dataclass
class Row:
    pipeline: str
    loader: str
    images: int
    seconds: float
    cpu_seconds: float | None = None  # this process's CPU time, for the in-process rows

    @property
    def per_second(self) -> float:
        return self.images / self.seconds

    @property
    def per_cpu_second(self) -> float | None:
        return self.images / self.cpu_seconds if self.cpu_seconds else None


def _photo(k: int, size: tuple[int, int]):
    import skimage.data
    from PIL import Image

    image = Image.fromarray(getattr(skimage.data, PHOTOS[k % len(PHOTOS)])()).convert("RGB")
    height, width = size if k % PORTRAIT_EVERY else size[::-1]
    return image.resize((width, height), Image.BILINEAR)


def write_imagefolder(root: str, count: int) -> str:
    """`root/{train,val}/<class>/*.JPEG`, `count` train images in two classes."""
    for split, n in (("train", count), ("val", 2)):
        for k in range(n):
            folder = os.path.join(root, split, f"n{k % 2:08d}")
            os.makedirs(folder, exist_ok=True)
            _photo(k, IMAGENET_SIZE).save(os.path.join(folder, f"{k:05d}.JPEG"), quality=90)
    return root


def write_coco(root: str, count: int) -> str:
    """A COCO folder: `count` train images (2 val), INSTANCES polygons (quads) each."""
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    ann_id = 1
    for split, n, first in (("train", count, 1), ("val", 2, 100_000)):
        images, anns = [], []
        for k in range(n):
            name = f"{split}_{k:05d}.jpg"
            photo = _photo(k, COCO_SIZE)
            photo.save(os.path.join(root, "images", name), quality=90)
            photo_w, photo_h = photo.size
            images.append({"id": first + k, "file_name": name, "height": photo_h,
                           "width": photo_w})
            for _ in range(INSTANCES):
                w, h = rng.uniform(0.1, 0.5) * photo_w, rng.uniform(0.1, 0.5) * photo_h
                x, y = rng.uniform(0, photo_w - w), rng.uniform(0, photo_h - h)
                poly = [x, y, x + w, y + 0.2 * h, x + 0.8 * w, y + h, x, y + 0.7 * h]
                anns.append({"id": ann_id, "image_id": first + k, "category_id": 1 + ann_id % 3,
                             "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                             "segmentation": [[round(float(v), 2) for v in poly]]})
                ann_id += 1
        cats = [{"id": c, "name": f"class{c}"} for c in (1, 2, 3)]
        with open(os.path.join(root, "annotations", f"instances_{split}.json"), "w") as f:
            json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    return root


# ---------------------------------------------------------------------------------------------
# jaxvision


def jaxvision_pipelines(imagenet_root: str, coco_root: str, data_dir: str) -> dict:
    """{pipeline: (source, train transform)} from the recipes' own configs."""
    from configs.coco import mask_rcnn_r50_fpn
    from configs.imagenet import efficientnet_b0, resnet50
    from jaxvision.data.pipeline import make_transforms
    from jaxvision.data.sources import load_splits

    out = {}
    for name, module, dataset, fields in (
            ("imagenet", resnet50, f"imagefolder:{imagenet_root}", ("image", "label")),
            ("imagenet+autoaugment", efficientnet_b0, f"imagefolder:{imagenet_root}",
             ("image", "label")),
            ("mask_rcnn", mask_rcnn_r50_fpn, f"coco:{coco_root}",
             ("image", "boxes", "labels", "iscrowd", "masks"))):
        config = module.get_config()
        with config.unlocked():
            config.data.data_dir = data_dir
        source = load_splits(dataset, config.data, instance_masks="masks" in fields).train
        out[name] = (source, make_transforms(config, fields)[0])
    return out


def time_in_process(source, transform, count: int) -> tuple[float, float]:
    """(wall, CPU) seconds to read and transform `count` examples in this process (after one
    warm-up)."""
    transform(source[0], 0)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        transform(source[i % len(source)], i)
    return time.perf_counter() - start, time.process_time() - cpu


def time_grain_worker(source, transform, count: int, batch: int = BATCH) -> float:
    """Seconds for `count` examples through grain with one worker process (mp_prefetch),
    in batches of `batch`; the first batch is not timed."""
    import grain
    from absl import flags

    if not flags.FLAGS.is_parsed():  # grain's workers read its flags (absl apps parse them)
        flags.FLAGS.mark_as_parsed()
    ds = grain.MapDataset.source(source).repeat(None).map_with_index(
        lambda i, ex: transform(ex, i)).batch(batch)
    it = iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))
              .mp_prefetch(grain.MultiprocessingOptions(num_workers=1)))
    next(it)
    start = time.perf_counter()
    for _ in range(count // batch):
        next(it)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# torchvision


class TorchCoco:
    """references/detection's CocoDetection + ConvertCocoPolysToMask + flip, then
    GeneralizedRCNNTransform's resize, normalisation and padding of the image."""

    def __init__(self, root: str, min_size: int = 800, max_size: int = 1333, pad: int = 1344):
        with open(os.path.join(root, "annotations", "instances_train.json")) as f:
            data = json.load(f)
        self.root, self.images = root, data["images"]
        self.anns = {img["id"]: [] for img in self.images}
        for ann in data["annotations"]:
            self.anns[ann["image_id"]].append(ann)
        self.min_size, self.max_size, self.pad = min_size, max_size, pad

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        import torch
        from PIL import Image
        from pycocotools import mask as mask_utils
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as F

        info = self.images[index]
        with Image.open(os.path.join(self.root, "images", info["file_name"])) as image:
            image = F.pil_to_tensor(image.convert("RGB"))
        height, width = image.shape[-2:]
        anns = self.anns[info["id"]]
        masks = np.stack([mask_utils.decode(mask_utils.merge(
            mask_utils.frPyObjects(a["segmentation"], height, width))) for a in anns])
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                               a["bbox"][1] + a["bbox"][3]] for a in anns])
        masks = tv_tensors.Mask(torch.from_numpy(masks))
        boxes = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width))
        if torch.rand(()) < 0.5:
            image, boxes, masks = (F.horizontal_flip(x) for x in (image, boxes, masks))
        scale = min(self.min_size / min(height, width), self.max_size / max(height, width))
        size = [int(height * scale), int(width * scale)]
        image = F.resize(image.float(), size, antialias=False)
        boxes = F.resize(boxes, size)
        masks = F.resize(masks, size)
        image = F.normalize(image / 255, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        image = F.pad(image, [0, 0, self.pad - size[1], self.pad - size[0]])
        return image, {"boxes": boxes, "masks": masks, "labels": torch.tensor(
            [a["category_id"] for a in anns])}


def _listed(batch):
    return batch


def torch_dataset(pipeline: str, imagenet_root: str, coco_root: str):
    from torchvision import datasets
    from torchvision import transforms as T

    if pipeline == "mask_rcnn":
        return TorchCoco(coco_root)
    steps = [T.RandomResizedCrop(224)]
    if pipeline == "imagenet+autoaugment":
        steps.append(T.AutoAugment(T.AutoAugmentPolicy.IMAGENET))
    steps += [T.RandomHorizontalFlip(), T.ToTensor(),
              T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]
    return datasets.ImageFolder(os.path.join(imagenet_root, "train"), T.Compose(steps))


def time_torch_loader(dataset, count: int, workers: int, detection: bool, batch: int = BATCH
                      ) -> tuple[float, float]:
    """(wall, this process's CPU) seconds for `count` examples from DataLoader(`batch`,
    `workers`), first batch not timed; the sampler repeats the dataset when `count` exceeds
    it."""
    import torch

    sampler = torch.utils.data.RandomSampler(dataset, replacement=True,
                                             num_samples=count + batch)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, sampler=sampler, num_workers=workers,
        collate_fn=_listed if detection else None)
    it = iter(loader)
    next(it)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(count // batch):
        next(it)
    return time.perf_counter() - start, time.process_time() - cpu


# ---------------------------------------------------------------------------------------------


def run(count: int, workdir: str, pipelines=tuple(TARGETS), grain_worker: bool = True,
        batch: int = BATCH) -> list[Row]:
    """Every row: jaxvision in process (and grain with one worker), torchvision with 0 and 1
    workers, on `count` ImageNet-like images in batches of `batch` (a multiple of it) and a
    quarter as many COCO-like ones in batches of 2 (the Mask R-CNN recipe's per-device batch:
    its examples carry 100 mask planes of 1344 x 1344, 180 MB), written under `workdir`."""
    import tensorflow_datasets as tfds
    import torch

    from benchmarks.common import define_torchvision_schemas

    define_torchvision_schemas()
    tfds.disable_progress_bar()
    torch.set_num_threads(1)  # one core, as in a DataLoader worker
    imagenet = write_imagefolder(os.path.join(workdir, "imagenet"), count)
    coco = write_coco(os.path.join(workdir, "coco"), max(count // 4, 2))
    ours = jaxvision_pipelines(imagenet, coco, os.path.join(workdir, "tfds"))
    rows = []
    for name in pipelines:
        source, transform = ours[name]
        n, b = (count, batch) if name != "mask_rcnn" else (max(count // 4 // 2 * 2, 2), 2)
        rows.append(Row(name, "jaxvision, in process", n, *time_in_process(source, transform, n)))
        if grain_worker:
            rows.append(Row(name, "jaxvision, grain 1 worker", n,
                            time_grain_worker(source, transform, n, b)))
        dataset = torch_dataset(name, imagenet, coco)
        for workers in (0, 1):
            wall, cpu = time_torch_loader(dataset, n, workers, name == "mask_rcnn", b)
            rows.append(Row(name, f"torchvision, num_workers={workers}", n, wall,
                            None if workers else cpu))
    return rows


def table(rows: list[Row], load: tuple[float, float, float]) -> str:
    """Markdown: images/s (wall clock, one core kept busy) and images per CPU-second (in-process
    rows: unaffected by other processes sharing the core), each with the cores per accelerator
    an 8-accelerator host needs at the pipeline's target rate."""
    lines = [f"load average before the run {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}, "
             f"{datetime.date.today().isoformat()}", "",
             "| pipeline | loader | images/s | cores per accelerator | images per CPU-s | "
             "cores per accelerator (CPU-s) |", "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        per_accelerator = TARGETS[row.pipeline] / ACCELERATORS
        cpu = row.per_cpu_second
        cpu_cells = (f"{cpu:.1f} | {per_accelerator / cpu:.1f}" if cpu else "- | -")
        lines.append(f"| {row.pipeline} | {row.loader} | {row.per_second:.1f} | "
                     f"{per_accelerator / row.per_second:.1f} | {cpu_cells} |")
    targets = ", ".join(f"{k} {v:,} img/s" for k, v in TARGETS.items())
    lines += ["", f"targets per {ACCELERATORS}-accelerator host: {targets}"]
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=192,
                        help="images of each kind, timed per row (a multiple of 16)")
    parser.add_argument("--quick", action="store_true",
                        help="4 images in batches of 4, no grain worker row: checks the script "
                             "runs")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    args = parser.parse_args(argv)
    count, batch = (4, 4) if args.quick else (args.images, BATCH)
    if count < batch or count % batch:
        raise ValueError(f"--images: expected a positive multiple of {batch}, got {count}")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as workdir:
        rows = run(count, workdir, grain_worker=not args.quick, batch=batch)
    if args.json:
        text = "\n".join(json.dumps({**dataclasses.asdict(row), "images_per_s": row.per_second,
                                     "images_per_cpu_s": row.per_cpu_second,
                                     "load_before": load}) for row in rows)
    else:
        text = table(rows, load)
    print(text)
    return text


if __name__ == "__main__":
    from jaxvision.allocator import reexec_with_tcmalloc

    reexec_with_tcmalloc()
    main()
