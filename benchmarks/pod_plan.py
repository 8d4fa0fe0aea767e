"""The pod plan: what each reference recipe's full-size train step costs, from XLA's analysis.

    python -m benchmarks.pod_plan [recipes...] [--devices 8] [--mfu 0.4] [--json] [--no-compile]
    python -m benchmarks.pod_plan [recipes...] --topology v5e:2x4    # needs `pip install libtpu`

A recipe is a config file (`configs/imagenet/resnet50.py`, with `:variant` if it takes one) or
its dotted module (`configs.imagenet.resnet50`); by default every file under
configs/{coco,voc,imagenet,isbi}/. Its train step is built as the trainer builds it (task,
model, optimiser, `make_train_step`, the 'jit' mesh wrapper) for the recipe's global batch
split over `--devices` virtual CPU devices (fewer when the batch does not divide: their
greatest common divisor), from abstract inputs only (`jax.eval_shape`, `ShapeDtypeStruct`: no
parameter is allocated), traced as on an accelerator (`accelerator_forms`). Input shapes are
those of the recipe's own transforms applied to a blank `data.image_size` square image.
`--topology` compiles for the chips of a TPU slice instead, without a TPU (libtpu's deviceless
ahead-of-time compiler; minutes per recipe on 2 cores). Reported per recipe:

- params: trainable parameters.
- flops_per_image: XLA's cost analysis (HloCostAnalysis) of the lowered, not yet optimised
  train step, divided by the global batch. It counts 2 FLOPs per multiply-add of a convolution
  or dot, only for kernel taps that land inside the input (none on zero padding), over the
  forward pass, the weight gradients and every input gradient but the image's, plus 1 FLOP per
  output element of each elementwise op and reduction (BatchNorm, activations, loss, optimiser
  update). `flops_per_image_predict`: the same for the eval-mode predict function.
  `flops_per_image_compiled`: the compiled per-device program's count; XLA:CPU rewrites
  grouped (depthwise) convolutions into dense ones, so there it is ~10x EfficientNet's real
  count. With `--topology` the compiled TPU program's count is the one reported.
- bytes_per_device: the compiler's buffer assignment for one device's program
  (`memory_analysis`): arguments + outputs - aliased (the donated state) + temporaries.
  XLA:CPU computes bfloat16 convolutions in float32 and densifies grouped ones, so for bfloat16
  or depthwise models its temporaries overstate an accelerator's several times; `--topology`
  gives the TPU compiler's own figure.
- fits_16g / fits_32g / fits_80g: bytes_per_device <= 16 / 32 / 80 GiB (a runtime keeps some
  of a chip's memory for itself).
- step_s / run_h per chip: one chip doing the whole global batch at `--mfu` of its dense peak,
  `flops_per_image * global_batch / (peak * mfu)`, times `train.steps`; divide by the chip count
  for ideal data parallelism. Peaks (`CHIPS`): bfloat16 dense; a float32 recipe runs its
  matmuls as TF32 on an H100 (half the rate) and as one bfloat16 pass on a TPU (the default
  precision).
- lowers_tpu / lowers_cuda: `jax.export` of the train step, of the predict function and of
  the serving function `python -m jaxvision.export` exports (uint8 images at the eval input
  size -> postprocessed predictions, masks pasted) for that platform succeeds (no CPU-only
  operation, host callback or custom call leaks in); `lower_errors` says why not.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import math
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# the CPU device count is set in main(), before anything starts the JAX backend
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxvision.data import eval_batches, make_transforms  # noqa: E402
from jaxvision.export.serving import input_size, serving_function, traced_as  # noqa: E402
from jaxvision.models import get_model  # noqa: E402
from jaxvision.tasks import get_task  # noqa: E402
from jaxvision.train.loop import blank_example  # noqa: E402
from jaxvision.train.optim import build_optimizer  # noqa: E402
from jaxvision.train.parallel import JitMesh  # noqa: E402
from jaxvision.train.state import create_train_state  # noqa: E402
from jaxvision.train.step import make_train_step  # noqa: E402

RECIPE_DIRS = ("coco", "voc", "imagenet", "isbi")
GIB = 2**30
FITS = (16, 32, 80)  # GiB
# chip -> (bfloat16 dense peak, float32 matmul peak) in FLOP/s: NVIDIA's H100 SXM datasheet
# (989 bf16, 495 TF32), Google Cloud's TPU v5e (197) and v4 (275) pages
CHIPS = {"H100": (989e12, 495e12), "TPU v5e": (197e12, 197e12), "TPU v4": (275e12, 275e12)}
PLATFORMS = ("tpu", "cuda")
# the class count of a dataset (without background) by its name before any ':'
CLASSES = {"imagenet2012": 1000, "imagefolder": 1000, "coco": 80, "coco2017": 80, "voc": 20,
           "voc2007": 20, "voc2012": 20, "sbd": 20, "shapes": 3, "oxford_iiit_pet": 37}
DEFAULT_CLASSES = 2  # a dataset not in CLASSES (flagged `classes_assumed` in the row)


def discover(root: str = REPO) -> list[str]:
    """Every recipe file under configs/{coco,voc,imagenet,isbi}/ (relative paths, sorted)."""
    found = []
    for folder in RECIPE_DIRS:
        for path in sorted(glob.glob(os.path.join(root, "configs", folder, "*.py"))):
            if not os.path.basename(path).startswith("_"):
                found.append(os.path.relpath(path, root))
    return found


def load_recipe(spec: str):
    """(name, config) for `configs/<d>/<m>.py[:variant]` or `configs.<d>.<m>[:variant]`."""
    target, _, variant = spec.partition(":")
    if target.endswith(".py"):
        path = os.path.relpath(os.path.abspath(target), REPO)
        if path.startswith(".."):
            raise ValueError(f"recipe {spec!r}: expected a config file inside {REPO}")
        module = path[:-3].replace(os.sep, ".")
    else:
        module = target
    try:
        get_config = importlib.import_module(module).get_config
    except (ImportError, AttributeError) as error:
        raise ValueError(f"recipe {spec!r}: expected a config module with get_config(), "
                         f"got {error}") from error
    config = get_config(variant) if variant else get_config()
    name = module.removeprefix("configs.").replace(".", "/") + (f":{variant}" if variant else "")
    return name, config


def num_classes(dataset: str, override: int | None = None) -> tuple[int, bool]:
    """(classes, assumed) for `config.dataset`: `override`, else the CLASSES table, else
    DEFAULT_CLASSES with assumed=True."""
    if override is not None:
        return override, False
    key = dataset.split(":")[0]
    return (CLASSES[key], False) if key in CLASSES else (DEFAULT_CLASSES, True)


def accelerator_forms(platform: str = "gpu"):
    """While tracing, `jax.default_backend()` answers `platform`: jaxvision's layers and ops
    choose CPU-only forms (1x1 convs as matmuls, shifted depthwise convs, masked max pools,
    gather RoI pooling) when it says 'cpu', and an accelerator run traces the library ones."""
    return traced_as(platform)


def _abstract(tree, batch: int | None, sharding):
    """ShapeDtypeStructs of numpy `tree`'s leaves (leading axis replaced by `batch` if given)."""
    def one(x):
        x = np.asarray(x)
        shape = x.shape if batch is None else (batch, *x.shape[1:])
        return jax.ShapeDtypeStruct(shape, x.dtype, sharding=sharding)

    return jax.tree.map(one, tree)


