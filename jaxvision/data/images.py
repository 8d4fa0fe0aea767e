"""Reading image files for the folder, ImageFolder, COCO and VOC builders (errors that name the
file), the EXIF-aware listed-size check, and the source that decodes stored file bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


class BadImageError(ValueError):
    """An image file that is missing, unreadable or not an image (the message names it)."""


def read_rgb(path: str, data: bytes | None = None) -> np.ndarray:
    """uint8 [H, W, 3] from the image file `path` (or its bytes `data`); any failure to read or
    decode it raises BadImageError naming `path`."""
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as image:
            return np.asarray(image.convert("RGB"), np.uint8)
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise BadImageError(f"image file {path}: expected a readable image, got "
                            f"{type(error).__name__}: {error}") from error


def read_bytes(path: str) -> bytes:
    """The file's bytes, after checking that it decodes as an image (BadImageError if not)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise BadImageError(f"image file {path}: expected a readable file, got "
                            f"{type(error).__name__}: {error}") from error
    read_rgb(path, data)
    return data


EXIF_ORIENTATION = 0x0112
SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that turn the picture by 90 degrees


def check_listed_size(path: str, data: bytes, listed_hw, where: str, *,
                      listed_as: str = "the listed size") -> tuple[int, int]:
    """(height, width) of the image `data` (the file `path`); ValueError from `where` when it is
    not `listed_hw` (an entry None: not listed), naming the fix when the file's EXIF orientation
    swaps its sides (the listed size is then the size a viewer shows, not the stored pixels')."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        orientation = image.getexif().get(EXIF_ORIENTATION)
    listed = tuple(None if v is None else int(v) for v in listed_hw)
    if all(v is None or v == s for v, s in zip(listed, (height, width), strict=True)):
        return height, width
    message = (f"{where}: expected {listed_as} {listed[0]}x{listed[1]} (height x width), got "
               f"{height}x{width} in {path}")
    if listed == (width, height) and orientation in SWAPS_SIDES:
        message += (f"; the file's EXIF orientation {orientation} swaps its sides: save the "
                    f"pixels rotated (PIL ImageOps.exif_transpose) or fix {listed_as}")
    raise ValueError(message)


class DecodedImages:
    """Random access over a prepared split whose `image` is an image file's bytes: each example
    is read with `image` decoded to uint8 [H, W, 3] (any PIL mode -> RGB; BadImageError naming
    the example's `file_name`, else its `image_id`). Used by the folder, ImageFolder and COCO
    builders' sources, and VOC's."""

    def __init__(self, base):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index):
        example = dict(self.base[index])
        name = example.get("file_name", f"<image id {int(example.get('image_id', index))}>")
        name = name.decode() if isinstance(name, bytes) else str(name)
        example["image"] = read_rgb(name, bytes(example["image"]))
        return example

    def __repr__(self) -> str:
        return f"DecodedImages({len(self)} examples)"
