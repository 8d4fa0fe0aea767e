"""Padded-pixel fraction of min/max-resized images (torchvision's 800 / 1,333 rule, padded to a
multiple of 32): one static max_size square against aspect-ratio buckets
(jaxvision.data.buckets).

    python -m benchmarks.padding [--coco instances_val2017.json] [--sizes 480x640,427x640,...]
        [--buckets 1.0 --buckets 0.8,1.25 ...] [--min-size 800] [--max-size 1333]

Sizes (height x width): a COCO annotation file's images (`--coco`), or `--sizes`, else
`ASSUMED_COCO_MIX`: a mix written from what is commonly reported about COCO (most images 640 px
on the longer side, three quarters landscape, 4:3 and 3:2 the usual shapes); it is not COCO's
measured histogram, which could not be found offline. It agrees with one published summary of
train2014 (90% of images with height / width between 0.6 and 1.5), and 92% of it is there.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from jaxvision.data.buckets import bucket_of, bucket_shapes, padded_fraction

# (height, width, percent of images): an assumption, see the module docstring
ASSUMED_COCO_MIX = (
    (480, 640, 30), (427, 640, 27), (360, 640, 3), (512, 640, 2), (375, 500, 3),
    (400, 640, 3), (320, 640, 2),  # landscape 70
    (640, 640, 3), (612, 612, 2),  # square 5
    (640, 480, 12), (640, 427, 10), (500, 375, 2), (640, 360, 1),  # portrait 25
)
# portrait / landscape; + 3:4 and 4:3; + 3:2 (configs/coco/faster_rcnn_r50_fpn.py); + 2:3
CANDIDATES = ((1.0,), (0.75, 1.0, 1.34), (0.75, 1.0, 1.34, 1.5), (0.66, 0.75, 1.0, 1.34, 1.5))


def assumed_sizes() -> np.ndarray:
    """[100, 2] (height, width): ASSUMED_COCO_MIX, one row per percent."""
    return np.array([(h, w) for h, w, n in ASSUMED_COCO_MIX for _ in range(n)])


def coco_sizes(path: str) -> np.ndarray:
    with open(path) as f:
        images = json.load(f)["images"]
    return np.array([(im["height"], im["width"]) for im in images])


def table(sizes: np.ndarray, candidates, min_size: int, max_size: int, divisible: int) -> str:
    rows = [f"{len(sizes)} images; min/max {min_size}/{max_size}, padded to /{divisible}",
            "| buckets (width / height boundaries) | shapes (H x W: share of images) "
            "| padded fraction |", "| --- | --- | --- |"]
    square = padded_fraction(sizes, None, min_size, max_size, divisible)
    side = -(-max_size // divisible) * divisible
    rows.append(f"| none (one square) | {side} x {side}: 100% | {square:.1%} |")
    for boundaries in candidates:
        shapes = bucket_shapes(boundaries, min_size, max_size, divisible)
        share = np.bincount(bucket_of(sizes, boundaries), minlength=len(shapes)) / len(sizes)
        described = ", ".join(f"{h} x {w}: {s:.0%}" for (h, w), s in zip(shapes, share,
                                                                          strict=True))
        fraction = padded_fraction(sizes, boundaries, min_size, max_size, divisible)
        rows.append(f"| {tuple(boundaries)} | {described} | {fraction:.1%} |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coco", help="a COCO annotation file: its images' sizes")
    parser.add_argument("--sizes", help="comma-separated HxW, e.g. 480x640,640x480")
    parser.add_argument("--buckets", action="append",
                        help="comma-separated boundaries (repeatable); default: a few sets")
    parser.add_argument("--min-size", type=int, default=800)
    parser.add_argument("--max-size", type=int, default=1333)
    parser.add_argument("--size-divisible", type=int, default=32)
    args = parser.parse_args(argv)
    if args.coco:
        sizes = coco_sizes(args.coco)
    elif args.sizes:
        sizes = np.array([[int(v) for v in s.split("x")] for s in args.sizes.split(",")])
    else:
        sizes = assumed_sizes()
    candidates = ([tuple(float(v) for v in b.split(",")) for b in args.buckets]
                  if args.buckets else CANDIDATES)
    print(table(sizes, candidates, args.min_size, args.max_size, args.size_divisible))


if __name__ == "__main__":
    main()
