"""Where one train step's time goes, op by op: jaxvision (XLA:CPU thunks) beside torch.profiler.

    python benchmarks/profile_step.py --model resnet50 [--batch 16] [--impls auto plain]

jax: the step of benchmarks/backbones.py is compiled with its optimised HLO dumped, run once
untimed, then once under `jax.profiler`; every XLA thunk event is matched to its HLO
instruction and summed by kind (a fusion by what it contains: a convolution with its window, a
dot, select-and-scatter, reduce-window, a reduction, else elementwise). torch: one step under
`torch.profiler`, self CPU time per aten op. Load averages are printed with each profile.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time

DUMP = tempfile.mkdtemp(prefix="jaxvision_hlo_")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           f" --xla_dump_to={DUMP} --xla_dump_hlo_as_text").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_INSTR = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = [^=]*?\b([a-z][\w\-]*)\(")
_COMP = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$")
_WINDOW = re.compile(r"window=\{([^}]*)\}")


def _hlo_kinds(text: str) -> dict[str, str]:
    """{instruction name: kind} for every instruction of an optimised HLO module."""
    comps, current = {}, None
    for line in text.splitlines():
        m = _COMP.match(line)
        if m and "=" not in line.split("{")[0]:
            current = m.group(1)
            comps[current] = []
            continue
        m = _INSTR.match(line)
        if m and current is not None:
            comps[current].append((m.group(1), m.group(2), line))

    def kind(ops):
        for _, op, line in ops:
            if op == "convolution":
                w = _WINDOW.search(line)
                win = " ".join(p for p in (w.group(1).split() if w else [])
                               if p.startswith(("size", "stride", "lhs_dilate", "rhs_dilate")))
                return f"convolution {win}"
        opset = {op for _, op, _ in ops}
        for op, label in (("select-and-scatter", "select-and-scatter (max pool bwd)"),
                          ("reduce-window", "reduce-window (max pool fwd)"),
                          ("dot", "dot (matmul)"), ("custom-call", "custom-call"),
                          ("reduce", "reduction"), ("scatter", "scatter"),
                          ("gather", "gather"), ("reverse", "reverse (kernel flip)"),
                          ("transpose", "transpose"), ("pad", "pad"),
                          ("select", "select (masks, ReLU grads)")):
            if op in opset:
                return label
        return "elementwise / copy / other"

    out = {}
    for ops in comps.values():
        for name, op, line in ops:
            if op == "fusion":
                called = re.search(r"calls=%?([\w.\-]+)", line)
                out[name] = kind(comps.get(called.group(1), [])) if called else "fusion"
            else:
                out[name] = kind([(name, op, line)])
    return out


def jax_profile(model: str, batch: int, size: int, impl: str) -> tuple[dict, float, tuple]:
    """({kind: ms}, step ms, load average) for one jaxvision train step."""
    import jax
    from jax.profiler import ProfileData

    from benchmarks.backbones import jax_steps

    before = set(glob.glob(f"{DUMP}/*after_optimizations.txt"))
    steps, _ = jax_steps(model, batch, size, impl)
    modules = [_hlo_kinds(open(f).read())
               for f in set(glob.glob(f"{DUMP}/*after_optimizations.txt")) - before]
    steps["train"]()
    load = os.getloadavg()
    trace_dir = tempfile.mkdtemp(prefix="jaxvision_trace_")
    jax.profiler.start_trace(trace_dir)
    t0 = time.perf_counter()
    steps["train"]()
    step_ms = (time.perf_counter() - t0) * 1e3
    jax.profiler.stop_trace()
    data = ProfileData.from_file(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[-1])
    events = collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            for ev in line.events:
                events[ev.name] += ev.duration_ns / 1e6
    # the train step's module is the one whose instructions account for the most thunk time
    kinds = max(modules, key=lambda k: sum(v for n, v in events.items() if n in k))
    totals = collections.Counter()
    for name, ms in events.items():
        if name in kinds:
            totals[kinds[name]] += ms
    return dict(totals), step_ms, load


def torch_profile(model: str, batch: int, size: int) -> tuple[dict, float, tuple]:
    """({aten op: self CPU ms}, step ms, load average) for one torch train step."""
    import torch

    from benchmarks.backbones import torch_steps

    steps = torch_steps(model, batch, size)
    steps["train"]()
    load = os.getloadavg()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        steps["train"]()
        step_ms = (time.perf_counter() - t0) * 1e3
    totals = {e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()}
    return totals, step_ms, load


def _print(title, totals, step_ms, load, top):
    print(f"\n{title}: step {step_ms:.0f} ms (load average {load[0]:.2f} / {load[1]:.2f}); "
          f"attributed {sum(totals.values()):.0f} ms")
    print("| op | ms | share |\n| --- | --- | --- |")
    total = sum(totals.values()) or 1.0
    for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:top]:
        print(f"| {k} | {v:.0f} | {v / total:.0%} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--impls", nargs="+", default=["auto", "plain"])
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    for impl in args.impls:
        _print(f"jax {args.model} ({impl})",
               *jax_profile(args.model, args.batch, args.size, impl), args.top)
    if not args.no_torch:
        _print(f"torch {args.model}", *torch_profile(args.model, args.batch, args.size),
               args.top)


if __name__ == "__main__":
    main()
