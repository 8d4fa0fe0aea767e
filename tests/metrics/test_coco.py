"""coco_evaluate and the COCO JSON converters against pycocotools on independently built data."""

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from jaxvision.metrics import (
    coco_evaluate,
    coco_ground_truth_json,
    coco_results_json,
    evaluate_coco_json,
)

NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def _ellipse(h, w, box):
    x1, y1, x2, y2 = box
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1


def _dataset(seed):
    """Per-image dicts: small/medium/large boxes with elliptic masks, crowd boxes, an image with
    no ground truth, an image with no detections, detections of a label (5) with no ground truth."""
    rng = np.random.default_rng(seed)
    predictions, ground_truth = [], []
    for i in range(8):
        h, w = (128, 128) if i % 2 == 0 else (120, 136)
        m = 0 if i == 2 else int(rng.integers(1, 6))
        boxes, labels, masks, crowd = [], [], [], []
        for _ in range(m):
            size = rng.choice([rng.uniform(5, 25), rng.uniform(40, 80), rng.uniform(105, 118)])
            bw, bh = size * rng.uniform(0.85, 1.0, 2)
            x1, y1 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            box = np.array([x1, y1, x1 + bw, y1 + bh])
            boxes.append(box)
            masks.append(_ellipse(h, w, box))
            labels.append(int(rng.integers(1, 5)))
            crowd.append(bool(rng.random() < 0.15))
        boxes = np.array(boxes, np.float32).reshape(-1, 4)
        ground_truth.append({"boxes": boxes, "labels": np.array(labels, np.int64),
                             "iscrowd": np.array(crowd), "height": h, "width": w,
                             "masks": np.array(masks, np.uint8).reshape(-1, h, w)})
        src = rng.integers(0, m, int(rng.integers(0, 2 * m + 1))) if m else np.zeros(0, int)
        det_boxes = boxes[src] + rng.normal(0, 2.5, (len(src), 4))
        det_labels = np.array(labels, np.int64)[src] if m else np.zeros(0, np.int64)
        det_labels = np.where(rng.random(len(src)) < 0.15, rng.integers(1, 6, len(src)),
                              det_labels)
        k = int(rng.integers(1 if i == 2 else 0, 4))  # detections on the empty image
        xy = rng.uniform(0, 90, (k, 2))
        clutter = np.concatenate([xy, xy + rng.uniform(3, 40, (k, 2))], 1)
        det_boxes = np.concatenate([det_boxes, clutter]).astype(np.float32)
        det_labels = np.concatenate([det_labels, rng.integers(1, 6, k)])
        det_masks = np.array([_ellipse(h, w, b) for b in det_boxes]).reshape(-1, h, w)
        det_masks = det_masks * rng.uniform(0.3, 1.0, det_masks.shape)  # probabilities
        scores = rng.random(len(det_boxes)).astype(np.float32)
        if i == 5:
            det_boxes, det_labels, det_masks, scores = (
                det_boxes[:0], det_labels[:0], det_masks[:0], scores[:0])
        predictions.append({"boxes": det_boxes, "scores": scores, "labels": det_labels,
                            "masks": det_masks.astype(np.float32)})
    return predictions, ground_truth


def _reference(predictions, ground_truth, iou_type, use_masks_for_area=True):
    """pycocotools on a COCO dict built here, with categories 1..5 (5 has no ground truth)."""
    images, anns, results = [], [], []
    for i, (p, g) in enumerate(zip(predictions, ground_truth, strict=True)):
        images.append({"id": i, "height": g["height"], "width": g["width"]})
        for b, lab, crowd, mk in zip(g["boxes"], g["labels"], g["iscrowd"], g["masks"],
                                     strict=True):
            x1, y1, x2, y2 = (float(v) for v in b)
            rle = mask_utils.encode(np.asfortranarray(mk.astype(np.uint8)))
            area = float(mk.sum()) if use_masks_for_area else (x2 - x1) * (y2 - y1)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(lab),
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": area,
                         "iscrowd": int(crowd), "segmentation": rle})
        for b, s, lab, mk in zip(p["boxes"], p["scores"], p["labels"], p["masks"], strict=True):
            x1, y1, x2, y2 = (float(v) for v in b)
            res = {"image_id": i, "category_id": int(lab), "score": float(s)}
            if iou_type == "bbox":
                res["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            else:
                binary = np.asfortranarray((mk > 0.5).astype(np.uint8))
                res["segmentation"] = mask_utils.encode(binary)
            results.append(res)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": c, "name": f"c{c}"} for c in range(1, 6)]}
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(NAMES, ev.stats, strict=True))


