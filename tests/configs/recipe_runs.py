"""Runs a reference recipe (configs/<dataset>/<model>.py) the way its docstring says, on a tiny
dataset in the real on-disk format at the recipe's real image sizes: `python train.py` with only
the dataset path, the batch and the step counts overridden (2 steps, evaluation at the last)."""

import copy
import os
import subprocess
import sys

from PIL import Image

from tests.data import test_voc_folder as voc
from tests.train.conftest import REPO, records

SHORT_RUN = ("--config.train.steps=2", "--config.train.eval_batch_size=1",
             "--config.train.eval_every=2", "--config.train.log_every=1",
             "--config.train.checkpoint_every=2")


def run_recipe(name: str, dataset: str, tmp_path, *overrides: str, batch: int = 1,
               timeout: int = 1800) -> list[dict]:
    """`train.py --config configs/<name>.py` on `dataset` on one CPU device; its metrics.jsonl
    records (the run must succeed: its stderr tail is the failure message)."""
    workdir = str(tmp_path / "work")
    config = os.path.join(REPO, "configs", *name.split(".")) + ".py"
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "--config", config,
           f"--workdir={workdir}", f"--config.dataset={dataset}",
           f"--config.data.data_dir={tmp_path / 'tfds'}", f"--config.train.batch_size={batch}",
           *SHORT_RUN, *overrides]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return records(workdir)


def _scaled(box, scale, height, width):
    x0, y0, x1, y1 = (v * scale for v in box)
    return max(x0, 1), max(y0, 1), min(x1, width), min(y1, height)


def write_voc_photos(tmp_path, scale: int = 10):
    """The VOCdevkit folder of tests/data/test_voc_folder.py with every image and box `scale`
    times larger (10: 280-500 px a side, VOC's sizes); returns the year folder."""
    objects = copy.deepcopy(voc.OBJECTS)
    for stem, objs in objects.items():
        h, w = (side * scale for side in voc.PHOTOS[stem][1])
        for obj in objs:  # 1-based inclusive pixels, inside the scaled image
            obj["box"] = _scaled(obj["box"], scale, h, w)
            obj["parts"] = [(n, _scaled(b, scale, h, w)) for n, b in obj.get("parts", ())]
    root = voc._write(tmp_path, objects)
    lists = root / "ImageSets" / "Main"  # VOC 07+12 merged as the SSD recipe reads it
    (lists / "trainval0712.txt").write_text((lists / "trainval.txt").read_text())
    for stem, (photo, (h, w), mode, fmt) in voc.PHOTOS.items():
        h, w = h * scale, w * scale
        image = Image.fromarray(photo()).resize((w, h), Image.BILINEAR)
        image = image.convert(mode) if mode != "P" else image.convert("P", palette=Image.ADAPTIVE)
        image.save(root / "JPEGImages" / f"{stem}.jpg", fmt)
        (root / "Annotations" / f"{stem}.xml").write_text(voc._xml(stem, h, w, objects[stem]))
        if stem in voc.LISTS["Segmentation"]["trainval"]:
            mask = Image.fromarray(voc._mask(h, w, objects[stem]), "P")
            mask.putpalette(voc._voc_palette())
            mask.save(root / "SegmentationClass" / f"{stem}.png")
    return root
