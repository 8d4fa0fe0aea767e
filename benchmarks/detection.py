"""Detector speed on this CPU: Faster R-CNN R50-FPN (inference, train step, per-stage
breakdown), SSD300 and YOLOv3 inference images/s, jaxvision against torchvision.

    python -m benchmarks.detection                          # full: 800x1088, batch 1 and 8
    python -m benchmarks.detection --models ssd300 yolov3 --batch 1 8 --steps 5
    python -m benchmarks.detection --quick                  # small sizes, 1 step (the test's)
    python -m benchmarks.detection --models faster_rcnn --train-size 400 544   # see README

At 800x1088 the train step (batch 2, both frameworks in one process) was OOM-killed at 24 GB on
the 23 GB dev machine: `--train-size` times it on smaller images (inference stays 800x1088).

Faster R-CNN: jaxvision `get_model('faster_rcnn', backbone='resnet50_fpn', num_classes=91)` with
the weights of a randomly initialised torchvision `fasterrcnn_resnet50_fpn(weights=None,
weights_backbone=None)` imported by `from_torchvision`; torchvision runs the same weights as its
fine-tuning configuration (FrozenBatchNorm2d, trainable_backbone_layers=3: jaxvision's default),
on the same already normalised image, its transform set to the identity (image_mean 0, std 1,
min_size / max_size the image's sides, so it does not resize). Inference: batch 1, jaxvision
jitted with the postprocess; the train step: batch 2, a jitted `value_and_grad` of the summed
losses + optax SGD (momentum 0.9) against `loss.backward()` + `torch.optim.SGD`. The cls_score
weights are scaled (CLS_SCALE) in both so that the random heads give a full set of detections
and the postprocess has real NMS work (as initialised, 91-way softmax scores sit under 0.05).

Per stage (jaxvision, batch 1): backbone (ResNet-50 + FPN), RPN (head, anchors, decoding, top-k,
proposal NMS), RoI heads (multi-scale RoI Align + TwoMLPHead + predictor), postprocess (decode,
per-class NMS, best 100), each a separately jitted call of the module's own parts (`nn.apply`)
on the previous stage's outputs; torchvision's the same parts on an ImageList.

torchvision's compiled nms / roi_align do not load here: `tests.torchvision_ops.register()`
supplies CPU implementations (test code: nms is a greedy Python loop over the kept boxes,
roi_align a chunked torch gather). The time torchvision spends inside them is counted and shown,
since a compiled kernel would take a fraction of it.

Single-stage: SSD300 (300x300, `from_torchvision('ssd300_vgg16', ...)`, beside torchvision's
ssd300_vgg16) and YOLOv3 (416x416, random init; torchvision has no YOLO) images/s at each
`--batch`, jaxvision jitted with the postprocess, beside Faster R-CNN's rate at batch 1.

Every figure is the median of `--steps` timed calls after `--warmup` untimed ones (after
compiling); jaxvision and torchvision calls are interleaved and each follows a pause (spinning
OpenMP / Eigen threads of one framework otherwise slow the other). The 1-minute load average is
read before every timed call and the row shows their mean: the machine is shared, and a figure
taken under load is an upper bound on time, its ratio noise.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

PAUSE_S = 0.5
CLS_SCALE = 8.0  # cls_score weight scale (both frameworks): sharp softmax, many detections
NUM_CLASSES = 91


# ------------------------------------------------------------------------------------ timing
def interleaved(fns: dict, warmup: int, steps: int) -> dict[str, dict]:
    """{name: {'s': median seconds, 'load': mean 1-min load average read before each timed call,
    'nms', 'roi_align': seconds inside torchvision's test ops during the median call}}, the
    callables timed in rounds (a, b, a, b, ...) after a pause each."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    runs = {k: [] for k in fns}
    loads = {k: [] for k in fns}
    for _ in range(steps):
        for k, fn in fns.items():
            time.sleep(PAUSE_S)
            loads[k].append(os.getloadavg()[0])
            CLOCK.reset()
            start = time.perf_counter()
            fn()
            runs[k].append((time.perf_counter() - start, CLOCK.seconds["nms"],
                            CLOCK.seconds["roi_align"]))
    out = {}
    for k, r in runs.items():
        t, nms, roi = sorted(r)[len(r) // 2]
        out[k] = dict(s=t, load=sum(loads[k]) / len(loads[k]), nms=nms, roi_align=roi)
    return out


class _OpClock:
    """Seconds torchvision spends in the registered test nms / roi_align (patched wrappers)."""

    def __init__(self):
        self.seconds = {"nms": 0.0, "roi_align": 0.0}

    def install(self):
        import torchvision.ops.boxes as boxes
        import torchvision.ops.poolers as poolers

        def wrap(fn, key):
            def timed(*a, **k):
                start = time.perf_counter()
                out = fn(*a, **k)
                self.seconds[key] += time.perf_counter() - start
                return out
            return timed

        boxes.nms = wrap(boxes.nms, "nms")
        poolers.roi_align = wrap(poolers.roi_align, "roi_align")

    def reset(self):
        self.seconds = dict.fromkeys(self.seconds, 0.0)


CLOCK = _OpClock()


def torch_setup():
    """torchvision with the tests' CPU nms / roi_align registered (and clocked)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import define_torchvision_schemas
    from tests import torchvision_ops

    define_torchvision_schemas()
    if getattr(torch_setup, "done", False):
        return
    torchvision_ops.register()
    CLOCK.install()
    torch_setup.done = True


# ------------------------------------------------------------------------------ Faster R-CNN
def faster_rcnn_pair(size, num_classes=NUM_CLASSES, **kwargs):
    """(torch model in eval, jaxvision model, its variables) on the same random weights;
    kwargs: thresholds / sample sizes by torchvision's names, given to both."""
    import torch
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d

    from jaxvision.models import get_model
    from jaxvision.weights import from_torchvision

    torch.manual_seed(0)
    ref = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes)
    with torch.no_grad():
        ref.roi_heads.box_predictor.cls_score.weight.mul_(CLS_SCALE)
    state = ref.state_dict()
    # the fine-tuning configuration (torchvision's with pretrained weights; jaxvision's default)
    body = _resnet_fpn_extractor(resnet50(norm_layer=FrozenBatchNorm2d), 3)
    h, w = size
    tv = FasterRCNN(body, num_classes=num_classes, min_size=min(h, w), max_size=max(h, w),
                    image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0], **kwargs)
    tv.load_state_dict(state)
    tv.eval()
    variables = from_torchvision("fasterrcnn_resnet50_fpn",
                                 {k: v.numpy() for k, v in state.items()})
    model = get_model("faster_rcnn", backbone="resnet50_fpn", num_classes=num_classes, **kwargs)
    return tv, model, variables


def _targets(rng, batch, size, num_classes, n=4):
    """Random ground truth: n boxes per image, at least 32 px a side, labels 1..K-1."""
    import numpy as np

    h, w = size
    xy = rng.uniform(0, [w - 64, h - 64], (batch, n, 2))
    wh = rng.uniform(32, [w / 2, h / 2], (batch, n, 2))
    boxes = np.concatenate([xy, np.minimum(xy + wh, [w, h])], -1).astype(np.float32)
    labels = rng.integers(1, num_classes, (batch, n)).astype(np.int32)
    return boxes, labels


def bench_faster_rcnn(size, train_batch, warmup, steps, num_classes=NUM_CLASSES,
                      train_size=None, **kwargs):
    """Rows for inference (batch 1), the train step (at train_size, default size) and the
    per-stage breakdown."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import torch
    from torchvision.models.detection.image_list import ImageList

    from jaxvision.models.detection.roi_heads import postprocess_detections

    tv, model, variables = faster_rcnn_pair(size, num_classes, **kwargs)
    h, w = size
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(1, h, w, 3)).astype(np.float32)
    xt1 = torch.from_numpy(x1.transpose(0, 3, 1, 2).copy())
    jx1 = jnp.asarray(x1)

    # ---- inference, batch 1
    infer = jax.jit(lambda v, x: model.apply(v, x, train=False))
    t0 = time.perf_counter()
    out = jax.block_until_ready(infer(variables, jx1))
    compile_infer = time.perf_counter() - t0

    def jax_infer():
        jax.block_until_ready(infer(variables, jx1)["boxes"])

    def torch_infer():
        with torch.inference_mode():
            return tv([xt1[0]])

    n_jax = int(out["valid"].sum())
    n_torch = len(torch_infer()[0]["boxes"])

    # ---- train step, batch `train_batch`
    train_size = tuple(train_size or size)
    xb = rng.normal(size=(train_batch, *train_size, 3)).astype(np.float32)
    boxes, labels = _targets(rng, train_batch, train_size, num_classes)
    tgt = dict(boxes=jnp.asarray(boxes), labels=jnp.asarray(labels),
               boxes_valid=jnp.ones(labels.shape, bool))
    tx = optax.sgd(0.01, momentum=0.9)
    params0 = jax.tree.map(jnp.copy, variables["params"])  # the step donates its buffers
    state = [params0, tx.init(params0)]
    rest = {k: v for k, v in variables.items() if k != "params"}
    jxb = jnp.asarray(xb)

    def train_step(params, opt_state, x, targets, key):
        def loss_fn(p):
            losses = model.apply({"params": p, **rest}, x, train=True, targets=targets,
                                 rngs={"sample": key})["losses"]
            return sum(losses.values())

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    step = jax.jit(train_step, donate_argnums=(0, 1))
    key = jax.random.key(0)

    def jax_train():
        p, o, loss = step(*state, jxb, tgt, key)
        state[:] = [p, o]
        loss.block_until_ready()

    t0 = time.perf_counter()
    jax_train()
    compile_train = time.perf_counter() - t0

    tv_train = [torch.from_numpy(im.transpose(2, 0, 1).copy()) for im in xb]
    tv_targets = [dict(boxes=torch.from_numpy(b), labels=torch.from_numpy(lab).long())
                  for b, lab in zip(boxes, labels, strict=True)]
    opt = torch.optim.SGD([p for p in tv.parameters() if p.requires_grad], lr=0.01,
                          momentum=0.9)

    def torch_train():
        tv.transform.min_size, tv.transform.max_size = (min(train_size),), max(train_size)
        tv.train()
        opt.zero_grad(set_to_none=True)
        loss = sum(tv(tv_train, tv_targets).values())
        loss.backward()
        opt.step()
        tv.eval()
        tv.transform.min_size, tv.transform.max_size = (min(size),), max(size)

    res = interleaved({"jax infer": jax_infer, "torch infer": torch_infer}, warmup, steps)
    # ---- per stage, batch 1 (jaxvision: each stage jitted on the previous stage's outputs)
    params = variables
    sizes = jnp.array([[h, w]], jnp.int32)
    heads = model.roi_heads

    backbone = jax.jit(nn.apply(lambda m, x: m.backbone(x, train=False)[1], model))
    feats = jax.block_until_ready(backbone(params, jx1))
    rpn = jax.jit(nn.apply(lambda m, f: m.rpn([f[k] for k in model.rpn_levels], (h, w), sizes,
                                              False)[:2], model))
    proposals, pvalid = jax.block_until_ready(rpn(params, feats))
    roi = jax.jit(nn.apply(lambda m, f, p: m.roi_heads._boxes(
        [f[k] for k in model.roi_levels], (h, w), p), model))
    cls, reg = jax.block_until_ready(roi(params, feats, proposals))
    post = jax.jit(lambda c, r, p, pv: postprocess_detections(
        c, r, p, pv, sizes, score_thresh=heads.box_score_thresh, nms_thresh=heads.box_nms_thresh,
        detections_per_img=heads.box_detections_per_img, weights=heads.bbox_reg_weights))
    jax.block_until_ready(post(cls, reg, proposals, pvalid))

    images = ImageList(xt1, [(h, w)])
    with torch.inference_mode():
        t_feats = tv.backbone(xt1)
        t_props, _ = tv.rpn(images, t_feats)
        rh = tv.roi_heads
        t_cls, t_reg = rh.box_predictor(rh.box_head(rh.box_roi_pool(t_feats, t_props,
                                                                     images.image_sizes)))

    def tstage(fn):
        def run():
            with torch.inference_mode():
                fn()
        return run

    stages = {
        "backbone": (lambda: jax.block_until_ready(backbone(params, jx1)),
                     tstage(lambda: tv.backbone(xt1))),
        "RPN": (lambda: jax.block_until_ready(rpn(params, feats)),
                tstage(lambda: tv.rpn(images, t_feats))),
        "RoI heads": (lambda: jax.block_until_ready(roi(params, feats, proposals)),
                      tstage(lambda: rh.box_predictor(rh.box_head(rh.box_roi_pool(
                          t_feats, t_props, images.image_sizes))))),
        "postprocess": (lambda: jax.block_until_ready(post(cls, reg, proposals, pvalid)),
                        tstage(lambda: rh.postprocess_detections(t_cls, t_reg, t_props,
                                                                 images.image_sizes))),
    }
    stage_res = {}
    for name, (jf, tf) in stages.items():
        r = interleaved({"jax": jf, "torch": tf}, warmup, steps)
        stage_res[name] = dict(jax=r["jax"], torch=r["torch"])
    # last: the torch train steps move its weights
    res.update(interleaved({"jax train": jax_train, "torch train": torch_train}, warmup, steps))
    return dict(res=res, stages=stage_res,
                compile=dict(infer=compile_infer, train=compile_train),
                detections=(n_jax, n_torch), proposals=int(pvalid.sum()),
                torch_proposals=len(t_props[0]))


# ------------------------------------------------------------------------------ single stage
@functools.cache
def single_stage_model(name, size, num_classes=NUM_CLASSES):
    """(jaxvision model, variables, jitted inference, torchvision model or None), built once per
    model for every batch size."""
    import jax
    import jax.numpy as jnp

    from jaxvision.models import get_model

    tm = None
    if name == "ssd300":
        import torch
        import torchvision

        from jaxvision.weights import from_torchvision

        torch.manual_seed(0)
        tm = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None,
                                                       num_classes=num_classes).eval()
        tm.transform.image_mean = [0.0, 0.0, 0.0]
        tm.transform.image_std = [1.0, 1.0, 1.0]
        tm.transform.min_size = (size,)
        tm.transform.max_size = size
        with torch.no_grad():  # sharper class scores: a full set of detections (see tests)
            for conv in tm.head.classification_head.module_list:
                conv.weight.mul_(3.0)
        variables = from_torchvision("ssd300_vgg16", tm.state_dict())
        model = get_model("ssd300", num_classes=num_classes)
    elif name == "yolov3":
        model = get_model("yolov3")
        variables = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(
            jnp.zeros((1, size, size, 3)))
    else:
        raise ValueError(f"model: expected 'ssd300' or 'yolov3', got {name!r}")
    infer = jax.jit(lambda v, x: model.apply(v, x, train=False))
    return model, variables, infer, tm


def single_stage_fns(name, batch, size, num_classes=NUM_CLASSES):
    """{'jax': fn, 'torch': fn or None} each running one inference call on a random batch
    [batch, size, size, 3]; jit compile seconds."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    _, variables, infer, tm = single_stage_model(name, size, num_classes)
    x = np.random.default_rng(1).normal(size=(batch, size, size, 3)).astype(np.float32)
    jx = jnp.asarray(x)
    t0 = time.perf_counter()
    jax.block_until_ready(infer(variables, jx))
    compile_s = time.perf_counter() - t0

    def jfn():
        jax.block_until_ready(infer(variables, jx)["boxes"])

    tfn = None
    if tm is not None:
        import torch

        tx = [torch.from_numpy(im.transpose(2, 0, 1).copy()) for im in x]

        def tfn():
            with torch.inference_mode():
                tm(tx)

    return {"jax": jfn, "torch": tfn}, compile_s


# ------------------------------------------------------------------------------------- main
def _ms(s):
    """Milliseconds: whole ones from 10 ms, two significant digits below (a sub-millisecond
    stage of the quick run would otherwise print 0)."""
    ms = s * 1e3
    return f"{ms:.0f}" if ms >= 10 else f"{ms:.2g}"


def _excl(r):
    """torchvision ms without the time inside the tests' nms / roi_align."""
    return _ms(r["s"] - r["nms"] - r["roi_align"])


def report(args, frcnn, single) -> str:
    """The markdown tables (one string)."""
    import jax
    import torch

    lines = [f"jax {jax.__version__}, torch {torch.__version__} ({torch.get_num_threads()} "
             f"threads), {os.cpu_count()} CPUs, {args.num_classes} classes; median of "
             f"{args.steps} timed calls after {args.warmup} warm-up; load = mean 1-min load "
             f"average read before each timed call. 'excl. test ops': torchvision's time minus "
             f"its time inside the tests' Python nms and torch roi_align (stand-ins for its "
             f"compiled kernels, which do not load here).", ""]
    size = args.frcnn_size
    if frcnn is not None:
        r = frcnn["res"]
        lines += [f"#### Faster R-CNN R50-FPN, {size[0]}x{size[1]}", "",
                  "| call | jaxvision ms | load | torchvision ms | load | torchvision ms excl. "
                  "test ops | torch / jax |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for k, label in (("infer", "inference, batch 1 (postprocess included)"),
                         ("train", f"train step, batch {args.train_batch} (fwd+bwd+SGD)"
                                   + ("" if args.train_size == size else
                                      f" at {args.train_size[0]}x{args.train_size[1]}"))):
            rj, rt = r[f"jax {k}"], r[f"torch {k}"]
            lines.append(f"| {label} | {_ms(rj['s'])} | {rj['load']:.1f} | {_ms(rt['s'])} | "
                         f"{rt['load']:.1f} | {_excl(rt)} | {rt['s'] / rj['s']:.2f} |")
        nj, nt = frcnn["detections"]
        lines += ["", f"Detections (batch 1): jaxvision {nj}, torchvision {nt}; proposals "
                  f"{frcnn['proposals']} / {frcnn['torch_proposals']}. jit compile: inference "
                  f"{frcnn['compile']['infer']:.0f} s, train step {frcnn['compile']['train']:.0f}"
                  " s.", ""]
        st = frcnn["stages"]
        tot_j = sum(v["jax"]["s"] for v in st.values())
        tot_t = sum(v["torch"]["s"] for v in st.values())
        lines += ["| stage (inference, batch 1) | jaxvision ms | share | torchvision ms | share |"
                  " torchvision ms excl. test ops | load |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, v in st.items():
            rj, rt = v["jax"], v["torch"]
            lines.append(f"| {name} | {_ms(rj['s'])} | {rj['s'] / tot_j:.0%} | {_ms(rt['s'])} | "
                         f"{rt['s'] / tot_t:.0%} | {_excl(rt)} | "
                         f"{(rj['load'] + rt['load']) / 2:.1f} |")
        lines.append(f"| sum of stages | {_ms(tot_j)} | | {_ms(tot_t)} | | | |")
        lines.append("")
    if single:
        lines += ["#### Inference images/s (postprocess included)", "",
                  "| model | input | batch | jaxvision img/s | load | torchvision img/s | "
                  "excl. test ops | load | jaxvision x Faster R-CNN | torchvision x Faster "
                  "R-CNN |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        base = {}
        if ("faster_rcnn", 1) in single:
            row = single[("faster_rcnn", 1)]
            base = {fw: 1 / row[fw]["s"] for fw in ("jax", "torch")}
        for (name, batch), row in single.items():
            inp = f"{size[0]}x{size[1]}" if name == "faster_rcnn" else (
                f"{row['size']}x{row['size']}")
            cells = [f"{batch / row['jax']['s']:.2f}", f"{row['jax']['load']:.1f}"]
            t = row.get("torch")
            if t is None:
                cells += ["-", "-", "-"]
            else:
                excl = t["s"] - t["nms"] - t["roi_align"]
                cells += [f"{batch / t['s']:.2f}", f"{batch / excl:.2f}", f"{t['load']:.1f}"]
            for fw in ("jax", "torch"):
                ok = row.get(fw) is not None and fw in base
                cells.append(f"{batch / row[fw]['s'] / base[fw]:.1f}" if ok else "-")
            lines.append(f"| {name} | {inp} | {batch} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["faster_rcnn", "ssd300", "yolov3"],
                        choices=["faster_rcnn", "ssd300", "yolov3"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--train-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="Faster R-CNN train-step image size (default 800 1088: "
                             "OOM-killed at 24 GB RSS on the 23 GB dev machine)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, 1 step, no warm-up (for the test)")
    args = parser.parse_args(argv)
    args.frcnn_size, args.train_batch, args.ssd_size, args.yolo_size = (800, 1088), 2, 300, 416
    args.train_size = tuple(args.train_size or args.frcnn_size)
    args.num_classes, args.frcnn_kwargs = NUM_CLASSES, {}
    if args.quick:  # every row, at a fraction of the work (YOLOv3 keeps its 81 classes)
        args.frcnn_size, args.yolo_size, args.num_classes = (256, 320), 128, 5
        args.train_size = args.frcnn_size
        args.frcnn_kwargs = dict(rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50,
                                 rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=50,
                                 box_batch_size_per_image=32, box_detections_per_img=20)
        args.steps, args.warmup, args.batch = 1, 0, [1, 2]
    return args


def main(argv=None) -> str:
    args = parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    torch_setup()
    frcnn, single = None, {}
    if "faster_rcnn" in args.models:
        frcnn = bench_faster_rcnn(args.frcnn_size, args.train_batch, args.warmup, args.steps,
                                  args.num_classes, args.train_size, **args.frcnn_kwargs)
        res = frcnn["res"]
        single[("faster_rcnn", 1)] = {"jax": res["jax infer"], "torch": res["torch infer"]}
        print(f"faster_rcnn done: {res}", file=sys.stderr, flush=True)
    for name in ("ssd300", "yolov3"):
        if name not in args.models:
            continue
        size = args.ssd_size if name == "ssd300" else args.yolo_size
        for batch in args.batch:
            fns, _ = single_stage_fns(name, batch, size, args.num_classes)
            run = {k: f for k, f in fns.items() if f is not None}
            r = interleaved(run, args.warmup, args.steps)
            single[(name, batch)] = {"jax": r["jax"], "torch": r.get("torch"), "size": size}
            print(f"{name} batch {batch} done: {r}", file=sys.stderr, flush=True)
    table = report(args, frcnn, single)
    print(table)
    return table


if __name__ == "__main__":
    main()
