"""Serving export of a training run: the whole predict path (normalisation, model,
postprocessing, mask paste) as one `jax.export` artifact that runs with jax alone, or as a
TensorFlow SavedModel (DESIGN.md, "Export").

    python -m jaxvision.export --workdir W --out DIR [--format stablehlo|savedmodel] \
        [--batch N] [--platforms cpu,cuda,tpu]

DIR/model.jax_exported holds `jax.export.Exported.serialize()` bytes (symbolic batch unless
`batch`); `jax.export.deserialize(open(p, 'rb').read()).call(images)` runs it on uint8 images
[B, H, W, 3] at the run's eval input size (`signature.json`'s input_shape). The CPU program is
traced with jaxvision's CPU forms (as the in-process predict runs on the CPU), cuda and tpu with
the accelerator ones (`jax.lax.platform_dependent`).
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

FORMATS = ("stablehlo", "savedmodel")
PLATFORMS = ("cpu", "cuda", "tpu")
ARTIFACT, SIGNATURE, SAVED_MODEL = "model.jax_exported", "signature.json", "saved_model"


def check_args(format: str, batch, platforms) -> tuple[str, ...]:
    """ValueError naming the argument for a bad format, batch or platform list; returns the
    platforms as a tuple."""
    if format not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS}, got {format!r}")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)
                              or batch < 1):
        raise ValueError(f"batch: expected a positive integer (or None: symbolic), got {batch!r}")
    if format == "savedmodel" and batch is None:
        raise ValueError("batch: expected a fixed batch size with format 'savedmodel' "
                         "(TensorFlow cannot refine a symbolic batch through top_k), got None")
    platforms = tuple(platforms)
    bad = [p for p in platforms if p not in PLATFORMS]
    if not platforms or bad or len(set(platforms)) != len(platforms):
        raise ValueError(f"platforms: expected distinct names among {PLATFORMS}, got "
                         f"{list(platforms)}")
    return platforms


def export_run(workdir: str, out_dir: str, *, format: str = "stablehlo", batch: int | None = None,
               platforms=PLATFORMS) -> str:
    """Exports the run in `workdir` (latest checkpoint, saved config and dataset.json) into
    `out_dir`: model.jax_exported and signature.json, plus saved_model/ for
    format='savedmodel'. Returns out_dir."""
    platforms = check_args(format, batch, platforms)
    if format == "savedmodel":
        from jaxvision.export.savedmodel import require_tensorflow

        require_tensorflow()
    from jaxvision.export.serving import category_ids, input_size, serving_function
    from jaxvision.predict import load_run
    from jaxvision.train.run_config import load_dataset_info

    workdir = os.path.abspath(os.path.expanduser(workdir))
    if not os.path.isfile(os.path.join(workdir, "config.json")):
        raise ValueError(f"workdir: expected a training run with config.json in {workdir}, "
                         "found none")
    trainer, state = load_run(workdir)
    if trainer.config.data.proposals.method != "none":
        raise ValueError("config.data.proposals.method: expected 'none' for export (selective "
                         f"search runs on the host), got {trainer.config.data.proposals.method!r}")
    label_map = (load_dataset_info(workdir) or {}).get("label_map")
    ids = category_ids(trainer.task, label_map if trainer.config.task == "detection" else None)
    variables = trainer.parallel.to_host(state.eval_variables)  # one copy (jit or pmap)
    height, width = input_size(trainer.config)
    serve = serving_function(trainer.config, trainer.task, trainer.model, ids)
    exported = export_serving(lambda images: serve(variables, images), (height, width), batch,
                              platforms)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, ARTIFACT), "wb") as f:
        f.write(exported.serialize())
    step = int(trainer.parallel.to_host(state.step))
    signature = describe(exported, trainer.task, ids, workdir, step)
    with open(os.path.join(out_dir, SIGNATURE), "w") as f:
        json.dump(signature, f, indent=2)
        f.write("\n")
    if format == "savedmodel":
        from jaxvision.export.savedmodel import save

        save(exported, os.path.join(out_dir, SAVED_MODEL))
    return out_dir


def export_serving(serve, size: tuple[int, int], batch: int | None, platforms):
    """`jax.export.Exported` of `serve(images)` (the variables embedded as constants) on uint8
    [batch or symbolic 'b', H, W, 3] for `platforms`, the CPU traced with the CPU forms and
    accelerators with theirs."""
    from jaxvision.export.serving import traced_as

    def forms(platform):
        def branch(images):
            with traced_as(platform):
                return serve(images)
        return branch

    accelerators = [p for p in platforms if p != "cpu"]
    if "cpu" not in platforms:
        fn = forms("gpu")
    elif not accelerators:
        fn = forms("cpu")
    else:
        def fn(images):
            return jax.lax.platform_dependent(images, cpu=forms("cpu"), default=forms("gpu"))
    dims = (batch,) if batch else jax.export.symbolic_shape("b")
    spec = jax.ShapeDtypeStruct((*dims, *size, 3), np.uint8)
    return jax.export.export(jax.jit(fn), platforms=platforms)(spec)


def describe(exported, task, ids, workdir: str, step: int) -> dict:
    """signature.json's contents (DESIGN.md): input shape (null: any batch) and dtype, classes
    with their dataset ids, each output's shape and dtype, the source run and step."""
    def shape(aval):
        return [d if isinstance(d, int) else None for d in aval.shape]

    names = task.class_names
    out = exported.out_tree.unflatten(exported.out_avals)
    first = 1 if "boxes" in out else 0  # a detector's background is no class it reports
    return {"input_shape": shape(exported.in_avals[0]), "input_dtype": "uint8",
            "classes": [{"id": int(ids[k]), "name": names[k]} for k in range(first, len(names))],
            "outputs": {k: [shape(v), str(v.dtype)] for k, v in sorted(out.items())},
            "platforms": list(exported.platforms), "workdir": workdir, "step": step}
