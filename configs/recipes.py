"""Shared pieces of the reference recipes (configs/coco/, configs/voc/): the COCO training set
size torchvision's epochs count (the VOC references count steps), and the `init_from_map`
entries that place an ImageNet VGG-16 checkpoint (`python -m jaxvision.weights.torchvision
--model vgg16 ... --no-head`) in a detector.
"""

from __future__ import annotations

COCO_TRAIN_IMAGES = 117_266  # train2017 images with annotations: torchvision's training set

VGG16_CONVS = tuple(f"conv{b}_{i}" for b, n in enumerate((2, 2, 3, 3, 3), start=1)
                    for i in range(1, n + 1))


def steps_per_epoch(images: int, batch: int) -> int:
    """Full batches in one pass over `images` (the last partial batch dropped)."""
    return images // batch


def vgg16_map(convs_to: str = "", fc_to: str | None = None) -> tuple[str, ...]:
    """`config.init_from_map` for an ImageNet VGG-16 checkpoint: its 13 convs to
    `<convs_to>/conv{b}_{i}` and, with `fc_to`, fc6 and fc7 to `<fc_to>/fc6`, `<fc_to>/fc7` (the
    box head of Ren et al.'s and Girshick's detectors); an empty prefix is the top level."""
    def under(prefix: str, name: str) -> str:
        return f"{prefix}/{name}" if prefix else name

    entries = tuple(f"{c}:{under(convs_to, c)}" for c in VGG16_CONVS)
    if fc_to is not None:
        entries += tuple(f"{fc}:{under(fc_to, fc)}" for fc in ("fc6", "fc7"))
    return entries
