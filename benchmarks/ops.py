"""Times jaxvision.ops against the peers that run here, on the same inputs; prints a table.

    python benchmarks/ops.py [--reps 5]

Peers: torchvision.ops.box_iou, torchvision's pure-Python `_roi_align` (its compiled kernels do
not load here), and a vectorised numpy greedy NMS (the Fast R-CNN `py_cpu_nms`). jaxvision is
timed jitted, after a warm-up call, with `block_until_ready`; RoI Align is timed with both
`impl='gather'` (the CPU default) and `impl='matmul'`. Ratio = peer / jaxvision (> 1 means
jaxvision is faster). Each row records the 1-minute load average taken just before it: the
machine is shared, and a figure taken under load (load >= 0.5 on these 2 cores) is an upper
bound, its ratio noise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

# torchvision's compiled ops do not load here; define the schemas it registers fakes for.
_lib = torch.library.Library("torchvision", "DEF")
_lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
import torchvision  # noqa: E402
from torchvision.ops.roi_align import _roi_align  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from jaxvision import ops  # noqa: E402


def timeit(fn, reps):
    """(median seconds, 1-minute load average before the timed calls)."""
    fn()  # warm-up / compile
    load = os.getloadavg()[0]
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), load


def numpy_nms(boxes, scores, thr, max_out):
    """Vectorised greedy NMS (Girshick's py_cpu_nms without the +1), stable descending order."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size and len(keep) < max_out:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][~(iou > thr)]
    return np.array(keep)


def random_boxes(rng, n, w=1088, h=800, lo=8, hi=300):
    xy = rng.uniform(0, [w - lo, h - lo], (n, 2))  # at least `lo` wide, inside the image
    wh = rng.uniform(lo, hi, (n, 2))
    return np.concatenate([xy, np.minimum(xy + wh, [w, h])], 1).astype(np.float32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []

    # IoU 2000 x 2000
    a, b = random_boxes(rng, 2000), random_boxes(rng, 2000)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    iou = jax.jit(ops.box_iou)
    ta, tb = torch.tensor(a), torch.tensor(b)
    rows.append(("box_iou 2000x2000", timeit(lambda: iou(ja, jb).block_until_ready(), args.reps),
                 "torchvision box_iou", timeit(lambda: torchvision.ops.box_iou(ta, tb), args.reps)))

    # NMS over 6000 RPN-like proposals (IoU 0.7, keep up to 2000)
    boxes = random_boxes(rng, 6000)
    scores = rng.uniform(size=6000).astype(np.float32)
    jbx, jsc = jnp.asarray(boxes), jnp.asarray(scores)
    nms = jax.jit(lambda bx, sc: ops.nms(bx, sc, 0.7, 2000))
    idx, valid = nms(jbx, jsc)
    ref = numpy_nms(boxes, scores, 0.7, 2000)
    assert np.array_equal(np.asarray(idx)[np.asarray(valid)], ref), "nms disagrees with numpy"
    rows.append(("nms 6000 -> <=2000 @0.7", timeit(lambda: nms(jbx, jsc)[0].block_until_ready(),
                                                   args.reps),
                 "numpy greedy nms",
                 timeit(lambda: numpy_nms(boxes, scores, 0.7, 2000), args.reps)))
    nms5 = jax.jit(lambda bx, sc: ops.nms(bx, sc, 0.5, 6000))
    rows.append(("nms 6000 -> all @0.5", timeit(lambda: nms5(jbx, jsc)[0].block_until_ready(),
                                                args.reps),
                 "numpy greedy nms", timeit(lambda: numpy_nms(boxes, scores, 0.5, 6000),
                                            args.reps)))

    # RoI Align: 512 boxes -> 7x7 on a [2, 50, 68, 256] map (stride 16 of 800x1088, batch 2)
    feat = rng.normal(size=(2, 50, 68, 256)).astype(np.float32)
    rois = random_boxes(rng, 512, w=1088, h=800, lo=16, hi=400)
    idx = np.repeat(np.arange(2, dtype=np.int32), 256)
    jf, jr, ji = jnp.asarray(feat), jnp.asarray(rois), jnp.asarray(idx)
    tf = torch.tensor(feat.transpose(0, 3, 1, 2).copy())
    trois = torch.tensor(np.concatenate([idx[:, None], rois], 1))
    # _roi_align is torch.compile'd (inductor) on first call; with sampling_ratio=-1 it
    # materialises a dense [K, C, oh, gh_max, ow, gw_max] grid and tries to allocate ~87 GB here,
    # so the adaptive case has no peer.
    peer = "torchvision _roi_align (compiled)"
    for sr in (2, -1):
        p_fwd = p_bwd = (float("nan"), float("nan"))
        if sr > 0:
            tg = tf.clone().requires_grad_(True)

            def torch_bwd(sr=sr, tg=tg):
                tg.grad = None
                _roi_align(tg, trois, 1 / 16, 7, 7, sr, False).sum().backward()

            p_fwd = timeit(lambda sr=sr: _roi_align(tf, trois, 1 / 16, 7, 7, sr, False),
                           args.reps)
            p_bwd = timeit(torch_bwd, args.reps)
        for impl in ("gather", "matmul"):
            fwd = jax.jit(lambda f, r, i, sr=sr, impl=impl: ops.roi_align(
                f, r, i, (7, 7), 1 / 16, sr, impl=impl))
            bwd = jax.jit(jax.grad(lambda f, sr=sr, impl=impl: jnp.sum(ops.roi_align(
                f, jr, ji, (7, 7), 1 / 16, sr, impl=impl))))
            if sr > 0:
                out = fwd(jf, jr, ji)
                tout = _roi_align(tf, trois, 1 / 16, 7, 7, sr, False)
                # boxes are inside the image: _roi_align's clamping agrees with the kernels
                np.testing.assert_allclose(np.asarray(out), tout.numpy().transpose(0, 2, 3, 1),
                                           rtol=1e-4, atol=1e-4)
            t_fwd = timeit(lambda fwd=fwd: fwd(jf, jr, ji).block_until_ready(), args.reps)
            t_bwd = timeit(lambda bwd=bwd: bwd(jf).block_until_ready(), args.reps)
            rows.append((f"roi_align {impl} fwd 512x7x7x256 sr={sr}", t_fwd, peer, p_fwd))
            rows.append((f"roi_align {impl} fwd+bwd sr={sr}", t_bwd, peer, p_bwd))

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"{'op':40s} {'jaxvision ms':>12s} {'load':>5s}  {'peer':33s} {'peer ms':>9s} "
          f"{'load':>5s} {'ratio':>6s}")
    for name, (tj, lj), peer, (tp, lp) in rows:
        print(f"{name:40s} {tj * 1e3:12.2f} {lj:5.2f}  {peer:33s} {tp * 1e3:9.2f} {lp:5.2f} "
              f"{tp / tj:6.2f}")


if __name__ == "__main__":
    main()
