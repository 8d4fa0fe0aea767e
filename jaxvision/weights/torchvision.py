"""Import torchvision state dicts into jaxvision variables, and a CLI writing orbax checkpoints.

Layouts: conv weights OIHW -> HWIO (depthwise `[C, 1, k, k]` -> `[k, k, 1, C]`), linear weights
transposed (the first fully connected layer of AlexNet/VGG also has its inputs permuted from
torch's (C, H, W) flattening to our (H, W, C)), BatchNorm weight/bias -> params scale/bias and
running_mean/running_var -> batch_stats mean/var (`num_batches_tracked` is dropped).

    python -m jaxvision.weights.torchvision --model resnet50 --in weights.pth --out ckpt/

writes an orbax checkpoint of `{'params': ..., 'batch_stats': ...}` that `load_variables(path)`
reads back (and the trainer's `config.init_from` starts from).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.models import get_model

# The classifier's torch key per family (its rows give num_classes).
_CLASSIFIER = {"alexnet": "classifier.6", "vgg": "classifier.6", "resnet": "fc",
               "efficientnet": "classifier.1"}
# Spatial size of the map flattened into the first linear layer (torch flattens C, H, W).
_FLATTENED = {"alexnet": ("fc6", 6), "vgg": ("fc6", 7)}


class StateDictMismatchError(ValueError):
    """State dict keys differ from the model's; `.missing` and `.unexpected` list them."""

    def __init__(self, name: str, missing: list[str], unexpected: list[str]):
        self.missing, self.unexpected = missing, unexpected
        super().__init__(
            f"state_dict for {name!r}: {len(missing)} missing keys {missing}, "
            f"{len(unexpected)} unexpected keys {unexpected}")


# torchvision detector name -> (jaxvision model, backbone)
_DETECTORS = {"fasterrcnn_resnet50_fpn": ("faster_rcnn", "resnet50_fpn"),
              "maskrcnn_resnet50_fpn": ("mask_rcnn", "resnet50_fpn")}


def _family(name: str) -> str:
    if name in _DETECTORS:
        return "rcnn"
    for family in ("alexnet", "vgg", "resnet", "efficientnet"):
        if name.startswith(family):
            return family
    raise ValueError(f"model name: expected a backbone (alexnet, vgg*, resnet*, "
                     f"efficientnet_b*) or one of {sorted(_DETECTORS)}, got {name!r}")


def _resnet_prefix(path: tuple[str, ...], tree) -> str:
    s = ".".join(path)
    s = re.sub(r"layer(\d)_(\d+)", r"layer\1.\2", s)
    return s.replace("downsample_conv", "downsample.0").replace("downsample_bn", "downsample.1")


def _vgg_prefix(path: tuple[str, ...], tree) -> str:
    (name,) = path
    fc = {"fc6": "classifier.0", "fc7": "classifier.3", "fc8": "classifier.6"}
    if name in fc:
        return fc[name]
    # torchvision's `features` Sequential: per conv [conv, (bn), relu], per block a max pool.
    batch_norm = any(k.startswith("bn") for k in tree)
    index, table = 0, {}
    for b in range(1, 6):
        i = 1
        while f"conv{b}_{i}" in tree:
            table[f"conv{b}_{i}"] = index
            index += 1
            if batch_norm:
                table[f"bn{b}_{i}"] = index
                index += 1
            index += 1  # ReLU
            i += 1
        index += 1  # max pool
    return f"features.{table[name]}"


def _alexnet_prefix(path: tuple[str, ...], tree) -> str:
    (name,) = path
    return {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6",
            "conv4": "features.8", "conv5": "features.10", "fc6": "classifier.1",
            "fc7": "classifier.4", "fc8": "classifier.6"}[name]


def _efficientnet_prefix(path: tuple[str, ...], tree) -> str:
    top = path[0]
    if top == "classifier":
        return "classifier.1"
    conv_bn = {"conv": "0", "bn": "1"}
    if top in ("stem", "head"):
        return f"features.{0 if top == 'stem' else 8}.{conv_bn[path[1]]}"
    stage, block = re.fullmatch(r"block(\d+)_(\d+)", top).groups()
    children = ["expand", "depthwise", "se", "project"]
    if "expand" not in tree[top]:
        children.remove("expand")
    index = children.index(path[1])
    rest = conv_bn[path[2]] if path[1] != "se" else path[2]
    return f"features.{stage}.{block}.block.{index}.{rest}"


