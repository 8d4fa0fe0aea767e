"""Darknet's YOLOv3 files (`yolov3.cfg` + `yolov3.weights`, `darknet53.conv.74`) <-> jaxvision
`yolov3` variables, and a CLI writing orbax checkpoints.

cfg: INI-like sections; the ones YOLOv3 uses are read ([net], [convolutional], [shortcut],
[route], [upsample], [yolo] with `mask`, `anchors`, `classes`, `num`), anything else is an error
naming the section. The cfg must have the layout of `jaxvision.models.yolo.YOLOv3` (Darknet-53
and the three heads, what `yolov3_cfg` writes); its classes, anchors and masks become the model's
kwargs.

weights: int32 major, minor, revision, then `seen` (int64 when major * 10 + minor >= 2, else
int32), then float32 tensors in cfg order; per convolution with batch_normalize: beta, gamma,
running mean, running variance, kernel [out, in, kh, kw]; without: bias, kernel.
`darknet53.conv.74` holds the first 74 layers' tensors: the Darknet-53 backbone only
(`backbone=True`).

    python -m jaxvision.weights.darknet --cfg yolov3.cfg --weights yolov3.weights --out ckpt/
    python -m jaxvision.weights.darknet --cfg yolov3.cfg --weights darknet53.conv.74 \\
        --backbone --out ckpt/   # config.init_from=ckpt/, init_from_map=('backbone:backbone',)
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from jaxvision.models.darknet import DEPTHS, WIDTHS
from jaxvision.models.yolo import _NECK, anchors_by_stride

SUPPORTED = ("net", "convolutional", "shortcut", "route", "upsample", "yolo")
BN_EPSILON = 1e-6  # Darknet's (and OpenCV's importer's) BatchNorm epsilon
HEADER = (0, 2, 0)  # major, minor, revision written by `to_darknet` (seen is then int64)


def read_cfg(path: str) -> list[tuple[str, dict[str, str]]]:
    """A Darknet cfg file -> [(section type, {option: value string})], in file order."""
    sections: list[tuple[str, dict[str, str]]] = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split("#")[0].split(";")[0].strip()
            if not line:
                continue
            if line.startswith("["):
                if not line.endswith("]"):
                    raise ValueError(f"cfg {path!r} line {number}: expected a section header "
                                     f"'[name]', got {line!r}")
                sections.append((line[1:-1].strip().lower(), {}))
            elif "=" in line and sections:
                key, value = line.split("=", 1)
                sections[-1][1][key.strip()] = value.strip()
            else:
                raise ValueError(f"cfg {path!r} line {number}: expected '[section]' or "
                                 f"'key=value' inside a section, got {line!r}")
    if not sections or sections[0][0] not in ("net", "network"):
        raise ValueError(f"cfg {path!r}: expected a first section [net], got "
                         f"{sections[0][0] if sections else 'no sections'!r}")
    for index, (kind, _) in enumerate(sections[1:]):
        if kind not in SUPPORTED:
            raise ValueError(f"cfg {path!r} section [{kind}] (layer {index}): unsupported; "
                             f"expected one of {SUPPORTED[1:]}")
    return sections


def _layers(num_classes: int, anchors, anchors_per_cell: int, strides) -> list[dict]:
    """YOLOv3's layers in Darknet's order (absolute route / shortcut indices), each a dict with
    'type', its options, 'out' channels, and for convolutions 'path' (the jaxvision module) and
    'in' channels."""
    layers: list[dict] = []

    def add(kind, **options):
        layers.append({"type": kind, **options})
        return len(layers) - 1

    def conv(filters, size, stride, path, bn=True):
        add("convolutional", filters=filters, size=size, stride=stride, pad=size // 2,
            batch_normalize=int(bn), activation="leaky" if bn else "linear", path=path,
            out=filters, **{"in": layers[-1]["out"] if layers else 3})

    conv(32, 3, 1, "backbone/stem")
    taps = {}
    for s, (n, c) in enumerate(zip(DEPTHS, WIDTHS, strict=True), 1):
        conv(c, 3, 2, f"backbone/stage{s}_down")
        for b in range(1, n + 1):
            conv(c // 2, 1, 1, f"backbone/stage{s}_block{b}_1")
            conv(c, 3, 1, f"backbone/stage{s}_block{b}_2")
            add("shortcut", **{"from": len(layers) - 3}, activation="linear", out=c)
        taps[2 ** s] = len(layers) - 1
    table = anchors_by_stride(anchors, strides, anchors_per_cell)
    all_anchors = np.concatenate([table[s] for s in sorted(strides)])
    neck_out = None
    for s in strides:
        c = _NECK[s]
        if neck_out is not None:
            add("route", layers=(neck_out,), out=layers[neck_out]["out"])
            conv(c, 1, 1, f"route{s}")
            add("upsample", stride=2, out=c)
            add("route", layers=(len(layers) - 1, taps[s]), out=c + layers[taps[s]]["out"])
        for i in range(5):
            conv(c if i % 2 == 0 else 2 * c, 1 if i % 2 == 0 else 3, 1, f"neck{s}_{i + 1}")
        neck_out = len(layers) - 1
        conv(2 * c, 3, 1, f"head{s}_conv")
        conv(anchors_per_cell * (num_classes - 1 + 5), 1, 1, f"head{s}_out", bn=False)
        first = sorted(strides).index(s) * anchors_per_cell
        add("yolo", mask=tuple(range(first, first + anchors_per_cell)),
            anchors=tuple(tuple(int(v) if float(v).is_integer() else float(v) for v in a)
                          for a in all_anchors),
            classes=num_classes - 1, num=len(all_anchors), out=layers[-1]["out"])
    return layers


def yolov3_cfg(num_classes: int = 81, anchors=None, size: int = 416,
               strides=(32, 16, 8), anchors_per_cell: int = 3) -> str:
    """The Darknet cfg text of `yolov3(num_classes, anchors, strides, anchors_per_cell)` at
    input `size` (inference options only: no training hyper-parameters)."""
    lines = ["[net]", f"width={size}", f"height={size}", "channels=3", ""]
    for layer in _layers(num_classes, anchors, anchors_per_cell, tuple(strides)):
        lines.append(f"[{layer['type']}]")
        for key, value in layer.items():
            if key in ("type", "path", "in", "out"):
                continue
            if key == "anchors":
                value = ",  ".join(f"{w},{h}" for w, h in value)
            elif isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            lines.append(f"{key}={value}")
        lines.append("")
    return "\n".join(lines)


def _parsed(kind: str, options: dict[str, str], index: int) -> dict:
    """One cfg section's options as `_layers` spells them (Darknet's defaults filled in)."""
    def num(key, default=None, cast=int):
        if key not in options and default is None:
            raise ValueError(f"[{kind}] (layer {index}): expected option {key!r}, got none")
        try:
            return cast(options.get(key, default))
        except ValueError:
            raise ValueError(f"[{kind}] (layer {index}) {key}: expected a number, got "
                             f"{options[key]!r}") from None

    def ints(key):
        return tuple(num(key, cast=lambda v: [int(x) for x in v.split(",") if x.strip()]))

    if kind == "convolutional":
        size = num("size", 1)
        return {"type": kind, "filters": num("filters", 1), "size": size,
                "stride": num("stride", 1),
                "pad": size // 2 if num("pad", 0) else num("padding", 0),
                "batch_normalize": num("batch_normalize", 0),
                "activation": options.get("activation", "logistic")}
    if kind == "shortcut":
        src = num("from")
        return {"type": kind, "from": src + index if src < 0 else src,
                "activation": options.get("activation", "linear")}
    if kind == "route":
        return {"type": kind, "layers": tuple(v + index if v < 0 else v for v in ints("layers"))}
    if kind == "upsample":
        return {"type": kind, "stride": num("stride", 2)}
    values = [float(v) for v in options.get("anchors", "").split(",") if v.strip()]
    return {"type": kind, "mask": ints("mask"), "classes": num("classes", 20),
            "num": num("num", 1),
            "anchors": tuple(zip(values[0::2], values[1::2], strict=False))}


def model_kwargs_from_cfg(path: str) -> dict[str, Any]:
    """The `yolov3` kwargs of a Darknet cfg (ValueError naming the first layer that differs
    from jaxvision's YOLOv3 layout): num_classes (cfg classes + 1, background), anchors,
    darknet_input=True, bn_epsilon=1e-6, ignore_thresh (the cfg's)."""
    sections = read_cfg(path)
    net = sections[0][1]
    for key in ("width", "height"):
        if int(net.get(key, 416)) % 32:
            raise ValueError(f"cfg {path!r} [net] {key}: expected a multiple of 32, got "
                             f"{net[key]}")
    layers = [_parsed(kind, options, i) for i, (kind, options) in enumerate(sections[1:])]
    yolos = [(i, layer) for i, layer in enumerate(layers) if layer["type"] == "yolo"]
    if len(yolos) != 3:
        raise ValueError(f"cfg {path!r}: expected 3 [yolo] sections (strides 32, 16, 8), got "
                         f"{len(yolos)}")
    first = yolos[0][1]
    per_cell = len(first["mask"])
    table = {}
    for s, (i, layer) in zip(_NECK, yolos, strict=True):
        if len(layer["mask"]) != per_cell or max(layer["mask"]) >= len(layer["anchors"]):
            raise ValueError(f"cfg {path!r} [yolo] (layer {i}) mask: expected {per_cell} "
                             f"indices into its {len(layer['anchors'])} anchors, got "
                             f"{layer['mask']}")
        table[s] = [layer["anchors"][m] for m in layer["mask"]]
    anchors = [a for s in sorted(table) for a in table[s]]
    dealt = anchors_by_stride(anchors, tuple(_NECK), per_cell)
    if any(np.asarray(table[s], np.float32).tolist() != dealt[s].tolist() for s in table):
        raise ValueError(f"cfg {path!r} [yolo] anchors/mask: expected per-stride anchors sorted "
                         f"by area, the smallest at the finest stride (jaxvision's YOLOv3), got "
                         f"{table}")
    expected = _layers(first["classes"] + 1, anchors, per_cell, tuple(_NECK))
    for i, (want, got) in enumerate(zip(expected, layers, strict=False)):
        want = {k: v for k, v in want.items() if k not in ("path", "in", "out")}
        if want["type"] == "yolo" == got["type"]:  # anchors and mask checked above
            want.update(anchors=got["anchors"], mask=got["mask"])
        if want != got:
            raise ValueError(f"cfg {path!r} layer {i}: expected {want} (jaxvision's YOLOv3 "
                             f"layout), got {got}")
    if len(layers) != len(expected):
        raise ValueError(f"cfg {path!r}: expected {len(expected)} layers (jaxvision's YOLOv3 "
                         f"layout), got {len(layers)}")
    kwargs = {"num_classes": first["classes"] + 1, "anchors": tuple(map(tuple, anchors)),
              "anchors_per_cell": per_cell, "darknet_input": True, "bn_epsilon": BN_EPSILON}
    ignore = sections[1 + yolos[0][0]][1].get("ignore_thresh")
    if ignore is not None:
        kwargs["ignore_thresh"] = float(ignore)
    return kwargs


def _convs(kwargs: dict, backbone: bool) -> list[dict]:
    """The convolutions of `yolov3(**kwargs)` in Darknet's order (the backbone's only)."""
    for key, default in (("width", 1.0), ("depths", DEPTHS), ("strides", tuple(_NECK))):
        if tuple(np.atleast_1d(kwargs.get(key, default))) != tuple(np.atleast_1d(default)):
            raise ValueError(f"model_kwargs {key}: expected {default} (Darknet's YOLOv3 "
                             f"layout), got {kwargs[key]}")
    layers = _layers(kwargs.get("num_classes", 81), kwargs.get("anchors"),
                     kwargs.get("anchors_per_cell", 3), tuple(kwargs.get("strides", _NECK)))
    return [x for x in layers if x["type"] == "convolutional"
            and (not backbone or x["path"].startswith("backbone/"))]


def _sizes(conv: dict) -> list[int]:
    n, k = conv["filters"], conv["size"]
    return [n] * (4 if conv["batch_normalize"] else 1) + [n * conv["in"] * k * k]


def read_weights(path: str) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """A Darknet weights file -> ((major, minor, revision, seen), float32 values)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = np.fromfile(f, np.int32, 3)
        if len(head) < 3:
            raise ValueError(f"weights {path!r}: expected a 12-byte header (major, minor, "
                             f"revision), got {size} bytes")
        major, minor, revision = (int(v) for v in head)
        seen_type = np.int64 if major * 10 + minor >= 2 else np.int32
        seen = np.fromfile(f, seen_type, 1)
        offset = 12 + np.dtype(seen_type).itemsize
        if len(seen) < 1 or (size - offset) % 4:
            raise ValueError(f"weights {path!r}: expected a header of {offset} bytes then "
                             f"float32 values, got {size} bytes")
        values = np.fromfile(f, "<f4")
    return (major, minor, revision, int(seen[0])), values


def from_darknet(cfg_path: str, weights_path: str, *, backbone: bool = False
                 ) -> tuple[dict[str, Any], dict]:
    """Darknet cfg + weights -> (model_kwargs for `get_model('yolov3', **model_kwargs)`,
    {'params', 'batch_stats'} float32 numpy). `backbone=True` reads a file holding the backbone
    only (`darknet53.conv.74`) and returns variables under 'backbone' only."""
    kwargs = model_kwargs_from_cfg(cfg_path)
    convs = _convs(kwargs, backbone)
    _, values = read_weights(weights_path)
    expected = sum(sum(_sizes(c)) for c in convs)
    if len(values) != expected:
        hint = ""
        if not backbone and len(values) == sum(sum(_sizes(c)) for c in _convs(kwargs, True)):
            hint = " (the backbone's count: pass backbone=True / --backbone)"
        raise ValueError(f"weights {weights_path!r} for cfg {cfg_path!r}"
                         f"{' (backbone only)' if backbone else ''}: expected {expected} float32 "
                         f"values after the header, found {len(values)}{hint}")
    params: dict = {}
    stats: dict = {}
    pos = 0
    for conv in convs:
        parts = []
        for n in _sizes(conv):
            parts.append(values[pos:pos + n])
            pos += n
        k, n_in, n_out = conv["size"], conv["in"], conv["filters"]
        kernel = parts[-1].reshape(n_out, n_in, k, k).transpose(2, 3, 1, 0)
        keys = conv["path"].split("/")
        node, snode = params, stats
        for key in keys:
            node = node.setdefault(key, {})
        if conv["batch_normalize"]:
            for key in keys:
                snode = snode.setdefault(key, {})
            beta, gamma, mean, var = parts[:4]
            node["conv"] = {"kernel": np.ascontiguousarray(kernel)}
            node["bn"] = {"scale": gamma.copy(), "bias": beta.copy()}
            snode["bn"] = {"mean": mean.copy(), "var": var.copy()}
        else:
            node.update(kernel=np.ascontiguousarray(kernel), bias=parts[0].copy())
    return kwargs, {"params": params, "batch_stats": stats}


def to_darknet(model_kwargs: dict, variables: dict, cfg_path: str | None, weights_path: str,
               *, size: int = 416, seen: int = 0) -> None:
    """Writes `variables` of `yolov3(**model_kwargs)` as a Darknet weights file (header 0.2.0,
    int64 `seen`) and, with `cfg_path`, its cfg at input `size` (`yolov3_cfg`). Variables with
    only 'backbone' give a backbone-only file (darknet53.conv.74's layout)."""
    backbone = set(variables["params"]) == {"backbone"}
    out = []
    for conv in _convs(model_kwargs, backbone):
        node = variables["params"]
        for key in conv["path"].split("/"):
            node = node[key]
        if conv["batch_normalize"]:
            snode = variables["batch_stats"]
            for key in conv["path"].split("/"):
                snode = snode[key]
            out += [node["bn"]["bias"], node["bn"]["scale"], snode["bn"]["mean"],
                    snode["bn"]["var"]]
            kernel = node["conv"]["kernel"]
        else:
            out.append(node["bias"])
            kernel = node["kernel"]
        out.append(np.asarray(kernel).transpose(3, 2, 0, 1))
    with open(weights_path, "wb") as f:
        np.asarray(HEADER, "<i4").tofile(f)
        np.asarray([seen], "<i8").tofile(f)
        np.concatenate([np.asarray(x, "<f4").reshape(-1) for x in out]).tofile(f)
    if cfg_path is not None:
        with open(cfg_path, "w") as f:
            f.write(yolov3_cfg(model_kwargs.get("num_classes", 81), model_kwargs.get("anchors"),
                               size, tuple(model_kwargs.get("strides", _NECK)),
                               model_kwargs.get("anchors_per_cell", 3)))


def main(argv: list[str] | None = None) -> None:
    import jax

    from jaxvision.weights.torchvision import save_variables

    parser = argparse.ArgumentParser(
        prog="python -m jaxvision.weights.darknet",
        description="Convert Darknet YOLOv3 cfg + weights into a jaxvision orbax checkpoint.")
    parser.add_argument("--cfg", required=True, help="e.g. yolov3.cfg")
    parser.add_argument("--weights", required=True, help="yolov3.weights or darknet53.conv.74")
    parser.add_argument("--out", required=True, help="output checkpoint directory")
    parser.add_argument("--backbone", action="store_true",
                        help="the file holds Darknet-53 only (darknet53.conv.74)")
    args = parser.parse_args(argv)
    kwargs, variables = from_darknet(args.cfg, args.weights, backbone=args.backbone)
    save_variables(args.out, variables)
    n = sum(np.size(x) for x in jax.tree.leaves(variables["params"]))
    print(f"wrote yolov3 ({n:,} parameters) to {os.path.abspath(args.out)}; model kwargs "
          f"{kwargs}")


if __name__ == "__main__":
    main()
