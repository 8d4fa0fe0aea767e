"""`config.init_from`: start a fresh run from variables in an orbax checkpoint written by
`python -m jaxvision.weights.torchvision ... --out ckpt/` (or `weights.save_variables`).

The rule: every `params` / `batch_stats` leaf of the model is taken from the checkpoint, and its
shape must match, except the classifier head -- the top-level modules the model names in its
`head_names` (`fc` for ResNet, `classifier` for EfficientNet, `fc8` for AlexNet/VGG). The head
is taken when all its shapes match, and kept at its fresh initialisation when they differ (a
checkpoint with another number of classes) or when the checkpoint has no head (`--no-head`). Any
other missing key, unexpected key or shape difference raises `InitFromMismatchError` listing
them all.

`config.init_from_map` puts a classification checkpoint into part of a bigger model (torchvision's
`weights_backbone`): entries 'SRC:DST' move the checkpoint's variables under path prefix SRC
(empty: all of them) to prefix DST of the model, e.g. ':backbone/body' for an ImageNet ResNet-50
in a ResNet-50-FPN detector, or 'fc6:roi_heads/box_head/fc6' for VGG-16's fc6 in the Faster R-CNN
box head. Checkpoint variables under no SRC are ignored; the model's variables under a DST must
then all come from the checkpoint with their shapes (same error otherwise), the others keep
their fresh initialisation.

One shape change is made, not refused: a dense kernel [kh*kw*Cin, Cout] given for a conv kernel
[kh, kw, Cin, Cout] is reshaped to it (rows in (h, w, c) order, as jaxvision's VGG flattens
pool5): ImageNet VGG-16's fc6 / fc7 as the 7x7 / 1x1 convolutions of FCN and DeconvNet, Long et
al.'s "convolutionalization".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

COLLECTIONS = ("params", "batch_stats")


class InitFromMismatchError(ValueError):
    """The checkpoint does not fit the model; `.missing`, `.unexpected`, `.shapes` list why."""

    def __init__(self, path: str, heads, missing, unexpected, shapes):
        self.missing, self.unexpected, self.shapes = missing, unexpected, shapes
        detail = "; ".join(f"{k}: expected {e}, got {g}" for k, e, g in shapes)
        super().__init__(
            f"config.init_from={path!r}: expected variables matching the model (classifier head "
            f"{tuple(heads)} excepted); got {len(missing)} missing keys {missing}, "
            f"{len(unexpected)} unexpected keys {unexpected}, {len(shapes)} shape mismatches "
            f"[{detail}]")


def _flat(tree: Mapping) -> dict[str, object]:
    return {"/".join(k): v for k, v in flatten_dict(dict(tree)).items()} if tree else {}


def _as_conv(key: str, value, shape) -> object:
    """`value` reshaped to the conv kernel `shape` when it is the dense kernel of the same
    layer (see the module docstring), else `value`."""
    given, shape = tuple(np.shape(value)), tuple(shape)
    if not (key.endswith("kernel") and len(given) == 2 and len(shape) == 4
            and given == (int(np.prod(shape[:3])), shape[3])):
        return value
    return np.reshape(value, shape)


def parse_map(mapping) -> list[tuple[str, str]]:
    """`config.init_from_map` entries 'SRC:DST' -> [(src, dst)] path prefixes without surrounding
    slashes; ValueError naming the field for an entry that is not one."""
    pairs = []
    for entry in mapping:
        src, sep, dst = entry.partition(":") if isinstance(entry, str) else ("", "", "")
        if not sep or ":" in dst or not dst.strip("/"):
            raise ValueError(f"config.init_from_map: expected entries 'SRC:DST' (checkpoint path "
                             f"prefix, empty for all of it, and the model path prefix it goes "
                             f"to), got {entry!r}")
        pairs.append((src.strip("/"), dst.strip("/")))
    return pairs


def _under(key: str, prefix: str) -> bool:
    return not prefix or key == prefix or key.startswith(prefix + "/")


def _moved(pretrained: Mapping, pairs) -> dict:
    """`pretrained` with each variable under a pair's SRC moved under its DST (first pair that
    matches); the others dropped."""
    out = {}
    for collection in COLLECTIONS:
        moved = {}
        for key, value in _flat(pretrained.get(collection, {})).items():
            for src, dst in pairs:
                if _under(key, src):
                    moved[dst + key[len(src):] if src else f"{dst}/{key}"] = value
                    break
        if moved:
            out[collection] = unflatten_dict({tuple(k.split("/")): v for k, v in moved.items()})
    return out


def merge_pretrained(variables: Mapping, pretrained: Mapping, *, heads, path: str = "",
                     mapping=()) -> dict:
    """`variables` (the model's fresh `{'params', 'batch_stats'?}`) with leaves replaced by those
    of `pretrained` by the rule in the module docstring; `heads`: the model's `head_names`;
    `mapping`: `config.init_from_map` (empty: the checkpoint is the whole model).
    Leaves keep the fresh leaf's dtype.
    Works on arrays or abstract values (`jax.ShapeDtypeStruct`); returns a new dict."""
    pairs = parse_map(mapping)
    if pairs:
        pretrained = _moved(pretrained, pairs)
        if not pretrained:
            raise InitFromMismatchError(path, heads, [f"any variable under {src!r} (config."
                                                      f"init_from_map)" for src, _ in pairs],
                                        [], [])
    out = dict(variables)
    missing, unexpected, shapes = [], [], []
    heads_kept: set[str] = set()
    merged = {}
    for collection in COLLECTIONS:
        fresh = _flat(variables.get(collection, {}))
        given = {k: _as_conv(k, v, fresh[k].shape) if k in fresh else v
                 for k, v in _flat(pretrained.get(collection, {})).items()}
        unexpected += [f"{collection}/{k}" for k in sorted(set(given) - set(fresh))]
        for key, leaf in fresh.items():
            head = key.split("/")[0] in heads
            if pairs and not any(_under(key, dst) for _, dst in pairs):
                continue  # outside the mapped parts: keeps its initialisation
            if key not in given:
                (heads_kept.add(key.split("/")[0]) if head else
                 missing.append(f"{collection}/{key}"))
            elif tuple(np.shape(given[key])) != tuple(leaf.shape):
                if head:
                    heads_kept.add(key.split("/")[0])
                else:
                    shapes.append((f"{collection}/{key}", tuple(leaf.shape),
                                   tuple(np.shape(given[key]))))
        merged[collection] = (fresh, given)
    if missing or unexpected or shapes:
        raise InitFromMismatchError(path, heads, missing, unexpected, shapes)
    for collection, (fresh, given) in merged.items():
        if not fresh:
            continue
        tree = {}
        for key, leaf in fresh.items():
            take = key in given and key.split("/")[0] not in heads_kept
            value = given[key] if take else leaf
            tree[tuple(key.split("/"))] = value.astype(leaf.dtype) if take else value
        out[collection] = unflatten_dict(tree)
    return out


def load_pretrained(path: str) -> dict:
    """The `{'params', 'batch_stats'?}` of the checkpoint at `path`, as numpy arrays."""
    from jaxvision.weights.torchvision import load_variables

    restored = load_variables(path)
    if not isinstance(restored, Mapping) or "params" not in restored:
        raise ValueError(f"config.init_from={path!r}: expected a checkpoint of "
                         f"{{'params', 'batch_stats'}}, got keys {sorted(restored or {})}")
    return {c: _to_numpy(restored[c]) for c in COLLECTIONS if c in restored}


def _to_numpy(tree):
    if isinstance(tree, Mapping):
        return {k: _to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)