def _rcnn_prefix(path: tuple[str, ...], tree) -> str:
    """Two-stage detector paths -> torchvision's FasterRCNN / MaskRCNN state-dict prefixes."""
    top, sub, rest = path[0], path[1], path[2:]
    if top == "backbone" and sub == "body":
        return "backbone.body." + _resnet_prefix(rest, tree)
    if top == "backbone" and sub == "fpn":
        kind, i = rest[0].split("_")
        return f"backbone.fpn.{kind}_blocks.{i}.0"
    if top == "rpn":
        return "rpn.head.conv.0.0" if rest == ("conv",) else f"rpn.head.{rest[0]}"
    if sub in ("box_head", "box_predictor"):
        return f"roi_heads.{sub}.{rest[0]}"
    if sub == "mask_head" and not rest:
        return "roi_heads.mask_predictor.conv5_mask"
    if rest[0] == "mask_fcn_logits":
        return "roi_heads.mask_predictor.mask_fcn_logits"
    return f"roi_heads.mask_head.{int(rest[0][len('mask_fcn'):]) - 1}.0"


_PREFIX: dict[str, Callable[[tuple[str, ...], Any], str]] = {
    "alexnet": _alexnet_prefix, "vgg": _vgg_prefix, "resnet": _resnet_prefix,
    "efficientnet": _efficientnet_prefix, "rcnn": _rcnn_prefix,
}


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    return value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value


def _modules(tree, path=()):
    """Yields (path, leaf dict) for every module holding arrays in a nested param dict."""
    leaves = {k: v for k, v in tree.items() if not isinstance(v, Mapping)}
    if leaves:
        yield path, leaves
    for k, v in tree.items():
        if isinstance(v, Mapping):
            yield from _modules(v, path + (k,))


def abstract_variables(name: str, num_classes: int | None = 1000):
    """`jax.eval_shape` of the model's variables (no allocation): {'params', 'batch_stats'?}."""
    if name in _DETECTORS:
        model_name, backbone = _DETECTORS[name]
        model = get_model(model_name, num_classes=num_classes, backbone=backbone)
        x = jnp.zeros((1, 64, 64, 3), jnp.float32)
        return jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    model = get_model(name, num_classes=num_classes)
    size = 224 if _family(name) != "efficientnet" else 64
    return jax.eval_shape(lambda: model.init(
        {"params": jax.random.key(0), "dropout": jax.random.key(0)},
        jnp.zeros((1, size, size, 3), jnp.float32), train=False))


