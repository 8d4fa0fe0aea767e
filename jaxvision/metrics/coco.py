"""COCO detection metrics through pycocotools' COCOeval, and the COCO JSON converters.

Per-image dicts (host numpy) become COCO's instances format (ground truth) and results format
(detections); `evaluate_coco_json` runs COCOeval on those JSON-ready objects, so a trainer can
write them to disk and anyone can re-score them with pycocotools.

Conventions:
- Image ids are the list positions 0, 1, ... unless `image_ids` gives one int per image.
- Category ids are the labels. Annotation ids run from 1 (COCOeval reads id 0 as "unmatched").
- Boxes are xyxy absolute pixels in, COCO's [x, y, width, height] out, in continuous
  coordinates (width = x2 - x1).
- A mask pixel is in the mask when its value is > 0.5 (prediction probabilities and 0/1 ground
  truth alike); masks are written as compressed RLE with `counts` a str.
- Ground-truth `area` is the mask's pixel count when the image has masks (as in COCO, for bbox
  and segm evaluation alike), else the box area; it decides the small/medium/large ranges.
- The numbers are COCOeval's: -1 where there is nothing to score (no ground truth in the
  category or area range, e.g. APl with no large box; all -1 with no ground truth at all); a
  category with no ground truth is left out of the means; with ground truth and no detections
  AP and AR are 0 (an empty results list is evaluated without `loadRes`, which fails on it).
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Mapping, Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from jaxvision.metrics._detections import check_lists, get_boxes, get_masks, get_vector

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
              "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = ("bbox", "segm")


def _check_iou_type(iou_type):
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")


def _image_ids(image_ids, count: int) -> list[int]:
    if image_ids is None:
        return list(range(count))
    ids = np.asarray(image_ids)
    if ids.shape != (count,):
        raise ValueError(f"image_ids must have one id per image: shape [{count}], "
                         f"got {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"image_ids must be integers, got dtype {ids.dtype}")
    if len(set(ids.tolist())) != count:
        raise ValueError(f"image_ids must be distinct, got {ids.tolist()}")
    return [int(i) for i in ids]


def _xywh(boxes) -> list[list[float]]:
    """boxes [K, 4] xyxy -> K lists [x, y, width, height] of Python floats."""
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).tolist()


def _encode(masks) -> list[dict]:
    """masks [K, H, W] -> K compressed RLEs {'size': [H, W], 'counts': str} of (masks > 0.5)."""
    if len(masks) == 0:
        return []
    binary = np.asfortranarray((np.asarray(masks) > 0.5).transpose(1, 2, 0).astype(np.uint8))
    rles = mask_utils.encode(binary)
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")}
            for r in rles]


def _categories(labels, class_names) -> list[dict]:
    if class_names is None:
        return [{"id": int(c), "name": str(int(c))} for c in sorted(set(labels))]
    if isinstance(class_names, Mapping):
        names = {int(k): str(v) for k, v in class_names.items()}
    elif isinstance(class_names, Sequence) and not isinstance(class_names, str):
        names = {k: str(v) for k, v in enumerate(class_names)}
    else:
        raise ValueError("class_names must be a sequence indexed by label or a mapping "
                         f"label -> name, got {type(class_names).__name__}")
    missing = sorted(set(labels) - set(names))
    if missing:
        raise ValueError(f"class_names has no name for ground-truth labels {missing} "
                         f"(names given for {sorted(names)})")
    return [{"id": k, "name": names[k]} for k in sorted(names)]


def coco_ground_truth_json(ground_truth, class_names=None, image_ids=None) -> dict:
    """COCO instances-format dict (JSON-serialisable) of per-image ground truth.

    ground_truth: list, one dict per image: boxes [M, 4] xyxy absolute, labels [M] (category
      ids), optional iscrowd [M] bool, masks [M, H, W] (then segmentation RLE and area from the
      mask), height and width (default: the masks' H, W; left out when neither is given).
    class_names: None (categories = the labels present, named by their number), a sequence
      indexed by label, or a mapping label -> name (every named label becomes a category).
    image_ids: one distinct int per image; default the list positions.
    """
    if isinstance(ground_truth, Mapping) or not isinstance(ground_truth, Sequence):
        raise ValueError("ground_truth must be a list with one dict per image, "
                         f"got {type(ground_truth).__name__}")
    ids = _image_ids(image_ids, len(ground_truth))
    images, annotations, all_labels = [], [], []
    for i, gt in enumerate(ground_truth):
        boxes = get_boxes(gt, "ground_truth", i, check_order=True)
        labels = get_vector(gt, "ground_truth", i, "labels", len(boxes), "int")
        iscrowd = get_vector(gt, "ground_truth", i, "iscrowd", len(boxes), "bool", default=False)
        image = {"id": ids[i]}
        size = {}
        for key in ("height", "width"):
            if key in gt:
                value = np.asarray(gt[key])
                if (value.shape != () or not np.issubdtype(value.dtype, np.number)
                        or value != np.round(value) or value < 1):
                    raise ValueError(f"ground_truth[{i}]['{key}'] must be a positive integer, "
                                     f"got {gt[key]!r}")
                size[key] = int(value)
        rles = None
        if "masks" in gt:
            masks = get_masks(gt, "ground_truth", i, len(boxes))
            for key, extent in zip(("height", "width"), masks.shape[1:], strict=True):
                if size.setdefault(key, int(extent)) != extent:
                    raise ValueError(f"ground_truth[{i}]['masks'] must be [M, height, width] = "
                                     f"[{len(boxes)}, {size['height']}, {size['width']}], "
                                     f"got {masks.shape}")
            rles = _encode(masks)
            areas = [float(a) for a in mask_utils.area(rles)] if rles else []
        else:
            areas = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).tolist()
        image.update({k: size[k] for k in ("height", "width") if k in size})
        images.append(image)
        for k, xywh in enumerate(_xywh(boxes)):
            ann = {"id": len(annotations) + 1, "image_id": ids[i],
                   "category_id": int(labels[k]), "bbox": xywh, "area": areas[k],
                   "iscrowd": int(iscrowd[k])}
            if rles is not None:
                ann["segmentation"] = rles[k]
            annotations.append(ann)
        all_labels.extend(int(c) for c in labels)
    return {"images": images, "annotations": annotations,
            "categories": _categories(all_labels, class_names)}


def coco_results_json(predictions, iou_type: str = "bbox", image_ids=None) -> list[dict]:
    """COCO results-format list (JSON-serialisable) of per-image detections.

    predictions: list, one dict per image: boxes [N, 4] xyxy absolute, scores [N], labels [N]
      (category ids), and for iou_type 'segm' masks [N, H, W] at image size (probabilities or
      binary; pixel in the mask iff > 0.5).
    Each entry: image_id, category_id, bbox [x, y, w, h], score, and for 'segm' also
    segmentation (compressed RLE). `evaluate_coco_json` drops 'bbox' for segm evaluation, so
    that a detection's area is its mask's, as pycocotools' loadRes computes it.
    """
    _check_iou_type(iou_type)
    if isinstance(predictions, Mapping) or not isinstance(predictions, Sequence):
        raise ValueError("predictions must be a list with one dict per image, "
                         f"got {type(predictions).__name__}")
    ids = _image_ids(image_ids, len(predictions))
    results = []
    for i, pred in enumerate(predictions):
        boxes = get_boxes(pred, "predictions", i, check_order=False)
        scores = get_vector(pred, "predictions", i, "scores", len(boxes), "float")
        labels = get_vector(pred, "predictions", i, "labels", len(boxes), "int")
        rles = None
        if iou_type == "segm":
            rles = _encode(get_masks(pred, "predictions", i, len(boxes)))
        for k, (xywh, label, score) in enumerate(
                zip(_xywh(boxes), labels.tolist(), scores.tolist(), strict=True)):
            entry = {"image_id": ids[i], "category_id": label, "bbox": xywh, "score": score}
            if rles is not None:
                entry["segmentation"] = rles[k]
            results.append(entry)
    return results


def _check_json(gt_dict, results, iou_type):
    if not isinstance(gt_dict, Mapping):
        raise ValueError(f"gt_dict must be a COCO instances dict, got {type(gt_dict).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in gt_dict:
            raise ValueError(f"gt_dict has no '{key}' field (fields given: {sorted(gt_dict)})")
    if iou_type == "segm":
        for ann in gt_dict["annotations"]:
            if "segmentation" not in ann:
                raise ValueError("gt_dict['annotations'] need 'segmentation' for iou_type "
                                 f"'segm'; annotation id {ann.get('id')} has none")
    if isinstance(results, Mapping) or not isinstance(results, Sequence):
        raise ValueError(f"results must be a list of COCO result dicts, "
                         f"got {type(results).__name__}")
    known = {img["id"] for img in gt_dict["images"]}
    need = ("image_id", "category_id", "score", "bbox" if iou_type == "bbox" else "segmentation")
    for k, res in enumerate(results):
        missing = [key for key in need if key not in res]
        if missing:
            raise ValueError(f"results[{k}] has no {missing} field for iou_type {iou_type!r}")
        if res["image_id"] not in known:
            raise ValueError(f"results[{k}]['image_id'] = {res['image_id']!r} is not an image "
                             "id of gt_dict['images']")


def evaluate_coco_json(gt_dict, results, iou_type: str = "bbox", verbose: bool = False) -> dict:
    """COCOeval summary of COCO-format ground truth and results -> {'AP', ..., 'ARl'} floats.

    gt_dict: COCO instances dict (e.g. from coco_ground_truth_json); results: COCO results list
    (e.g. from coco_results_json). Neither is modified. verbose: let pycocotools print.
    """
    _check_iou_type(iou_type)
    _check_json(gt_dict, results, iou_type)
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(dict(gt_dict))
        coco_gt.createIndex()
        results = [dict(r) for r in results]
        if iou_type == "segm":
            for r in results:
                r.pop("bbox", None)  # loadRes then takes the area from the mask
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(coco_gt.dataset["images"]),
                               "categories": copy.deepcopy(coco_gt.dataset["categories"]),
                               "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(v) for name, v in zip(STAT_NAMES, evaluator.stats, strict=True)}


def coco_evaluate(predictions, ground_truth, iou_type: str = "bbox", image_ids=None,
                  verbose: bool = False) -> dict:
    """COCO AP/AR of per-image detections -> {'AP', 'AP50', ..., 'ARl'} (COCOeval's numbers).

    predictions: list, one dict per image: boxes [N, 4] xyxy absolute, scores [N], labels [N],
      masks [N, H, W] for 'segm'.
    ground_truth: list of the same length: boxes [M, 4] xyxy absolute, labels [M], optional
      iscrowd [M], masks [M, H, W] (required for 'segm'), height, width.
    image_ids: one distinct int per image (default the list positions).
    """
    _check_iou_type(iou_type)
    check_lists(predictions, ground_truth)
    if iou_type == "segm":
        for i, (pred, gt) in enumerate(zip(predictions, ground_truth, strict=True)):
            gt_masks = get_masks(gt, "ground_truth", i,
                                 len(get_boxes(gt, "ground_truth", i, check_order=True)))
            pred_masks = get_masks(pred, "predictions", i,
                                   len(get_boxes(pred, "predictions", i, check_order=False)))
            want = (gt.get("height", gt_masks.shape[1]), gt.get("width", gt_masks.shape[2]))
            if tuple(pred_masks.shape[1:]) != tuple(int(v) for v in want):
                raise ValueError(f"predictions[{i}]['masks'] must be [N, height, width] with the "
                                 f"ground truth's height, width {tuple(int(v) for v in want)}, "
                                 f"got {pred_masks.shape}")
    gt_dict = coco_ground_truth_json(ground_truth, image_ids=image_ids)
    results = coco_results_json(predictions, iou_type, image_ids=image_ids)
    return evaluate_coco_json(gt_dict, results, iou_type, verbose=verbose)
