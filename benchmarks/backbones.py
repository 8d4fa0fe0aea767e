"""Train-step and eval throughput of jaxvision backbones against torchvision, on this machine.

    python benchmarks/backbones.py                   # resnet50, efficientnet_b0, vgg16, unet
    python benchmarks/backbones.py --sweep           # also time jax under each XLA_FLAGS candidate
    python benchmarks/backbones.py --models resnet50 --steps 3 --jax-impls auto plain

Models: torchvision's resnet50, efficientnet_b0, vgg16 at `--size` (224), and `unet`: the model
and AdamW optimiser of configs/unet.py (depth 3, width 16, SAME, BatchNorm) on its 64x64 inputs,
against the same U-Net written in torch below (`TorchUNet`). `--jax-impls` times jaxvision with
its CPU layer forms ('auto', see jaxvision.layers.cpu_conv) and/or with them off ('plain', the
library convolutions and XLA's select-and-scatter max pool backward), interleaved with torch, so
before/after and the torch ratio come from the same minutes of machine load.
`os.getloadavg()` is recorded before and after each model (the dev machine is shared; a figure
taken under load is provisional), and `--peak` measures XLA's float32 2048^3 matmul rate.

Train step: jaxvision = one jitted pure function (forward, softmax cross-entropy,
`jax.value_and_grad`, optax SGD with momentum, BatchNorm statistics updated, buffers donated);
torchvision = `loss.backward()` + `torch.optim.SGD(momentum=0.9).step()` on the same batch.
Eval: forward in inference mode. Throughput is images/s from the median of `--steps` timed
steps after `--warmup` untimed ones (after compiling), jax and torch interleaved in rounds
(the cores are shared, so the load drifts), each timed step preceded by an untimed step of the
same framework (see `_interleaved`). The ratio is jaxvision / torchvision (>1: jaxvision
is faster).

The script restarts itself under tcmalloc (`jaxvision.allocator`; `--allocator glibc` keeps
glibc's malloc), the allocator PyTorch's CPU tuning guide recommends too: under glibc XLA's
per-step temporaries are page-faulted in again every step (EfficientNet-B0: 937k faults, jax
1604 -> 1040 ms a step under tcmalloc, torch 1158 -> 940 ms).

XLA flags must be set before jax is imported, so the sweep runs each candidate in a subprocess
(`--jax-only --json`). Unless XLA_FLAGS is already set, the script uses DEFAULT_XLA_FLAGS, the
best setting found by the sweep on the 2-core CPU this project develops on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# XLA flags. `import jaxvision` itself adds jaxvision.xla_cpu_flags.CPU_FLAGS (convolutions on
# XLA's Eigen kernels instead of YNNPACK, jaxlib 0.10's default), the one setting that won
# reproducibly: in two runs of this script 15 minutes apart (load ~1, interleaved with torch)
# VGG16 trained 0.96 -> 2.13 img/s, EfficientNet-B0 4.6 -> 6.0, the U-Net 74 -> 69 (no gain);
# the sweep's "ynn convolutions" row turns it off. Earlier
# sweeps (load 4-7): XNN graph fusion, oneDNN (with or without the custom call) and fast math
# showed no reproducible gain, and `--xla_cpu_use_thunk_runtime` is no longer supported. The
# other CPU win is a layout/algorithm change, not a flag: depthwise convs as shifted slices
# (jaxvision.layers.depthwise), 4-12x faster than XLA's grouped conv on CPU.
DEFAULT_XLA_FLAGS = ""
PAUSE_S = 0.5  # idle time before each timed step, longer than OpenMP's 200 ms spin
CANDIDATE_FLAGS = {  # label: XLA_FLAGS (jaxvision's CPU flags are added unless the label says)
    "jaxvision default": "",
    "ynn convolutions": "",  # JAXVISION_XLA_CPU_FLAGS=0: jaxlib's own default
    "onednn": "--xla_cpu_use_onednn=true",
    "onednn custom call": ("--xla_cpu_use_onednn=true "
                           "--xla_cpu_experimental_onednn_custom_call=true"),
    "xnn graph fusion": "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
    "fast math": "--xla_cpu_enable_fast_math=true",
}


def _interleaved(fns: dict, batch: int, warmup: int, steps: int) -> dict[str, float]:
    """images/s of each callable from the median of `steps` timed calls, taken in rounds
    (a, b, a, b, ...) so that load from other processes on shared cores hits all alike.

    In each round a callable runs once untimed, then once timed: a training loop runs its
    framework's steps back to back, and the first step after the other framework's is not one
    of those (on the 2-core dev machine a jax EfficientNet-B0 step right after a torch step ran
    at 3.8-5.4 images/s against 6.9-7.1 back to back, even after a 2 s pause; torch's first
    step after jax is slowed as well). Each timed call also follows a pause: torch's OpenMP
    workers and XLA's Eigen pool spin-wait for a while after their work."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(steps):
        for k, fn in fns.items():
            fn()
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: batch / sorted(t)[len(t) // 2] for k, t in times.items()}


def jax_steps(name: str, batch: int, size: int, impl: str = "auto") -> tuple[dict, float]:
    """{'train', 'eval'} callables that run one jaxvision step to completion; compile seconds.

    `impl` sets `jaxvision.layers.cpu_conv.IMPL` while the steps are traced (compiled here)."""
    from jaxvision.layers import cpu_conv

    previous, cpu_conv.IMPL = cpu_conv.IMPL, impl
    try:
        if name == "unet":
            return _jax_unet_steps(batch)
        return _jax_backbone_steps(name, batch, size)
    finally:
        cpu_conv.IMPL = previous


def _jax_unet_steps(batch: int) -> tuple[dict, float]:
    import jax

    from benchmarks.common import unet_training
    from jaxvision.train.step import make_train_step

    model, task, tx, init_fn, host_batch = unet_training(batch)
    state = [jax.jit(init_fn)(jax.random.key(0), host_batch)]
    data = jax.device_put(host_batch)
    step = jax.jit(make_train_step(model, task, tx), donate_argnums=0)
    key = jax.random.key(1)

    def run_train():
        state[0], metrics = step(state[0], data, key)
        metrics["loss"].block_until_ready()

    evaluate = jax.jit(lambda v, x: model.apply(v, x, train=False)[0])

    def run_eval():
        s = state[0]
        evaluate({"params": s.params, "batch_stats": s.batch_stats},
                 data["image"]).block_until_ready()

    t0 = time.perf_counter()
    run_train()
    run_eval()
    return {"train": run_train, "eval": run_eval}, time.perf_counter() - t0


def _jax_backbone_steps(name: str, batch: int, size: int) -> tuple[dict, float]:
    import jax
    import jax.numpy as jnp
    import optax

    from jaxvision.models import get_model

    model = get_model(name, num_classes=1000)
    x = jax.random.normal(jax.random.key(0), (batch, size, size, 3), jnp.float32)
    y = jax.random.randint(jax.random.key(1), (batch,), 0, 1000)
    variables = jax.jit(lambda x: model.init(
        {"params": jax.random.key(2), "dropout": jax.random.key(3)}, x, train=False))(x[:1])
    params, batch_stats = variables["params"], variables.get("batch_stats", {})
    tx = optax.sgd(0.01, momentum=0.9)
    opt_state = tx.init(params)

    def train_step(params, batch_stats, opt_state, x, y, key):
        def loss_fn(p):
            (logits, _), updates = model.apply(
                {"params": p, "batch_stats": batch_stats}, x, train=True,
                mutable=["batch_stats"], rngs={"dropout": key})
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, updates["batch_stats"]

        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        deltas, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, deltas), new_stats, opt_state, loss

    step = jax.jit(train_step, donate_argnums=(0, 1, 2))
    state = [params, batch_stats, opt_state]
    key = jax.random.key(4)

    def run_train():
        p, s, o, loss = step(*state, x, y, key)
        state[:] = [p, s, o]
        loss.block_until_ready()

    evaluate = jax.jit(lambda v, x: model.apply(v, x, train=False)[0])

    def run_eval():
        evaluate({"params": state[0], "batch_stats": state[1]}, x).block_until_ready()

    t0 = time.perf_counter()
    run_train()
    run_eval()
    return {"train": run_train, "eval": run_eval}, time.perf_counter() - t0