def _assert_stats(got, want):
    assert list(got) == NAMES
    assert all(type(v) is float for v in got.values())
    np.testing.assert_allclose([got[k] for k in NAMES], [want[k] for k in NAMES], rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_matches_pycocotools(seed, iou_type):
    predictions, ground_truth = _dataset(seed)
    want = _reference(predictions, ground_truth, iou_type)
    assert -1 < want["APs"] and -1 < want["APm"] and -1 < want["APl"]  # all three ranges hit
    _assert_stats(coco_evaluate(predictions, ground_truth, iou_type), want)


def test_bbox_without_masks_uses_box_area():
    predictions, ground_truth = _dataset(2)
    want = _reference(predictions, ground_truth, "bbox", use_masks_for_area=False)
    for g in ground_truth:
        del g["masks"]
    _assert_stats(coco_evaluate(predictions, ground_truth), want)  # default iou_type bbox


def test_no_detections_gives_zero_and_no_ground_truth_minus_one():
    e = np.zeros((0, 4), np.float32)
    gt = [{"boxes": np.array([[0, 0, 10, 10]], np.float32), "labels": [1]},
          {"boxes": e, "labels": []}]
    nothing = [{"boxes": e, "scores": [], "labels": []}] * 2
    got = coco_evaluate(nothing, gt)
    assert got["AP"] == 0.0 and got["APs"] == 0.0 and got["AR100"] == 0.0
    assert got["APm"] == -1.0 and got["APl"] == -1.0 and got["ARl"] == -1.0
    got = coco_evaluate(nothing, [{"boxes": e, "labels": []}] * 2)
    assert set(got.values()) == {-1.0}


def test_mask_binarised_strictly_above_half():
    h = w = 40
    gt_mask = np.zeros((h, w), np.uint8)
    gt_mask[0:10, 0:20] = 1
    pred_mask = gt_mask.astype(np.float32)
    pred_mask[10:20, 0:20] = 0.5  # exactly 0.5: outside the mask; else IoU would be 1/2
    gt = [{"boxes": np.array([[0, 0, 20, 10]], np.float32), "labels": [1],
           "masks": gt_mask[None], "height": h, "width": w}]
    preds = [{"boxes": np.array([[0, 0, 20, 20]], np.float32), "scores": [0.9], "labels": [1],
              "masks": pred_mask[None]}]
    got = coco_evaluate(preds, gt, "segm")
    assert got["AP75"] == pytest.approx(1.0) and got["AP"] == pytest.approx(1.0)
    assert coco_evaluate(preds, gt, "bbox")["AP75"] == 0.0  # boxes: IoU 1/2


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_json_round_trip_and_contents():
    predictions, ground_truth = _dataset(3)
    names = ["background", "a", "b", "c", "d", "e"]
    gt_dict = coco_ground_truth_json(ground_truth, class_names=names)
    results = coco_results_json(predictions, "segm")
    gt_loaded = json.loads(json.dumps(gt_dict))  # fails on numpy scalars or bytes
    res_loaded = json.loads(json.dumps(results))
    assert gt_loaded == gt_dict and res_loaded == results
    assert gt_dict["categories"] == [{"id": k, "name": n} for k, n in enumerate(names)]
    assert gt_dict["images"] == [{"id": i, "height": g["height"], "width": g["width"]}
                                 for i, g in enumerate(ground_truth)]
    anns = iter(gt_dict["annotations"])
    for i, g in enumerate(ground_truth):
        for b, lab, crowd, mk in zip(g["boxes"], g["labels"], g["iscrowd"], g["masks"],
                                     strict=True):
            ann = next(anns)
            b = b.astype(np.float64)
            assert (ann["image_id"], ann["category_id"], ann["iscrowd"]) == (i, lab, crowd)
            np.testing.assert_array_equal(ann["bbox"], [b[0], b[1], b[2] - b[0], b[3] - b[1]])
            assert ann["area"] == mk.sum()
            assert isinstance(ann["segmentation"]["counts"], str)
            np.testing.assert_array_equal(mask_utils.decode(ann["segmentation"]), mk)
    assert next(anns, None) is None
    assert [a["id"] for a in gt_dict["annotations"]] == list(range(1, len(gt_dict["annotations"])
                                                                 + 1))
    flat = [(i, k) for i, p in enumerate(predictions) for k in range(len(p["boxes"]))]
    assert len(results) == len(flat)
    for r, (i, k) in zip(results, flat, strict=True):
        p = predictions[i]
        assert r["image_id"] == i and r["category_id"] == p["labels"][k]
        assert r["score"] == float(p["scores"][k])
        b = p["boxes"][k].astype(np.float64)
        assert r["bbox"] == [b[0], b[1], b[2] - b[0], b[3] - b[1]]
        np.testing.assert_array_equal(mask_utils.decode(r["segmentation"]), p["masks"][k] > 0.5)
    for iou_type in ("bbox", "segm"):
        want = _reference(predictions, ground_truth, iou_type)
        before = json.dumps([gt_loaded, res_loaded])
        _assert_stats(evaluate_coco_json(gt_loaded, res_loaded, iou_type), want)
        assert json.dumps([gt_loaded, res_loaded]) == before  # inputs left as they were
    assert "segmentation" not in coco_results_json(predictions)[0]  # default bbox


def test_image_ids_and_quiet_stdout(capsys):
    predictions, ground_truth = _dataset(4)
    ids = [100 + 7 * i for i in range(len(ground_truth))]
    got = coco_evaluate(predictions, ground_truth, "bbox", image_ids=ids)
    assert capsys.readouterr().out == ""
    _assert_stats(got, _reference(predictions, ground_truth, "bbox"))
    assert [im["id"] for im in coco_ground_truth_json(ground_truth, image_ids=ids)["images"]] == ids
    assert {r["image_id"] for r in coco_results_json(predictions, image_ids=ids)} <= set(ids)
    coco_evaluate(predictions, ground_truth, "bbox", verbose=True)
    assert "Average Precision" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p, g: coco_evaluate(p, g, "keypoints"), "iou_type"),
        (lambda p, g: coco_evaluate(p[:1], g), "same length"),
        (lambda p, g: coco_evaluate(p, [{k: v for k, v in g[0].items() if k != "masks"}, g[1]],
                                    "segm"),
         r"ground_truth\[0\] has no 'masks'"),
        (lambda p, g: coco_evaluate([{**p[0], "masks": np.zeros((1, 8, 8))}, p[1]], g, "segm"),
         r"predictions\[0\]\['masks'\]"),
        (lambda p, g: coco_evaluate([{**p[0], "labels": [1, 2]}, p[1]], g),
         r"predictions\[0\]\['labels'\]"),
        (lambda p, g: coco_evaluate(p, [{**g[0], "iscrowd": [0, 1]}, g[1]]),
         r"ground_truth\[0\]\['iscrowd'\]"),
        (lambda p, g: coco_evaluate(p, [{**g[0], "boxes": np.zeros((1, 3))}, g[1]]),
         r"ground_truth\[0\]\['boxes'\]"),
        (lambda p, g: coco_evaluate(p, g, image_ids=[1]), "image_ids"),
        (lambda p, g: coco_evaluate(p, g, image_ids=[1, 1]), "image_ids"),
        (lambda p, g: coco_ground_truth_json(g, class_names=["bg"]), "class_names"),
        (lambda p, g: coco_ground_truth_json([{**g[0], "height": 7}, g[1]]),
         r"ground_truth\[0\]\['masks'\]"),
        (lambda p, g: evaluate_coco_json(coco_ground_truth_json(g),
                                         coco_results_json(p, image_ids=[0, 9])),
         r"results\[1\]\['image_id'\]"),
        (lambda p, g: evaluate_coco_json(coco_ground_truth_json(g), [{"image_id": 0}]),
         r"results\[0\] has no"),
    ],
)
def test_bad_input_names_the_field(call, field):
    h = w = 16
    mk = np.zeros((1, h, w), np.uint8)
    mk[0, 2:6, 2:6] = 1
    g = [{"boxes": np.array([[2, 2, 6, 6]], np.float32), "labels": [1], "masks": mk,
          "height": h, "width": w},
         {"boxes": np.array([[1, 1, 3, 3]], np.float32), "labels": [2], "masks": mk,
          "height": h, "width": w}]
    p = [{"boxes": np.array([[2, 2, 6, 6]], np.float32), "scores": [0.5], "labels": [1],
          "masks": mk.astype(np.float32)},
         {"boxes": np.array([[2, 2, 6, 6]], np.float32), "scores": [0.5], "labels": [1],
          "masks": mk.astype(np.float32)}]
    for iou_type in ("bbox", "segm"):
        coco_evaluate(copy.deepcopy(p), copy.deepcopy(g), iou_type)
    with pytest.raises(ValueError, match=field):
        call(p, g)
