"""Darknet YOLOv3 files: parity with OpenCV's Darknet importer (`cv2.dnn.readNetFromDarknet`)
on a random full 80-class YOLOv3 at 416, round trips, backbone-only files, errors, letterbox."""

import os

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data

from jaxvision.data.letterbox import letterbox_size
from jaxvision.data.pipeline import ExampleTransform
from jaxvision.models import get_model
from jaxvision.tasks.original_frame import boxes_to_original
from jaxvision.train.init_from import merge_pretrained
from jaxvision.weights import from_darknet, load_variables, to_darknet
from jaxvision.weights.darknet import (
    main,
    model_kwargs_from_cfg,
    read_cfg,
    read_weights,
    yolov3_cfg,
)
from tests.models.detection.test_defaults import CFG_ANCHORS

SIZE = 416
KWARGS = dict(num_classes=81, darknet_input=True, bn_epsilon=1e-6)
FIELDS = ("image", "boxes", "labels", "iscrowd", "image_id")


def _random_variables(rng):
    """Random variables of the full YOLOv3: He-scaled kernels, BN statistics near the unit
    (activations stay in range); head outputs small, objectness biases -1.5 / -0.8 / -0.5 at
    strides 32 / 16 / 8 and class biases -4 except 2 classes at +3, so that a few hundred
    (box, class) pairs of every stride pass Darknet's 0.5."""
    model = get_model("yolov3", **KWARGS)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3))))

    def fill(path, spec):
        name, shape = path[-1], spec.shape
        if name == "kernel":
            scale = np.sqrt(1.0 / np.prod(shape[:3])) * (0.3 if "_out" in path[-2] else 1.0)
            return (rng.standard_normal(shape) * scale).astype(np.float32)
        low, high = {"scale": (0.5, 1.5), "bias": (-0.5, 0.5), "mean": (-0.2, 0.2),
                     "var": (0.5, 2.0)}[name]
        return rng.uniform(low, high, shape).astype(np.float32)

    variables = jax.tree_util.tree_map_with_path(
        lambda p, s: fill(tuple(k.key for k in p), s), shapes)
    for s, objectness in ((32, -1.5), (16, -0.8), (8, -0.5)):
        bias = variables["params"][f"head{s}_out"]["bias"].reshape(3, 85)
        bias[:, 4] = objectness
        bias[:, 5:] = -4.0
        bias[:, 5 + rng.choice(80, 2, replace=False)] = 3.0
    return variables


@pytest.fixture(scope="module")
def darknet_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("darknet")
    variables = _random_variables(np.random.default_rng(0))
    cfg, weights = str(root / "yolov3.cfg"), str(root / "yolov3.weights")
    to_darknet(KWARGS, variables, cfg, weights, size=SIZE)
    return cfg, weights, variables


def _letterboxed(image, size):
    """The eval pipeline's letterbox: (normalised input [size, size, 3], image_size, origin)."""
    example = ExampleTransform(FIELDS, 8, resize="letterbox", fixed_size=size)(
        {"image": image, "boxes": np.zeros((0, 4), np.float32),
         "labels": np.zeros((0,), np.int64)}, 0)
    return example["image"], example["image_size"], example["image_origin"]


def _opencv(cfg, weights, blob):
    """OpenCV: the three raw head outputs [H, W, 3, 85] and the YOLO rows [N, 85]."""
    net = cv2.dnn.readNetFromDarknet(cfg, weights)
    names = list(net.getLayerNames())
    outs = list(net.getUnconnectedOutLayersNames())  # yolo_82, yolo_94, yolo_106
    heads = [names[names.index(o) - 1] for o in outs]  # the permuted head convolutions
    net.setInput(blob)
    res = net.forward(heads + outs)
    raw = [r[0].reshape(*r.shape[1:3], 3, 85) for r in res[:3]]
    return raw, np.concatenate(res[3:])