def torch_unet(num_classes: int, depth: int, base_width: int):
    """configs/unet.py's U-Net in torch: per level two (3x3 conv pad 1, no bias, BN, ReLU), 2x2
    max pool; 2x2/2 transposed conv up, concat [skip, up], two conv-BN-ReLU; 1x1 head."""
    import torch
    from torch import nn

    from benchmarks.common import torch_conv_bn

    def double(cin, cout):
        return nn.Sequential(torch_conv_bn(cin, cout, 3, 1), torch_conv_bn(cout, cout, 3, 1))

    class TorchUNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [base_width * 2**i for i in range(depth + 1)]
            self.down = nn.ModuleList(double(3 if i == 0 else widths[i - 1], widths[i])
                                      for i in range(depth))
            self.bottleneck = double(widths[depth - 1], widths[depth])
            self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2)
                                    for i in range(depth))
            self.decoder = nn.ModuleList(double(2 * widths[i], widths[i]) for i in range(depth))
            self.head = nn.Conv2d(widths[0], num_classes, 1)

        def forward(self, x):
            skips = []
            for block in self.down:
                x = block(x)
                skips.append(x)
                x = torch.nn.functional.max_pool2d(x, 2)
            x = self.bottleneck(x)
            for i in reversed(range(depth)):
                x = self.decoder[i](torch.cat([skips[i], self.up[i](x)], 1))
            return self.head(x)

    return TorchUNet()


