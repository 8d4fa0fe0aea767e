"""Selective-search proposals for a set of images, computed in worker processes and padded to a
fixed count: the `proposals [N, P, 4]` / `proposals_valid [N, P]` fields R-CNN and Fast R-CNN
read (computed once, offline, as in the papers)."""

from __future__ import annotations

import functools
import multiprocessing

import numpy as np

from jaxvision.ops.proposals import selective_search


def selective_search_batch(images, max_proposals: int, processes: int | None = 2,
                           **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Runs `jaxvision.ops.selective_search` on each image and pads to `max_proposals`.

    images: a sequence of [H_i, W_i, 3] uint8 (or float in [0, 255]) images, or [N, H, W, 3];
    max_proposals: P, the padded count (an image's proposals beyond P, in selective search's
    ranking, are dropped); processes: worker processes ('spawn' pool; None: os.cpu_count(),
    0 or 1: in this process); kwargs: selective_search's (ks, strategy, min_size, seed).
    Returns (boxes float32 [N, P, 4] xyxy in each image's pixels, zeros where padded;
    valid bool [N, P]), in image order.
    """
    if int(max_proposals) < 1:
        raise ValueError(f"max_proposals: expected a positive int, got {max_proposals}")
    if processes is not None and int(processes) < 0:
        raise ValueError(f"processes: expected None or an int >= 0, got {processes}")
    images = list(images)
    for i, img in enumerate(images):
        shape = np.shape(img)
        if len(shape) != 3 or shape[-1] != 3:
            raise ValueError(f"images[{i}]: expected [H, W, 3], got shape {shape}")
    run = functools.partial(selective_search, max_boxes=int(max_proposals), **kwargs)
    if processes is not None and processes <= 1 or len(images) <= 1:
        results = [run(img) for img in images]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            results = pool.map(run, [np.asarray(img) for img in images], chunksize=1)
    boxes = np.zeros((len(images), int(max_proposals), 4), np.float32)
    valid = np.zeros((len(images), int(max_proposals)), bool)
    for i, b in enumerate(results):
        boxes[i, :len(b)] = b
        valid[i, :len(b)] = True
    return boxes, valid