def _opencv_detections(rows, size, thresh, nms, origin, content, orig):
    """Darknet's decode as OpenCV outputs it (centre/size relative to the input) -> boxes in
    the original image: per-class NMS (cv2.dnn.NMSBoxes) of the boxes clipped to the input (as
    jaxvision's postprocess), then Darknet's correct_yolo_boxes (remove the letterbox)."""
    cx, cy, w, h = (rows[:, k] * size for k in range(4))
    boxes = np.clip(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), 0, size)
    scores = rows[:, 5:]  # objectness x class probability (zeroed under OpenCV's threshold)
    found = []
    for c in range(80):
        idx = np.flatnonzero(scores[:, c] > thresh)
        if not len(idx):
            continue
        b = boxes[idx]
        rects = [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in b]
        keep = cv2.dnn.NMSBoxes(rects, scores[idx, c].tolist(), thresh, nms)
        for k in np.asarray(keep).reshape(-1):
            found.append((c + 1, float(scores[idx[k], c]), b[k]))
    (top, left), (ch, cw), (oh, ow) = origin, content, orig
    scale = np.array([ow / cw, oh / ch, ow / cw, oh / ch])
    out = [(c, s, (b.astype(np.float64) - [left, top, left, top]) * scale) for c, s, b in found]
    return sorted(out, key=lambda d: (d[0], -d[1]))


@pytest.mark.slow
@pytest.mark.parametrize("size", [416, 608])
def test_yolov3_matches_opencv_darknet(darknet_files, size, tmp_path):
    cfg, weights, _ = darknet_files
    if size != SIZE:  # the same weights, the cfg's [net] at `size`
        cfg = str(tmp_path / f"yolov3_{size}.cfg")
        with open(cfg, "w") as f:
            f.write(yolov3_cfg(size=size))
    kwargs, variables = from_darknet(cfg, weights)
    assert kwargs["num_classes"] == 81 and kwargs["darknet_input"]
    # Darknet's `detector test` threshold; no caps (Darknet has none)
    model = get_model("yolov3", **kwargs, score_thresh=0.5, topk_candidates=3000,
                      detections_per_img=500)
    photos = [skimage.data.chelsea(), skimage.data.coffee()]  # 300 x 451, 400 x 600: letterboxed
    photos = photos if size == SIZE else photos[1:]
    inputs = [_letterboxed(p, size) for p in photos]
    out = jax.jit(lambda v, x: model.apply(v, x))(
        variables, jnp.stack([jnp.asarray(x) for x, _, _ in inputs]))
    mean = np.array([0.485, 0.456, 0.406]) * 255
    std = np.array([0.229, 0.224, 0.225]) * 255
    total = 0
    for i, (photo, (x, content, origin)) in enumerate(zip(photos, inputs, strict=True)):
        rgb01 = (x.astype(np.float64) * std + mean) / 255  # Darknet's input: RGB in [0, 1]
        assert abs(rgb01[0, 0, 0] - 0.5) < 1e-6  # the letterbox's grey
        raw, rows = _opencv(cfg, weights, rgb01.transpose(2, 0, 1)[None].astype(np.float32))
        for ours, ref in zip(out["raw"], raw, strict=True):
            ours = np.asarray(ours[i])
            assert ours.shape == ref.shape
            assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()
        ref = _opencv_detections(rows, size, 0.5, 0.45, origin, content, photo.shape[:2])
        valid = np.asarray(out["valid"][i])
        boxes = boxes_to_original(np.asarray(out["boxes"][i])[valid], content,
                                  photo.shape[:2], origin)
        got = sorted(zip(np.asarray(out["labels"][i])[valid].tolist(),
                         np.asarray(out["scores"][i])[valid].tolist(), boxes, strict=True),
                     key=lambda d: (d[0], -d[1]))
        assert 20 <= len(got) < 500, len(got)  # none cut by detections_per_img
        assert [c for c, _, _ in got] == [c for c, _, _ in ref]
        # one to one: each detection's nearest reference box of its class (near-equal scores
        # may come in either order)
        matched = set()
        for c, score, box in got:
            options = [(np.abs(b - box).max(), k) for k, (rc, _, b) in enumerate(ref) if rc == c]
            distance, k = min(options)
            assert distance < 1e-2 and k not in matched
            assert abs(ref[k][1] - score) <= 1e-4 * score
            matched.add(k)
        total += len(got)
    assert total >= 20 * len(photos)


