"""scikit-image's photographs saved as a user would have them: several sizes and PIL modes."""

from __future__ import annotations

import os

import numpy as np
import skimage.data
from PIL import Image

NAMES = ("astronaut", "cat", "coffee", "rocket", "coins", "chelsea", "camera", "clock")
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
