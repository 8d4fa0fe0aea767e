"""scikit-image's photographs saved as a user would have them: several sizes and PIL modes."""

from __future__ import annotations

import os

import numpy as np
import skimage.data
from PIL import Image

PHOTOGRAPHS = ("astronaut", "cat", "coffee", "rocket", "coins", "chelsea", "camera", "clock")
MODES = ("RGB", "L", "RGBA", "P", "CMYK")  # CMYK is saved as JPEG
EXTENSION = {"CMYK": ".jpg"}


def photo(name: str, size: tuple[int, int]) -> Image.Image:
    """The photograph `name` (skimage.data.<name>()) resized to `size` (height, width)."""
    image = Image.fromarray(getattr(skimage.data, name)())
    return image.resize((size[1], size[0]), Image.BILINEAR)


def save(image: Image.Image, path_stem: str, mode: str = "RGB", ext: str = "") -> str:
    """Saves `image` converted to `mode` (PNG; JPEG for CMYK, or `ext`); returns the path."""
    path = path_stem + (ext or EXTENSION.get(mode, ".png"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    converted = image.convert("RGB").convert(mode) if mode in ("P", "CMYK") else \
        image.convert(mode)
    converted.save(path)
    return path


def as_rgb(path: str) -> np.ndarray:
    """uint8 [H, W, 3]: the file as PIL reads it, converted to RGB (torchvision's loader)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.uint8)


# A segmentation folder (jaxvision.data.folder layout) of photographs with hand-made masks.
CLASS_NAMES = ("person", "coin")  # classes 1, 2 (0: background)
IGNORE = 255
TRAIN = (("rocket", (33, 50), "RGBA"), ("chelsea", (40, 44), "RGB"))
# test images in file order: (photograph, (height, width), PIL mode); sizes and aspect ratios
# all differ
TEST = (("astronaut", (52, 60), "RGB"), ("cat", (38, 61), "CMYK"), ("coffee", (64, 40), "P"),
        ("coins", (45, 57), "L"))


def hand_made_mask(name: str, image: Image.Image) -> np.ndarray:
    """uint8 [H, W] labels: coins by brightness, else a person box and a triangle; void (255)
    top rows and right column."""
    w, h = image.size
    mask = np.zeros((h, w), np.uint8)
    if name == "coins":
        mask[np.asarray(image.convert("L")) > 120] = 2
    else:
        mask[h // 5: h // 2, w // 4: w // 2 + 3] = 1
        ys, xs = np.mgrid[:h, :w]
        mask[(ys > h // 2) & (xs - w // 3 < ys - h // 2) & (xs < 5 * w // 6)] = 2
    mask[:2, :] = IGNORE
    mask[:, -1] = IGNORE
    return mask


def write_segmentation_folder(root: str) -> None:
    """`root`/{train,test}/{images,masks} from TRAIN and TEST, and classes.txt with CLASS_NAMES."""
    for split, items in (("train", TRAIN), ("test", TEST)):
        for name, size, mode in items:
            image = photo(name, size)
            save(image, os.path.join(root, split, "images", name), mode)
            os.makedirs(os.path.join(root, split, "masks"), exist_ok=True)
            Image.fromarray(hand_made_mask(name, image)).save(
                os.path.join(root, split, "masks", f"{name}.png"))
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("\n".join(CLASS_NAMES))