@pytest.mark.slow
def test_round_trip_is_exact_and_the_backbone_is_the_first_74_layers(darknet_files, tmp_path):
    cfg, weights, variables = darknet_files
    kwargs, read = from_darknet(cfg, weights)
    jax.tree.map(np.testing.assert_array_equal, read, variables)
    again = str(tmp_path / "again.weights")
    to_darknet(kwargs, read, None, again)
    assert open(again, "rb").read() == open(weights, "rb").read()
    # darknet53.conv.74: the same floats up to the last backbone convolution (layer 73)
    backbone = {c: {"backbone": v["backbone"]} for c, v in variables.items()}
    conv74 = str(tmp_path / "darknet53.conv.74")
    to_darknet(kwargs, backbone, None, conv74)
    header, full = read_weights(weights)
    _, part = read_weights(conv74)
    # the byte sizes of pjreddie's yolov3.weights and darknet53.conv.74 (20-byte headers)
    assert header == (0, 2, 0, 0) and os.path.getsize(weights) == 248_007_048
    assert os.path.getsize(conv74) == 162_482_580
    np.testing.assert_array_equal(part, full[:len(part)])
    with pytest.raises(ValueError, match=rf"expected {len(full)} float32 .* found {len(part)} "
                                         r"\(the backbone's count: pass backbone=True"):
        from_darknet(cfg, conv74)
    _, only = from_darknet(cfg, conv74, backbone=True)
    # init_from: the backbone from the file, the necks and heads keep their initialisation
    fresh = jax.eval_shape(lambda: get_model("yolov3", **kwargs).init(
        jax.random.key(0), jnp.zeros((1, 64, 64, 3))))
    merged = merge_pretrained(fresh, only, heads=(), mapping=("backbone:backbone",))
    np.testing.assert_array_equal(merged["params"]["backbone"]["stem"]["conv"]["kernel"],
                                  variables["params"]["backbone"]["stem"]["conv"]["kernel"])
    assert isinstance(merged["params"]["head32_out"]["kernel"], jax.ShapeDtypeStruct)


@pytest.mark.slow
def test_cli_writes_a_checkpoint(darknet_files, tmp_path, capsys):
    cfg, weights, variables = darknet_files
    main(["--cfg", cfg, "--weights", weights, "--out", str(tmp_path / "ckpt")])
    assert "61,949,149 parameters" in capsys.readouterr().out  # the paper's YOLOv3 count
    restored = load_variables(str(tmp_path / "ckpt"))
    np.testing.assert_array_equal(restored["params"]["head8_out"]["bias"],
                                  variables["params"]["head8_out"]["bias"])


@pytest.mark.slow
def test_old_header_short_files_and_cfg_errors(darknet_files, tmp_path):
    cfg, weights, _ = darknet_files
    header, values = read_weights(weights)
    old = tmp_path / "old.weights"  # version 0.1: `seen` is int32
    old.write_bytes(np.array([0, 1, 0, 7], "<i4").tobytes() + values.tobytes())
    assert read_weights(str(old))[0] == (0, 1, 0, 7)
    np.testing.assert_array_equal(read_weights(str(old))[1], values)
    short = tmp_path / "short.weights"
    short.write_bytes(open(weights, "rb").read()[:-8])
    with pytest.raises(ValueError, match=rf"expected {len(values)} float32 values after the "
                                         rf"header, found {len(values) - 2}"):
        from_darknet(cfg, str(short))
    text = open(cfg).read()
    bad = tmp_path / "maxpool.cfg"
    bad.write_text(text.replace("[upsample]", "[maxpool]", 1))
    with pytest.raises(ValueError, match=r"section \[maxpool\] \(layer 85\): unsupported"):
        from_darknet(str(bad), weights)
    classes = tmp_path / "voc.cfg"  # 20 classes: fewer floats than this 80-class file
    classes.write_text(yolov3_cfg(num_classes=21, size=SIZE))
    with pytest.raises(ValueError, match=r"expected \d+ float32 values after the header, "
                                         rf"found {len(values)}"):
        from_darknet(str(classes), weights)
    swapped = tmp_path / "swapped.cfg"
    swapped.write_text(text.replace("mask=6,7,8", "mask=X").replace(
        "mask=0,1,2", "mask=6,7,8").replace("mask=X", "mask=0,1,2"))
    with pytest.raises(ValueError, match="anchors sorted by area"):
        from_darknet(str(swapped), weights)
    with pytest.raises(ValueError, match=r"model_kwargs width: expected 1.0 .*got 0.5"):
        to_darknet({"width": 0.5}, {"params": {}}, None, str(tmp_path / "half.weights"))
    wrong = tmp_path / "wrong.cfg"
    wrong.write_text(text.replace("filters=1024", "filters=1000", 1))
    with pytest.raises(ValueError, match=r"layer 62: expected .*'filters': 1024"):
        from_darknet(str(wrong), weights)


