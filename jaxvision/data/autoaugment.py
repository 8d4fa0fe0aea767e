"""AutoAugment (Cubuk et al., CVPR 2019), the ImageNet policy, on uint8 images with PIL.

A policy is 25 sub-policies of two ops `(name, probability, magnitude bin)`; per image one
sub-policy is drawn uniformly and each of its ops runs with its probability, at its bin's
magnitude with a random sign for the signed ops. Op definitions, magnitude ranges (10 bins) and
the table are torchvision's (`transforms.v2.AutoAugment`, `AutoAugmentPolicy.IMAGENET`):
geometric ops use nearest resampling and fill the uncovered area with `fill` (torchvision's
default 0; TensorFlow's EfficientNet code fills grey 128).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

POLICIES = ("none", "imagenet")
NUM_BINS = 10
# (op, probability, magnitude bin or None), two per sub-policy (the paper's appendix)
IMAGENET_POLICY = (
    (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
    (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
    (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
    (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
    (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
    (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
    (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
    (("Invert", 0.6, None), ("Equalize", 1.0, None)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
    (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
    (("Color", 0.4, 0), ("Equalize", 0.6, None)),
    (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
    (("Invert", 0.6, None), ("Equalize", 1.0, None)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
)
# op -> (magnitude at bin 0, at the last bin, signed); Posterize's bits are rounded
_RANGES = {"ShearX": (0.0, 0.3, True), "ShearY": (0.0, 0.3, True),
           "TranslateX": (0.0, 150 / 331, True), "TranslateY": (0.0, 150 / 331, True),
           "Rotate": (0.0, 30.0, True), "Brightness": (0.0, 0.9, True),
           "Color": (0.0, 0.9, True), "Contrast": (0.0, 0.9, True),
           "Sharpness": (0.0, 0.9, True), "Posterize": (8.0, 4.0, False),
           "Solarize": (1.0, 0.0, False)}
OPS = (*_RANGES, "AutoContrast", "Equalize", "Invert")
_ENHANCE = {"Brightness": ImageEnhance.Brightness, "Color": ImageEnhance.Color,
            "Contrast": ImageEnhance.Contrast, "Sharpness": ImageEnhance.Sharpness}


def magnitude(op: str, bin_index: int | None, height: int, width: int) -> float:
    """The unsigned magnitude of `op` at `bin_index` (of NUM_BINS, evenly spaced over the op's
    range): shear tan(angle), translate pixels (up to 150/331 of the side), rotate degrees,
    enhance factor - 1, posterize bits, solarize threshold / 255; 0 for the ops without one.
    float32 bins as torchvision's."""
    if op not in OPS:
        raise ValueError(f"autoaugment op: expected one of {OPS}, got {op!r}")
    if op not in _RANGES:
        return 0.0
    if bin_index is None or not 0 <= bin_index < NUM_BINS:
        raise ValueError(f"autoaugment {op} magnitude bin: expected 0..{NUM_BINS - 1}, got "
                         f"{bin_index!r}")
    low, high, _ = _RANGES[op]
    scale = {"TranslateX": width, "TranslateY": height}.get(op, 1.0)
    value = _linspace32(low, high * scale, bin_index)
    return float(round(value)) if op == "Posterize" else value


def _linspace32(start: float, end: float, i: int) -> float:
    """Bin i of NUM_BINS float32 values evenly spaced from start to end, as torch.linspace
    computes them (a float32 step, one fused multiply-add from the start for the first half and
    from the end for the second), so the factors are torchvision's to the bit."""
    start32, end32 = np.float32(start), np.float32(end)
    step = float((end32 - start32) / np.float32(NUM_BINS - 1))
    if i < NUM_BINS // 2:
        return float(np.float32(float(start32) + step * i))
    return float(np.float32(float(end32) - step * (NUM_BINS - 1 - i)))


def apply_op(image: np.ndarray, op: str, value: float, fill: int = 0) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [H, W, 3]: `op` at the signed magnitude `value` (as
    `magnitude` gives it, negated for the other direction)."""
    pil = Image.fromarray(np.asarray(image, np.uint8))
    fill3 = (fill,) * 3
    if op in ("ShearX", "ShearY", "TranslateX", "TranslateY"):
        if op == "ShearX":  # output (x, y) reads input (x + m y, y): the paper's matrix
            matrix = (1, value, 0, 0, 1, 0)
        elif op == "ShearY":
            matrix = (1, 0, 0, value, 1, 0)
        elif op == "TranslateX":  # whole pixels, truncated toward zero
            matrix = (1, 0, -int(value), 0, 1, 0)
        else:
            matrix = (1, 0, 0, 0, 1, -int(value))
        pil = pil.transform(pil.size, Image.AFFINE, matrix, Image.NEAREST, fillcolor=fill3)
    elif op == "Rotate":  # degrees counter-clockwise about the centre
        pil = pil.rotate(value, Image.NEAREST, fillcolor=fill3)
    elif op in _ENHANCE:
        pil = _ENHANCE[op](pil).enhance(1.0 + value)
    elif op == "Posterize":
        pil = ImageOps.posterize(pil, int(value))
    elif op == "Solarize":
        pil = ImageOps.solarize(pil, 255.0 * value)
    elif op == "AutoContrast":
        pil = ImageOps.autocontrast(pil)
    elif op == "Equalize":
        pil = ImageOps.equalize(pil)
    elif op == "Invert":
        pil = ImageOps.invert(pil)
    else:
        raise ValueError(f"autoaugment op: expected one of {OPS}, got {op!r}")
    return np.asarray(pil, np.uint8)


def autoaugment_params(rng: np.random.Generator, height: int, width: int,
                       policy=IMAGENET_POLICY) -> tuple[tuple[str, float], ...]:
    """The (op, signed magnitude) pairs to apply to one image: a sub-policy drawn uniformly,
    each of its ops kept with its probability, signed ops negated with probability 1/2. Draws
    the same count of numbers whatever is kept."""
    sub_policy = policy[int(rng.integers(len(policy)))]
    ops = []
    for op, probability, bin_index in sub_policy:
        keep, negate = rng.random() < probability, rng.random() < 0.5
        if keep:
            value = magnitude(op, bin_index, height, width)
            signed = op in _RANGES and _RANGES[op][2]
            ops.append((op, -value if signed and negate else value))
    return tuple(ops)


def autoaugment(image: np.ndarray, rng: np.random.Generator, policy=IMAGENET_POLICY,
                fill: int = 0) -> np.ndarray:
    """One AutoAugment draw: uint8 [H, W, 3] (float input is rounded) -> uint8 [H, W, 3]."""
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    for op, value in autoaugment_params(rng, *image.shape[:2], policy=policy):
        image = apply_op(image, op, value, fill)
    return image