def torch_steps(name: str, batch: int, size: int) -> dict:
    """{'train', 'eval'} callables that run one torchvision (or `torch_unet`) step."""
    import torch

    from benchmarks.common import define_torchvision_schemas

    define_torchvision_schemas()
    import torchvision

    torch.manual_seed(0)
    if name == "unet":
        from configs import unet as unet_config

        config = unet_config.get_config()
        kw = config.model_kwargs
        model = torch_unet(4, kw["depth"], kw["base_width"])
        size = config.data.image_size
        x = torch.randn(batch, 3, size, size)
        y = torch.randint(0, 4, (batch, size, size))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    else:
        model = getattr(torchvision.models, name)(num_classes=1000)
        x = torch.randn(batch, 3, size, size)
        y = torch.randint(0, 1000, (batch,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def run_train():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    def run_eval():
        model.eval()
        with torch.inference_mode():
            model(x)

    return {"train": run_train, "eval": run_eval}


def _label(impl: str) -> str:
    return "jax" if impl == "auto" else f"jax-{impl}"


def bench(name: str, args, with_torch: bool) -> dict:
    """images/s for jax (each of `args.jax_impls`, and torch) train and eval steps, timed
    interleaved; compile seconds; load averages before and after."""
    res = {"load_before": os.getloadavg()}
    fns = {}
    for impl in args.jax_impls:
        steps, res[f"{_label(impl)} compile_s"] = jax_steps(name, args.batch, args.size, impl)
        fns.update({f"{_label(impl)} {k}": f for k, f in steps.items()})
    if with_torch:
        fns.update({f"torch {k}": f for k, f in torch_steps(name, args.batch, args.size).items()})
    # train steps first (all frameworks), then eval steps, so each group is timed together
    for phase in ("train", "eval"):
        res.update(_interleaved({k: f for k, f in fns.items() if k.endswith(phase)},
                                args.batch, args.warmup, args.steps))
    res["load_after"] = os.getloadavg()
    return res


def _sweep(args) -> dict[str, dict]:
    results = {}
    for label, flags in CANDIDATE_FLAGS.items():
        env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
        if label == "ynn convolutions":
            env["JAXVISION_XLA_CPU_FLAGS"] = "0"
        cmd = [sys.executable, __file__, "--jax-only", "--json", "--models", *args.models,
               "--jax-impls", *args.jax_impls, "--allocator", args.allocator,
               "--batch", str(args.batch), "--size", str(args.size), "--steps", str(args.steps),
               "--warmup", str(args.warmup)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            results[label] = {"error": proc.stderr.strip().splitlines()[-1:]}
        else:
            results[label] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  swept {label!r}: {results[label]}", file=sys.stderr, flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+",
                        default=["resnet50", "efficientnet_b0", "vgg16", "unet"])
    parser.add_argument("--jax-impls", nargs="+", default=["auto"], choices=["auto", "plain"],
                        help="jaxvision.layers.cpu_conv.IMPL values to time (plain = before)")
    parser.add_argument("--peak", action="store_true", help="measure the float32 matmul peak")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="time jax under each XLA flag set")
    parser.add_argument("--jax-only", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON line of results")
    parser.add_argument("--allocator", choices=["tcmalloc", "glibc"], default="tcmalloc",
                        help="restart under tcmalloc (both frameworks share the process)")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from jaxvision.allocator import loaded_allocator, reexec_with_tcmalloc

    if args.allocator == "tcmalloc":
        reexec_with_tcmalloc()
    os.environ.setdefault("XLA_FLAGS", DEFAULT_XLA_FLAGS)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jaxvision  # noqa: F401  (its XLA:CPU flags must be set before the peak starts JAX)

    res = {}
    if args.peak:
        from benchmarks.common import matmul_peak_flops

        load = os.getloadavg()
        res["matmul_peak_gflops"] = matmul_peak_flops() / 1e9
        res["matmul_peak_load"] = load
    for m in args.models:
        res[m] = bench(m, args, with_torch=not args.jax_only)
        print(f"  {m}: {json.dumps(res[m])}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(res))
        return

    print(f"\nbatch {args.batch}, {args.size}x{args.size} (unet: 64x64), {args.steps} timed steps, "
          f"{os.cpu_count()} CPUs, allocator {loaded_allocator()}, "
          f"XLA_FLAGS={os.environ['XLA_FLAGS']!r} (+ jaxvision's CPU flags where not set)")
    if args.peak:
        print(f"float32 2048^3 matmul: {res['matmul_peak_gflops']:.1f} GFLOP/s "
              f"(load average before {res['matmul_peak_load'][0]:.2f})")
    labels = [_label(i) for i in args.jax_impls]
    nan = float("nan")
    for phase in ("train", "eval"):
        cols = labels + ([] if args.jax_only else ["torch"])
        print(f"\n{phase} (images/s; ratio = jax / torch)")
        print(f"{'model':<16} {'load 1/5 min':>13} " + " ".join(f"{c:>10}" for c in cols) +
              ("" if args.jax_only else " " + " ".join(f"{c + '/torch':>16}" for c in labels)))
        for m in args.models:
            r = res[m]
            vals = [r.get(f"{c} {phase}", nan) for c in cols]
            line = (f"{m:<16} {r['load_before'][0]:>6.2f}/{r['load_before'][1]:<6.2f} "
                    + " ".join(f"{v:>10.2f}" for v in vals))
            if not args.jax_only:
                line += " " + " ".join(f"{v / vals[-1]:>16.2f}" for v in vals[:-1])
            print(line)

    if args.sweep:
        results = _sweep(args)
        print("\nXLA flag sweep: jax images/s train / eval (each row its own process; compare "
              "with the jaxvision default row, the load on shared cores drifts)")
        for label, r in results.items():
            cells = ("  ".join(f"{m} {r[m]['jax train']:.2f} / {r[m]['jax eval']:.2f}"
                               for m in args.models) if "error" not in r else r["error"])
            print(f"  {label:<22} {CANDIDATE_FLAGS[label]!r:<60} {cells}")


if __name__ == "__main__":
    main()