def test_cfg_gives_darknets_anchors_and_each_header_version_its_seen_type(tmp_path):
    """Small files only: a 20-class cfg at 608 reads back as 21 classes (with background) and
    the nine anchors of Darknet's yolov3.cfg (the paper's, Sec. 2.1); `seen` is int32 before
    version 0.2 and int64 from it on."""
    cfg = tmp_path / "voc.cfg"
    cfg.write_text(yolov3_cfg(num_classes=21, size=608))
    kwargs = model_kwargs_from_cfg(str(cfg))
    assert kwargs["num_classes"] == 21 and kwargs["anchors_per_cell"] == 3
    assert kwargs["anchors"] == tuple(zip(CFG_ANCHORS[::2], CFG_ANCHORS[1::2], strict=True))
    assert read_cfg(str(cfg))[0] == ("net", {"width": "608", "height": "608", "channels": "3"})
    values = np.arange(6, dtype="<f4")
    for version, seen in (((0, 1, 0), "<i4"), ((0, 2, 0), "<i8"), ((1, 0, 0), "<i8")):
        path = tmp_path / "tiny.weights"
        path.write_bytes(np.array(version, "<i4").tobytes() + np.array([7], seen).tobytes()
                         + values.tobytes())
        header, read = read_weights(str(path))
        assert header == (*version, 7), version
        np.testing.assert_array_equal(read, values)


def test_letterbox_sizes_and_mapping_back():
    # Darknet's letterbox_image: 451 x 300 (W x H) -> 416 x floor(300 * 416 / 451) = 276,
    # placed at dy = (416 - 276) / 2 = 70; 400 x 600 -> floor(400 * 416 / 600) = 277 x 416
    assert letterbox_size(300, 451, 416) == (276, 416)
    assert letterbox_size(600, 400, 416) == (416, 277)
    assert letterbox_size(416, 416, 416) == (416, 416)
    boxes = np.array([[10.0, 20.0, 200.0, 290.0], [0.0, 0.0, 451.0, 300.0]], np.float32)
    example = ExampleTransform(FIELDS, 8, resize="letterbox", fixed_size=416)(
        {"image": skimage.data.chelsea(), "boxes": boxes, "labels": np.array([1, 2])}, 0)
    assert example["image"].shape == (416, 416, 3)
    assert tuple(example["image_origin"]) == (70, 0)
    assert tuple(example["image_size"]) == (276, 416)
    np.testing.assert_allclose(example["boxes"][1], [0, 70, 416, 346], atol=1e-4)
    grey = (127.5 - np.array([0.485, 0.456, 0.406]) * 255) / (np.array([0.229, 0.224, 0.225])
                                                             * 255)
    np.testing.assert_allclose(example["image"][69, 5], grey, rtol=1e-6)
    np.testing.assert_allclose(example["image"][346, 5], grey, rtol=1e-6)
    assert not np.allclose(example["image"][70, 5], grey)
    back = boxes_to_original(example["boxes"][:2], example["image_size"], (300, 451),
                             example["image_origin"])
    np.testing.assert_allclose(back, boxes, atol=1e-3)