def task_and_model(config, classes: int, axis_name=None):
    """The recipe's task (classes named class0, class1, ...) and model."""
    task = get_task(config.task, tuple(f"class{i}" for i in range(classes)),
                    **config.task_kwargs)
    model = get_model(config.model, num_classes=task.num_classes,
                      dtype=jnp.dtype(config.dtype), axis_name=axis_name, **config.model_kwargs)
    return task, model


def serving(config, classes: int, variables):
    """The recipe's serving function as `python -m jaxvision.export` exports it (uint8 images
    at the eval input size -> postprocessed predictions), jitted, with its abstract arguments
    (`variables`, one image)."""
    task, model = task_and_model(config, classes)
    serve = serving_function(config, task, model, np.arange(task.num_classes, dtype=np.int32))
    return jax.jit(serve), (variables, jax.ShapeDtypeStruct((1, *input_size(config), 3),
                                                             np.uint8))


def build(config, devices: list, classes: int):
    """The trainer's jitted train step and predict function for `config` on `devices`, with
    their abstract arguments: (step, predict, (state, train batch, key), (eval variables, eval
    batch)); batches sharded over `devices`, the state replicated."""
    parallel = JitMesh(devices)
    task, model = task_and_model(config, classes, parallel.axis_name)
    transform, eval_transform = make_transforms(config, task.fields)
    side = config.data.image_size
    example = blank_example(config, np.zeros((side, side, 3), np.uint8))
    train_one = jax.tree.map(lambda x: np.asarray(x)[None], transform(example, 0))
    eval_one = next(iter(eval_batches([example], eval_transform, global_batch=1)))
    tx = build_optimizer(config.optimizer, config.train.steps)

    def init(rng, batch):
        variables = task.init(model.clone(axis_name=None), rng, batch)
        return create_train_state(variables, tx, ema=config.ema_decay > 0)

    init_batch = {k: v for k, v in eval_one.items() if k not in ("example_valid",
                                                                  "example_index")}
    with accelerator_forms():
        state = jax.eval_shape(init, jax.eval_shape(jax.random.key, 0), init_batch)
    state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                        sharding=parallel.replicated), state)
    n = len(devices)
    train_batch = _abstract(train_one, config.train.batch_size, parallel.batch_sharding)
    eval_batch = _abstract(eval_one, -(-config.train.eval_batch_size // n) * n,
                           parallel.batch_sharding)
    key = jax.ShapeDtypeStruct((), jax.eval_shape(jax.random.key, 0).dtype,
                               sharding=parallel.replicated)
    step = parallel.jit_step(make_train_step(
        model, task, tx, axis_name=parallel.axis_name,
        grad_accum_steps=config.train.grad_accum_steps, ema_decay=config.ema_decay))
    predict = parallel.jit_predict(lambda variables, batch: task.predict(model, variables, batch))
    return step, predict, (state, train_batch, key), (state.eval_variables, eval_batch)


def exports(jitted, args, platform: str) -> str | None:
    """None if `jax.export` lowers `jitted(*args)` for `platform` ('tpu', 'cuda'), else why
    not (traced with the accelerator forms)."""
    try:
        with accelerator_forms():
            jax.export.export(jitted, platforms=[platform])(*args)
    except Exception as error:  # noqa: BLE001  (any failure to lower is the answer)
        return f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
    return None


def fits(nbytes: int, gib: int) -> bool:
    """Whether `nbytes` fit in `gib` GiB (exactly full fits)."""
    return nbytes <= gib * GIB


def projected(flops_per_image: float, global_batch: int, steps: int, dtype: str,
              mfu: float) -> tuple[dict, dict]:
    """({chip: step seconds}, {chip: run hours}) on one chip of each kind at `mfu`."""
    step_s, run_h = {}, {}
    for chip, (bf16, f32) in CHIPS.items():
        peak = f32 if dtype == "float32" else bf16
        step_s[chip] = flops_per_image * global_batch / (peak * mfu)
        run_h[chip] = step_s[chip] * steps / 3600
    return step_s, run_h


def _flops(analysis) -> float | None:
    """The 'flops' of a cost analysis (None where the compiler gives none)."""
    if isinstance(analysis, list):  # older jax: one dict per program
        analysis = analysis[0]
    return None if analysis is None else float(analysis["flops"])


def plan(name: str, config, devices: list, *, mfu: float = 0.4, compile: bool = True,
         export: bool = True, classes: int | None = None) -> dict:
    """One recipe's row (module docstring) on `devices` (virtual CPU devices, or a TPU
    topology's for deviceless compilation): sizes, FLOPs, memory, projected times, lowering."""
    global_batch = config.train.batch_size
    used = math.gcd(global_batch, len(devices))
    count, assumed = num_classes(config.dataset, classes)
    start = time.perf_counter()
    step, predict, train_args, predict_args = build(config, list(devices[:used]), count)
    state = train_args[0]
    row = dict(recipe=name, model=config.model, dataset=config.dataset, dtype=config.dtype,
               classes=count, classes_assumed=assumed, compiler=devices[0].device_kind,
               devices=used, global_batch=global_batch, per_device_batch=global_batch // used,
               steps=config.train.steps,
               params=sum(math.prod(x.shape) for x in jax.tree.leaves(state.params)),
               bytes_per_device=None, **{f"fits_{g}g": None for g in FITS},
               lowers_tpu=None, lowers_cuda=None)  # None: not compiled / not exported
    with accelerator_forms():
        lowered = step.lower(*train_args)
        predict_lowered = predict.lower(*predict_args)
    flops = _flops(lowered.cost_analysis())  # None for a TPU topology (no TPU client here)
    row["flops_per_image"] = None if flops is None else flops / global_batch
    predict_flops = _flops(predict_lowered.cost_analysis())
    row["flops_per_image_predict"] = (None if predict_flops is None else
                                      predict_flops / predict_args[1]["image"].shape[0])
    if compile:
        compiled = lowered.compile()
        memory = compiled.memory_analysis()
        sizes = dict(bytes_arguments=memory.argument_size_in_bytes,
                     bytes_outputs=memory.output_size_in_bytes,
                     bytes_aliased=memory.alias_size_in_bytes,
                     bytes_temporaries=memory.temp_size_in_bytes)
        row.update(sizes, bytes_per_device=(sizes["bytes_arguments"] + sizes["bytes_outputs"]
                                            - sizes["bytes_aliased"]
                                            + sizes["bytes_temporaries"]))
        row.update({f"fits_{g}g": fits(row["bytes_per_device"], g) for g in FITS})
        row["flops_per_image_compiled"] = (_flops(compiled.cost_analysis())
                                           / row["per_device_batch"])
        if row["flops_per_image"] is None:
            row["flops_per_image"] = row["flops_per_image_compiled"]
    if row["flops_per_image"] is not None:
        row["step_s"], row["run_h"] = projected(row["flops_per_image"], global_batch,
                                                config.train.steps, config.dtype, mfu)
        row["mfu"] = mfu
    if export:
        errors = {}
        serve = serving(config, count, predict_args[0])
        for platform in PLATFORMS:
            for what, (fn, args) in (("train_step", (step, train_args)),
                                     ("predict", (predict, predict_args)), ("serve", serve)):
                error = exports(fn, args, platform)
                if error:
                    errors[f"{platform} {what}"] = error
            row[f"lowers_{platform}"] = not any(k.startswith(platform) for k in errors)
        row["lower_errors"] = errors
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _gib(nbytes) -> str:
    return "-" if nbytes is None else f"{nbytes / GIB:.2f}"


def _gflop(flops) -> str:
    return "-" if flops is None else f"{flops / 1e9:.2f}"


def _yes(flag) -> str:
    return {True: "yes", False: "NO", None: "-"}[flag]


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    chips = " | ".join(f"{c} step s / run h" for c in CHIPS)
    lines = [f"| recipe | params | dtype | batch (per device x devices) | GFLOP/image train "
             f"(predict) | GiB/device (temporaries) | fits 16/32/80 GiB | {chips} | "
             "lowers tpu / cuda |",
             "|" + " --- |" * (9 + len(CHIPS) - 1)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['recipe']} | failed: {r['error']} |")
            continue
        times = " | ".join(f"{r['step_s'][c]:.3g} / {r['run_h'][c]:.3g}" if "step_s" in r
                           else "-" for c in CHIPS)
        fit = "/".join(_yes(r.get(f"fits_{g}g")) for g in FITS)
        classes = " (classes assumed)" if r["classes_assumed"] else ""
        lines.append(
            f"| {r['recipe']}{classes} | {r['params'] / 1e6:.2f} M | {r['dtype']} | "
            f"{r['global_batch']} ({r['per_device_batch']} x {r['devices']}) | "
            f"{_gflop(r['flops_per_image'])} ({_gflop(r['flops_per_image_predict'])}) | "
            f"{_gib(r.get('bytes_per_device'))} ({_gib(r.get('bytes_temporaries'))}) | {fit} | "
            f"{times} | {_yes(r.get('lowers_tpu'))} / {_yes(r.get('lowers_cuda'))} |")
    return "\n".join(lines)


def _set_device_count(count: int) -> None:
    """Asks XLA for `count` host devices (must run before the JAX backend starts)."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    os.environ["XLA_FLAGS"] = " ".join(
        [*flags, f"--xla_force_host_platform_device_count={count}"])


def plan_devices(count: int, topology: str = "") -> list:
    """`count` virtual CPU devices, or every chip of the TPU `topology` (e.g. 'v5e:2x4',
    'v4:2x2x2'; compiled deviceless by libtpu, which must be installed)."""
    if topology:
        from jax.experimental import topologies

        return list(topologies.get_topology_desc(platform="tpu",
                                                  topology_name=topology).devices)
    _set_device_count(count)
    if len(jax.devices()) < count:
        raise ValueError(f"--devices {count}: expected at most the {len(jax.devices())} CPU "
                         "devices JAX started with (XLA_FLAGS is read once, at start)")
    return jax.devices()[:count]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", help="config files or modules (default: all)")
    parser.add_argument("--devices", type=int, default=8, help="virtual CPU devices")
    parser.add_argument("--topology", default="",
                        help="compile for this TPU topology's chips instead (needs libtpu)")
    parser.add_argument("--mfu", type=float, default=0.4, help="model-FLOP utilisation")
    parser.add_argument("--classes", type=int, default=None,
                        help="class count for datasets not in the CLASSES table")
    parser.add_argument("--json", action="store_true", help="one JSON object per recipe")
    parser.add_argument("--no-compile", action="store_true",
                        help="lower only: no memory analysis (faster)")
    args = parser.parse_args(argv)
    if args.devices < 1 or not 0 < args.mfu <= 1:
        parser.error(f"expected --devices >= 1 and 0 < --mfu <= 1, got {args.devices}, "
                     f"{args.mfu}")
    devices = plan_devices(args.devices, args.topology)
    rows = []
    for spec in args.recipes or discover():
        try:
            name, config = load_recipe(spec)
            row = plan(name, config, devices, mfu=args.mfu, compile=not args.no_compile,
                       classes=args.classes)
        except Exception as error:  # noqa: BLE001  (one broken recipe must not hide the rest)
            row = dict(recipe=spec, error=f"{type(error).__name__}: {error}")
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"{row['recipe']}: {row.get('seconds', '-')} s", file=sys.stderr, flush=True)
    if not args.json:
        where = args.topology or f"{args.devices} virtual CPU devices"
        print(f"jax {jax.__version__}, {where}, MFU {args.mfu:.0%}, load average "
              f"{os.getloadavg()[0]:.2f}\n")
        print(table(rows))


if __name__ == "__main__":
    main()