def from_torchvision(name: str, state_dict: Mapping[str, Any], *, head: bool = True) -> dict:
    """Converts torchvision's `state_dict` for model `name` into `{'params', 'batch_stats'}`.

    state_dict: torchvision key -> numpy array or torch tensor (as `model.state_dict()` gives).
    Detectors ('fasterrcnn_resnet50_fpn', 'maskrcnn_resnet50_fpn') give the variables of
    `get_model('faster_rcnn' | 'mask_rcnn', backbone='resnet50_fpn', num_classes=K)`.
    num_classes is read from the classifier's weight; `head=False` ignores the classifier keys
    and builds the variables of `get_model(name, num_classes=None)` (AlexNet and VGG: of the
    model with its fc6 and fc7 and without fc8, what detectors and FCNs start from).
    Returns float32 numpy arrays (`batch_stats` is absent for models without BatchNorm:
    AlexNet and plain VGG).
    Raises `StateDictMismatchError` (a ValueError) listing missing and unexpected keys, and
    ValueError naming the key when a shape differs.
    """
    if name in _DETECTION_IMPORTERS:
        return _DETECTION_IMPORTERS[name](state_dict)
    family = _family(name)
    classifier = _CLASSIFIER.get(family, "roi_heads.box_predictor.cls_score")
    state = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    if family == "rcnn" and not head:
        raise ValueError(f"head: expected True for the detector {name!r}, got False")
    if head:
        weight = state.get(f"{classifier}.weight")
        num_classes = 1000 if weight is None else int(weight.shape[0])
    else:
        num_classes = None
        state = {k: v for k, v in state.items() if not k.startswith(classifier + ".")}
    if not head and family in _FLATTENED:  # keep fc6 / fc7, drop only the classifier fc8
        abstract = abstract_variables(name, 1000)
        abstract["params"] = {k: v for k, v in abstract["params"].items() if k != "fc8"}
    else:
        abstract = abstract_variables(name, num_classes)
    params_tree = abstract["params"]
    stats_tree = abstract.get("batch_stats", {})

    prefix_of = _PREFIX[family]
    plan = []  # (collection, flax path, torch key, expected shape, transform)
    for path, leaves in _modules(params_tree):
        prefix = prefix_of(path, params_tree)
        for leaf, spec in leaves.items():
            if leaf == "conv5_mask":  # ConvTranspose2d [in, out, kh, kw] -> [kh, kw, in, out]
                torch_key, fn = "weight", lambda w: w.transpose(2, 3, 0, 1)
            elif leaf == "conv5_mask_bias":
                torch_key, fn = "bias", None
            elif leaf == "kernel" and len(spec.shape) == 4:
                torch_key, fn = "weight", lambda w: w.transpose(2, 3, 1, 0)
            elif leaf == "kernel":
                torch_key, fn = "weight", lambda w: w.T
                if family == "rcnn" and path[-1] == "fc6":  # RoI features (C, 7, 7) flattened
                    fn = lambda w: (w.reshape(w.shape[0], -1, 7, 7)  # noqa: E731
                                    .transpose(2, 3, 1, 0).reshape(-1, w.shape[0]))
                elif family in _FLATTENED and path[-1] == _FLATTENED[family][0]:
                    s = _FLATTENED[family][1]
                    fn = lambda w, s=s: (w.reshape(w.shape[0], -1, s, s)  # noqa: E731
                                         .transpose(2, 3, 1, 0).reshape(-1, w.shape[0]))
            elif leaf == "scale":
                torch_key, fn = "weight", None
            else:  # bias
                torch_key, fn = "bias", None
            plan.append(("params", path + (leaf,), f"{prefix}.{torch_key}", spec.shape, fn))
    for path, leaves in _modules(stats_tree):
        prefix = prefix_of(path, params_tree)
        for leaf, spec in leaves.items():
            torch_key = {"mean": "running_mean", "var": "running_var"}[leaf]
            plan.append(("batch_stats", path + (leaf,), f"{prefix}.{torch_key}", spec.shape,
                         None))

    expected = {p[2] for p in plan}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise StateDictMismatchError(name, missing, unexpected)

    out: dict[str, dict] = {"params": {}}
    if stats_tree:
        out["batch_stats"] = {}
    for collection, path, torch_key, shape, fn in plan:
        value = _to_numpy(state[torch_key])
        if fn is not None:
            value = fn(value)
        if value.shape != tuple(shape):
            raise ValueError(f"state_dict[{torch_key!r}] for {name!r} "
                             f"{collection}/{'/'.join(path)}: expected shape (after layout "
                             f"conversion) {tuple(shape)}, got {value.shape}")
        node = out[collection]
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = np.ascontiguousarray(value)
    return out


# ---- single-stage detectors (SSD300): begin ------------------------------------------------------
# torchvision ssd300_vgg16 key prefix of each jaxvision SSD300 layer (see jaxvision/models/ssd.py).
_SSD_VGG_FEATURES = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10,
                     "conv3_2": 12, "conv3_3": 14, "conv4_1": 17, "conv4_2": 19, "conv4_3": 21}
_SSD_EXTRA = {"conv5_1": "0.1", "conv5_2": "0.3", "conv5_3": "0.5", "fc6": "0.7.1",
              "fc7": "0.7.3", "conv8_1": "1.0", "conv8_2": "1.2", "conv9_1": "2.0",
              "conv9_2": "2.2", "conv10_1": "3.0", "conv10_2": "3.2", "conv11_1": "4.0",
              "conv11_2": "4.2"}


