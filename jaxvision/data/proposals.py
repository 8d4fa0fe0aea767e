"""Selective-search proposals for a data set, computed once in worker processes, cached on disk
and padded to a fixed count: the `proposals [P, 4]` / `proposals_valid [P]` fields R-CNN and
Fast R-CNN read (computed offline, as in the papers).

`config.data.proposals.method = 'selective_search'` makes `load_splits` wrap both splits in
`WithProposals` over `cached_proposals(...)`; the example transforms then move the proposals
with the image like ground-truth boxes.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import shutil

import numpy as np
from tqdm.auto import tqdm

from jaxvision.ops.proposals import selective_search

METHODS = ("none", "selective_search")


def _pool(processes: int | None):
    """A 'spawn' pool of `processes` workers (None: os.cpu_count()), or None for 0 / 1."""
    if processes is not None and processes <= 1:
        return contextlib.nullcontext(None)
    return multiprocessing.get_context("spawn").Pool(processes)


def _check(max_proposals, processes) -> None:
    if int(max_proposals) < 1:
        raise ValueError(f"max_proposals: expected a positive int, got {max_proposals}")
    if processes is not None and int(processes) < 0:
        raise ValueError(f"processes: expected None or an int >= 0, got {processes}")


def _pad(results, max_proposals: int) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.zeros((len(results), max_proposals, 4), np.float32)
    valid = np.zeros((len(results), max_proposals), bool)
    for i, b in enumerate(results):
        boxes[i, :len(b)] = b
        valid[i, :len(b)] = True
    return boxes, valid


def _images(images):
    images = [np.asarray(img) for img in images]
    for i, img in enumerate(images):
        if img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"images[{i}]: expected [H, W, 3], got shape {img.shape}")
    return images


def selective_search_batch(images, max_proposals: int, processes: int | None = 2, **kwargs
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Runs `jaxvision.ops.selective_search` on each image and pads to `max_proposals`.

    images: a sequence of [H_i, W_i, 3] uint8 (or float in [0, 255]) images, or [N, H, W, 3];
    max_proposals: P, the padded count (an image's proposals beyond P, in selective search's
    ranking, are dropped); processes: worker processes ('spawn' pool; None: os.cpu_count(),
    0 or 1: in this process); kwargs: selective_search's (ks, strategy, min_size, seed).
    Returns (boxes float32 [N, P, 4] xyxy in each image's pixels, zeros where padded;
    valid bool [N, P]), in image order.
    """
    _check(max_proposals, processes)
    images = _images(images)
    run = functools.partial(selective_search, max_boxes=int(max_proposals), **kwargs)
    with _pool(processes if len(images) > 1 else 0) as pool:
        results = pool.map(run, images, chunksize=1) if pool is not None else map(run, images)
        return _pad(list(results), int(max_proposals))


def image_proposals(image, settings) -> tuple[np.ndarray, np.ndarray]:
    """One image's proposals as the data pipeline computes and pads them: `settings` is
    `config.data.proposals` (max_proposals, ks, strategy, min_size, seed); image [H, W, 3].
    Returns (boxes float32 [P, 4] xyxy, valid bool [P])."""
    boxes, valid = selective_search_batch(
        [image], settings.max_proposals, processes=0, ks=tuple(settings.ks),
        strategy=settings.strategy, min_size=settings.min_size, seed=settings.seed)
    return boxes[0], valid[0]


def _save(path: str, **arrays) -> None:
    """np.savez to a temporary name, then renamed: a crash never leaves a half-written file."""
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def cached_proposals(source, path: str, max_proposals: int, *, processes: int | None = 2,
                     save_every: int = 256, desc: str = "selective search", **kwargs
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Selective-search proposals of every image of `source` (`len`, `[i]['image']`), read
    from the `.npz` file `path` or computed and written there.

    Computed `save_every` images at a time in `processes` workers, with a progress bar; each
    finished chunk is saved under `path + '.parts/'` first, so an interrupted run resumes at
    its last chunk. Returns (boxes float32 [N, P, 4] xyxy in the source image's pixels, valid
    bool [N, P]), P = max_proposals; kwargs: selective_search's (ks, strategy, min_size, seed).
    """
    _check(max_proposals, processes)
    n, p = len(source), int(max_proposals)
    if os.path.exists(path):
        with np.load(path) as saved:
            boxes, valid = saved["boxes"], saved["valid"]
        if boxes.shape != (n, p, 4) or valid.shape != (n, p):
            raise ValueError(f"proposals cache {path}: expected boxes [{n}, {p}, 4] for this "
                             f"source, got {boxes.shape}; delete the file to recompute")
        return boxes, valid
    parts = path + ".parts"
    os.makedirs(parts, exist_ok=True)
    run = functools.partial(selective_search, max_boxes=p, **kwargs)
    chunks = []
    with _pool(processes) as pool, tqdm(total=n, desc=desc, unit="image") as bar:
        imap = pool.imap if pool is not None else map
        for start in range(0, n, int(save_every)):
            stop = min(n, start + int(save_every))
            part = os.path.join(parts, f"{start:09d}-{stop:09d}.npz")
            if not os.path.exists(part):
                images = _images(source[i]["image"] for i in range(start, stop))
                results = []
                for found in imap(run, images):
                    results.append(found)
                    bar.update(1)
                boxes, valid = _pad(results, p)
                _save(part, boxes=boxes, valid=valid)
            else:
                bar.update(stop - start)
            with np.load(part) as saved:
                chunks.append((saved["boxes"], saved["valid"]))
    boxes = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros((0, p, 4), np.float32)
    valid = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros((0, p), bool)
    _save(path, boxes=boxes, valid=valid)
    shutil.rmtree(parts, ignore_errors=True)
    return boxes, valid


class WithProposals:
    """A source whose example i gains `proposals` = boxes[i] [P, 4] float32 xyxy (the source
    image's pixels) and `proposals_valid` = valid[i] [P] bool."""

    def __init__(self, base, boxes: np.ndarray, valid: np.ndarray):
        if len(boxes) != len(base) or len(valid) != len(base):
            raise ValueError(f"proposals: expected one row per example ({len(base)}), got "
                             f"{len(boxes)} boxes and {len(valid)} valid rows")
        self.base, self.boxes, self.valid = base, boxes, valid

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index):
        return {**self.base[index], "proposals": self.boxes[index],
                "proposals_valid": self.valid[index]}

    def __repr__(self) -> str:
        return f"WithProposals({self.base!r}, P={self.boxes.shape[1]})"
