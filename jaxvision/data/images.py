"""Reading image files for the folder, ImageFolder and COCO builders (errors that name the file),
and the source that decodes stored file bytes."""

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


class DecodedImages:
    """Random access over a prepared split whose `image` is an image file's bytes: each example
    is read with `image` decoded to uint8 [H, W, 3] (any PIL mode -> RGB; BadImageError naming
    the example's `file_name`)."""

    def __init__(self, base):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index):
        example = dict(self.base[index])
        name = example.get("file_name", f"<example {index}>")
        name = name.decode() if isinstance(name, bytes) else str(name)
        example["image"] = read_rgb(name, bytes(example["image"]))
        return example

    def __repr__(self) -> str:
        return f"DecodedImages({len(self)} examples)"