def _ssd300_prefix(layer: str) -> str:
    if layer in _SSD_VGG_FEATURES:
        return f"backbone.features.{_SSD_VGG_FEATURES[layer]}"
    if layer in _SSD_EXTRA:
        return f"backbone.extra.{_SSD_EXTRA[layer]}"
    head = {"cls": "classification_head", "reg": "regression_head"}[layer[:3]]
    return f"head.{head}.module_list.{layer[3:]}"


def _ssd300_vgg16_from_torchvision(state_dict: Mapping[str, Any]) -> dict:
    """torchvision `ssd300_vgg16(num_classes=K).state_dict()` -> jaxvision `ssd300` variables
    {'params'}; K is read from the first classification conv (4 boxes x K outputs)."""
    name = "ssd300_vgg16"
    first = state_dict.get("head.classification_head.module_list.0.weight")
    if first is None:
        raise StateDictMismatchError(name, ["head.classification_head.module_list.0.weight"], [])
    num_classes = int(first.shape[0]) // 4
    model = get_model("ssd300", num_classes=num_classes)
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                                 jnp.zeros((1, 300, 300, 3), jnp.float32)))
    plan = [(("scale_weight",), "backbone.scale_weight", None)]
    for layer in abstract["params"]:
        if layer == "scale_weight":
            continue
        prefix = _ssd300_prefix(layer)
        plan.append(((layer, "kernel"), f"{prefix}.weight", lambda w: w.transpose(2, 3, 1, 0)))
        plan.append(((layer, "bias"), f"{prefix}.bias", None))
    expected = {key for _, key, _ in plan}
    missing = sorted(expected - set(state_dict))
    unexpected = sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise StateDictMismatchError(name, missing, unexpected)
    params: dict = {}
    for path, key, fn in plan:
        value = _to_numpy(state_dict[key])
        if fn is not None:
            value = fn(value)
        spec = abstract["params"]
        for k in path:
            spec = spec[k]
        if value.shape != tuple(spec.shape):
            raise ValueError(f"state_dict[{key!r}] for {name!r} params/{'/'.join(path)}: "
                             f"expected shape (after layout conversion) {tuple(spec.shape)}, "
                             f"got {value.shape}")
        node = params
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = np.ascontiguousarray(value)
    return {"params": params}


_DETECTION_IMPORTERS: dict[str, Callable[[Mapping[str, Any]], dict]] = {
    "ssd300_vgg16": _ssd300_vgg16_from_torchvision,
}
# ---- single-stage detectors (SSD300): end --------------------------------------------------------


def save_variables(path: str, variables: dict) -> None:
    """Writes `variables` as an orbax (StandardCheckpointer) checkpoint at directory `path`."""
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(os.path.abspath(path), variables, force=True)
        checkpointer.wait_until_finished()


def load_variables(path: str) -> dict:
    """Reads a checkpoint written by `save_variables` / the CLI: `{'params', 'batch_stats'?}`."""
    import orbax.checkpoint as ocp

    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise ValueError(f"checkpoint path: expected a directory written by "
                         f"jaxvision.weights.torchvision, got {path!r}")
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(path)


def load_torch_file(path: str) -> dict:
    """`torch.load` a .pth file (weights only) and return its state dict of numpy arrays."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ValueError(f"--in {path!r}: expected a state dict, got {type(obj).__name__}")
    return {k: _to_numpy(v) for k, v in obj.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jaxvision.weights.torchvision",
        description="Convert a torchvision .pth state dict into a jaxvision orbax checkpoint.")
    parser.add_argument("--model", required=True, help="e.g. resnet50, vgg16_bn, efficientnet_b0")
    parser.add_argument("--in", dest="src", required=True, help="torchvision .pth file")
    parser.add_argument("--out", required=True, help="output checkpoint directory")
    parser.add_argument("--no-head", action="store_true", help="drop the classifier")
    args = parser.parse_args(argv)
    variables = from_torchvision(args.model, load_torch_file(args.src), head=not args.no_head)
    save_variables(args.out, variables)
    n = sum(np.size(x) for x in jax.tree.leaves(variables["params"]))
    print(f"wrote {args.model} ({n:,} parameters) to {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
