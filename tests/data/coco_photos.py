"""A COCO-format folder of real photographs, written as a user's would be (shared test data).

scikit-image's photographs at several sizes and in several file modes (RGB JPEG, grayscale PNG,
CMYK JPEG, RGBA PNG, palette PNG), non-contiguous category ids 1/5/17/47/90, polygons whose
`area` is pycocotools' own, an uncompressed-RLE crowd region, an image with more instances than
a detector config's `max_boxes`, and an image with no annotations. Annotation ids start at 100.
"""

from __future__ import annotations

import json
import os

import numpy as np
import skimage.data
from PIL import Image
from pycocotools import mask as mask_utils

CATEGORIES = [{"id": 1, "name": "person"}, {"id": 5, "name": "airplane"},
              {"id": 17, "name": "cat"}, {"id": 47, "name": "cup"},
              {"id": 90, "name": "toothbrush"}]
# file -> (photo, (height, width), PIL mode it is saved in)
TRAIN = {"astronaut.jpg": ("astronaut", (96, 96), "RGB"),
         "cat.png": ("cat", (80, 120), "L"),
         "coffee.jpg": ("coffee", (100, 150), "CMYK")}
VAL = {"rocket.jpg": ("rocket", (107, 160), "RGB"),
       "chelsea.png": ("chelsea", (120, 180), "RGBA"),
       "coins.png": ("coins", (76, 96), "P"),
       "camera.png": ("camera", (64, 64), "L")}


def _save(path: str, photo: str, size: tuple[int, int], mode: str) -> None:
    pixels = getattr(skimage.data, photo)()
    image = Image.fromarray(pixels).convert("RGB").resize(size[::-1], Image.BILINEAR)
    if mode == "P":
        image = image.convert("P", palette=Image.ADAPTIVE, colors=64)
    else:
        image = image.convert(mode)
    image.save(path, quality=95) if path.endswith(".jpg") else image.save(path)


def _uncompressed_rle(mask: np.ndarray) -> dict:
    flat = np.asarray(mask, np.uint8).flatten(order="F")
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], change])).tolist()
    return {"size": list(mask.shape), "counts": counts}


def _instances(rng, height: int, width: int, count: int, first_id: int, image_id: int,
               crowd: bool = False) -> list[dict]:
    """`count` triangle/quad polygons inside the image (and a crowd RLE region)."""
    anns = []
    for k in range(count):
        w, h = rng.uniform(0.2, 0.5) * width, rng.uniform(0.2, 0.5) * height
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        quad = [x, y, x + w, y, x + w, y + h] + ([x, y + h] if k % 2 else [])
        poly = [round(float(v), 2) for v in quad]
        rle = mask_utils.frPyObjects([poly], height, width)
        anns.append({"id": first_id + k, "image_id": image_id,
                     "category_id": CATEGORIES[(image_id + k) % len(CATEGORIES)]["id"],
                     "iscrowd": 0, "segmentation": [poly],
                     "bbox": [float(v) for v in mask_utils.toBbox(rle)[0]],
                     "area": float(mask_utils.area(rle)[0])})
    if crowd:
        region = np.zeros((height, width), np.uint8)
        region[height // 2:, : width // 3] = 1
        rle = mask_utils.encode(np.asfortranarray(region))
        anns.append({"id": first_id + count, "image_id": image_id, "category_id": 1,
                     "iscrowd": 1, "segmentation": _uncompressed_rle(region),
                     "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                     "area": float(mask_utils.area(rle))})
    return anns


def write_coco_photos(root: str, seed: int = 0, degenerate: bool = False,
                      scale: int = 1) -> dict[str, dict]:
    """Writes `<root>/images/*` and `<root>/annotations/instances_{train,val}.json`; returns
    {'train': json, 'val': json}. Val: rocket 6 instances + a crowd region (more than 4),
    chelsea 2, coins 3, camera none. `degenerate`: one more train annotation (id 99) whose
    polygon has 2 points (its box is fine). `scale`: every image `scale` times larger (8: COCO's
    sizes, 512-1440 px a side), its instances drawn at that size."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    out, next_id = {}, 100
    counts = {"astronaut.jpg": 2, "cat.png": 1, "coffee.jpg": 3, "rocket.jpg": 6,
              "chelsea.png": 2, "coins.png": 3, "camera.png": 0}
    for split, files, first_image in (("train", TRAIN, 3), ("val", VAL, 42)):
        images, annotations = [], []
        for k, (name, (photo, (h, w), mode)) in enumerate(files.items()):
            h, w = h * scale, w * scale
            _save(os.path.join(root, "images", name), photo, (h, w), mode)
            image_id = first_image + 7 * k
            images.append({"id": image_id, "file_name": name, "height": h, "width": w})
            anns = _instances(rng, h, w, counts[name], next_id, image_id,
                              crowd=name == "rocket.jpg")
            annotations += anns
            next_id += len(anns)
        if degenerate and split == "train":
            annotations.append({"id": 99, "image_id": first_image, "category_id": 90,
                                "iscrowd": 0, "segmentation": [[10.0, 10.0, 30.0, 20.0]],
                                "bbox": [10.0, 10.0, 20.0, 10.0], "area": 0.0})
        out[split] = {"info": {"description": "jaxvision test photos"}, "images": images,
                      "annotations": annotations, "categories": CATEGORIES}
        with open(os.path.join(root, "annotations", f"instances_{split}.json"), "w") as f:
            json.dump(out[split], f)
    return out
