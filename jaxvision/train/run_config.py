"""A run directory that carries itself: the resolved config and the dataset's class list saved in
the workdir, read back by every later tool (predict, evaluation, export).

    <workdir>/config.json    the resolved config (`ConfigDict.to_json`), written when training
                             starts; `load_saved_config(workdir)` reads it back
    <workdir>/dataset.json   {"dataset", "class_names", "label_map"}: what predicting needs of the
                             data, so that predicting one image prepares no dataset

A config given again (a config file plus `--config.*` overrides) must agree with the saved one
except in the fields of `MAY_DIFFER`, which change how a run is executed or how long it runs,
not what it trains; a conflict is a ValueError naming every differing field.
"""

from __future__ import annotations

import json
import os

import ml_collections

CONFIG_FILE, DATASET_FILE = "config.json", "dataset.json"
# fields a resumed run, an evaluation or a prediction may set differently from the saved config
MAY_DIFFER = ("train.steps", "train.eval_every", "train.log_every", "train.checkpoint_every",
              "train.keep_checkpoints", "train.eval_batch_size", "data.data_dir",
              "data.proposals.processes", "parallel", "distributed")


def _tuples(value):
    """JSON lists back to the tuples configs are written with (nested)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _flat(tree, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flat(value, name + "."))
        else:
            out[name] = _tuples(value)
    return out


def config_dict(config) -> dict:
    """The config as JSON-ready nested dicts (what config.json holds)."""
    return json.loads(config.to_json())


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def save_run(workdir: str, config, splits=None) -> None:
    """Writes `config.json` (and `dataset.json` from `splits`, a DatasetSplits) into workdir."""
    os.makedirs(workdir, exist_ok=True)
    _write(os.path.join(workdir, CONFIG_FILE), config.to_json(indent=2) + "\n")
    if splits is not None:
        _write(os.path.join(workdir, DATASET_FILE), json.dumps({
            "dataset": config.dataset, "class_names": list(splits.class_names),
            "label_map": list(splits.label_map) if splits.label_map else None}, indent=2) + "\n")


def load_saved_config(workdir: str) -> ml_collections.ConfigDict | None:
    """The locked config saved in `workdir` (None when the run predates config.json)."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        try:
            saved = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"workdir {workdir}: expected {CONFIG_FILE} to hold the run's config "
                             f"as JSON, got {error}") from error
    config = ml_collections.ConfigDict(_tuples(saved))
    config.lock()
    return config


def load_dataset_info(workdir: str) -> dict | None:
    """`dataset.json` of the run (class_names, label_map), or None when it has none."""
    path = os.path.join(workdir, DATASET_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def config_conflicts(saved, given) -> list[str]:
    """'field: saved X, given Y' for every field (outside MAY_DIFFER) where the two differ."""
    a, b = _flat(config_dict(saved)), _flat(config_dict(given))
    return [f"config.{k}: the run has {a.get(k, '<absent>')!r}, given {b.get(k, '<absent>')!r}"
            for k in sorted(set(a) | set(b)) if not _may_differ(k) and a.get(k) != b.get(k)]


def _may_differ(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in MAY_DIFFER)


def resolve_run_config(workdir: str, given=None):
    """The config of the run in `workdir`: the saved one, or `given` (a config file's, with its
    overrides) after checking it agrees with the saved one. ValueError when neither exists or
    they conflict."""
    saved = load_saved_config(workdir)
    if given is None:
        if saved is None:
            raise ValueError(f"workdir {workdir}: expected {CONFIG_FILE} (written by train.py "
                             "when a run starts), not found: pass the run's --config and its "
                             "--config.* overrides")
        return saved
    if saved is not None:
        conflicts = config_conflicts(saved, given)
        if conflicts:
            raise ValueError(f"config: expected the config the run in {workdir} was trained with "
                             f"({CONFIG_FILE}), got {len(conflicts)} different field(s): "
                             + "; ".join(conflicts))
    return given
