"""Detection evaluation in the dataset's own frame, on a COCO folder of real photographs: the
results file scored by pycocotools against the folder's own `instances_val.json` gives exactly
the logged metrics; detections made from the user's boxes come back to them; masks are pasted at
the original resolution as torchvision pastes them."""

import json
import types

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste

from jaxvision.data import ExampleTransform, eval_batches, load_splits
from jaxvision.metrics.coco import STAT_NAMES
from jaxvision.tasks import get_task
from jaxvision.tasks.original_frame import paste_masks
from tests.data.coco_photos import write_coco_photos

MIN_SIZE, MAX_SIZE, D = 128, 160, 8


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("frame")
    root = tmp / "coco"
    data = write_coco_photos(str(root))
    cfg = types.SimpleNamespace(image_size=0, data_dir=str(tmp / "tfds"), skip_bad_images=False,
                                builders=types.SimpleNamespace(coco={"masks": None}))
    return root, data, load_splits(f"coco:{root}", cfg, instance_masks=False)


def _resized(h: int, w: int) -> tuple[int, int]:
    """torchvision GeneralizedRCNNTransform's resized size, written here from its rule."""
    scale = min(MIN_SIZE / min(h, w), MAX_SIZE / max(h, w))
    return int(np.floor(h * scale)), int(np.floor(w * scale))


def _evaluate(folder, tmp_path, noise: float, masks: bool = False, seed: int = 0):
    """Detections made from the file's own non-crowd boxes (moved into the resized frame, with
    `noise` px of jitter), fed through the evaluator; returns (metrics, results, eval dir)."""
    root, data, splits = folder
    task = get_task("detection", splits.class_names, masks=masks)
    fields = tuple(f for f in task.fields if f != "masks")  # as the trainer's eval transform
    transform = ExampleTransform(fields, max_boxes=4, resize="min_max", min_size=MIN_SIZE,
                                 max_size=MAX_SIZE, size_divisible=32)
    label_of = {c["id"]: k + 1 for k, c in enumerate(sorted(data["val"]["categories"],
                                                            key=lambda c: c["id"]))}
    images = {img["id"]: img for img in data["val"]["images"]}
    out = tmp_path / "eval"
    evaluator = task.evaluator(str(out), splits)
    rng = np.random.default_rng(seed)
    for batch in eval_batches(splits.test, transform, global_batch=3):
        keep = np.asarray(batch.pop("example_valid"), bool)
        b = len(keep)
        pred = {"boxes": np.zeros((b, D, 4), np.float32), "scores": np.zeros((b, D), np.float32),
                "labels": np.zeros((b, D), np.int32), "valid": np.zeros((b, D), bool),
                "masks": np.ones((b, D, 28, 28), np.float32)}
        for i in range(b):
            img = images[int(batch["image_id"][i])]
            h, w = _resized(img["height"], img["width"])
            np.testing.assert_array_equal(batch["image_size"][i], [h, w])
            anns = [a for a in data["val"]["annotations"]
                    if a["image_id"] == img["id"] and not a["iscrowd"]]
            for k, ann in enumerate(anns):
                x, y, bw, bh = ann["bbox"]
                box = np.array([x, y, x + bw, y + bh]) * ([w / img["width"], h / img["height"]] * 2)
                pred["boxes"][i, k] = np.clip(box + rng.normal(0, noise, 4), 0, [w, h, w, h])
                pred["labels"][i, k] = label_of[ann["category_id"]]
                pred["scores"][i, k] = rng.uniform(0.1, 1.0)
                pred["valid"][i, k] = True
        if not masks:
            del pred["masks"]
        evaluator.update({k: v[keep] for k, v in pred.items()},
                         {k: v[keep] for k, v in batch.items()})
    metrics = evaluator.result()
    with open(out / "coco_instances_results.json") as f:
        return metrics, json.load(f), out


def _cocoeval(gt_path, results, iou_type: str) -> dict:
    gt = COCO(str(gt_path))
    if iou_type == "segm":
        results = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    ev = COCOeval(gt, gt.loadRes(results), iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return dict(zip(STAT_NAMES, ev.stats, strict=True))


def test_detections_of_the_users_boxes_come_back_to_them(folder, tmp_path):
    root, data, _ = folder
    metrics, results, out = _evaluate(folder, tmp_path, noise=0.0)
    by_id = {a["image_id"]: [] for a in data["val"]["annotations"]}
    for a in data["val"]["annotations"]:
        if not a["iscrowd"]:
            by_id[a["image_id"]].append(a)
    assert len(results) == sum(len(v) for v in by_id.values()) == 11
    for r in results:  # the file's image and category ids, its boxes in its pixels
        near = [a for a in by_id[r["image_id"]] if a["category_id"] == r["category_id"]
                and np.allclose(a["bbox"], r["bbox"], atol=2e-4)]
        assert len(near) == 1, r
    assert metrics["bbox/AP"] == 1.0 and metrics["bbox/AR100"] == 1.0
    assert metrics["voc07/mAP"] == 1.0 and metrics["voc/mAP"] == 1.0
    with open(out / "coco_gt.json") as f:  # the user's file itself: every instance, crowd too
        assert json.load(f) == data["val"]
    assert metrics["eval/gt_instances"] == 12 and metrics["eval/images"] == 4
    assert metrics["eval/skipped_images"] == 0


def test_logged_metrics_are_pycocotools_on_the_users_own_file(folder, tmp_path):
    root, _, _ = folder
    metrics, results, _ = _evaluate(folder, tmp_path, noise=3.0)
    want = _cocoeval(root / "annotations" / "instances_val.json", results, "bbox")
    assert {k: metrics[f"bbox/{k}"] for k in STAT_NAMES} == want
    assert 0.1 < metrics["bbox/AP"] < 0.9
    assert want["APs"] != -1 and want["APm"] != -1  # the area ranges of the file's own areas


def test_masks_are_pasted_at_the_original_resolution(folder, tmp_path):
    root, data, _ = folder
    metrics, results, _ = _evaluate(folder, tmp_path, noise=1.0, masks=True, seed=1)
    want = _cocoeval(root / "annotations" / "instances_val.json", results, "segm")
    assert {k: metrics[f"segm/{k}"] for k in STAT_NAMES} == want
    assert 0.1 < metrics["segm/AP"] < 0.95  # full-box masks over triangles and quads
    sizes = {img["id"]: (img["height"], img["width"]) for img in data["val"]["images"]}
    for r in results:  # the whole 28 x 28 box mask, pasted by torchvision at the original size
        h, w = sizes[r["image_id"]]
        x, y, bw, bh = r["bbox"]
        box = torch.tensor([[x, y, x + bw, y + bh]], dtype=torch.float32)
        pasted = tv_paste(torch.ones(1, 1, 28, 28), box, (h, w))[0, 0].numpy()
        np.testing.assert_array_equal(mask_utils.decode(r["segmentation"]), pasted > 0.5)


def test_host_paste_matches_torchvision():
    rng = np.random.default_rng(0)
    h, w = 37, 53
    corners = np.sort(rng.uniform(0, 36, (40, 2, 2)), axis=1)  # [x1 y1] <= [x2 y2]
    boxes = np.concatenate([corners.reshape(40, 4),
                            [[3, 4, 3, 4], [20.5, 3.25, 52.9, 36.9], [-6.5, -3.2, 8.1, 9.9],
                             [10, 30, 20, 45]]])
    boxes = boxes.astype(np.float32)
    masks = rng.uniform(size=(len(boxes), 28, 28)).astype(np.float32)
    want = tv_paste(torch.tensor(masks[:, None]), torch.tensor(boxes), (h, w))[:, 0].numpy()
    got = paste_masks(masks, boxes, h, w)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert (want > 0).sum() > 1000


def test_voc_folder_ground_truth_keeps_its_names_ids_and_difficult(tmp_path):
    """voc:<root> under SSD's fixed resize: the built ground truth names each image, writes
    `difficult` as crowd (ignored), and detections of every box (the difficult one included)
    come back to the XML's boxes and score 1.0."""
    from tests.data.test_voc_folder import OBJECTS, VOC_CLASSES, _cfg, _write

    root = _write(tmp_path)
    splits = load_splits(f"voc:{root}", _cfg(tmp_path))
    task = get_task("detection", splits.class_names)
    transform = ExampleTransform(task.fields, max_boxes=1, resize="fixed", fixed_size=64)
    evaluator = task.evaluator(str(tmp_path / "eval"), splits)
    want = {}
    for batch in eval_batches(splits.test, transform, global_batch=2):
        del batch["example_valid"]
        pred = {"boxes": np.zeros((2, 4, 4), np.float32), "scores": np.zeros((2, 4), np.float32),
                "labels": np.zeros((2, 4), np.int32), "valid": np.zeros((2, 4), bool)}
        for i, image_id in enumerate(batch["image_id"]):
            h, w = (int(v) for v in batch["orig_size"][i])
            for k, obj in enumerate(OBJECTS[f"{int(image_id):06d}"]):
                x0, y0, x1, y1 = obj["box"]  # 1-based inclusive -> continuous (detectron2),
                box = np.clip([x0 - 1, y0 - 1, x1, y1], 0, [w, h, w, h])  # 1 px slack: clip
                want.setdefault(int(image_id), []).append(
                    (VOC_CLASSES.index(obj["name"]) + 1, box, bool(obj["difficult"])))
                pred["boxes"][i, k] = box * ([64 / w, 64 / h] * 2)
                pred["labels"][i, k] = VOC_CLASSES.index(obj["name"]) + 1
                pred["scores"][i, k], pred["valid"][i, k] = 0.9 - 0.1 * k, True
        evaluator.update(pred, batch)
    metrics = evaluator.result()
    with open(tmp_path / "eval" / "coco_gt.json") as f:
        gt = json.load(f)
    assert [(img["id"], img["file_name"]) for img in gt["images"]] == [(12, "000012"),
                                                                      (16, "000016")]
    got = sorted((a["image_id"], a["category_id"], a["iscrowd"]) for a in gt["annotations"])
    assert got == sorted((i, c, int(d)) for i, objs in want.items() for c, _, d in objs)
    with open(tmp_path / "eval" / "coco_instances_results.json") as f:
        for r in json.load(f):
            x, y, bw, bh = r["bbox"]
            assert any(c == r["category_id"] and np.allclose(b, [x, y, x + bw, y + bh],
                                                             atol=1e-4)
                       for c, b, _ in want[r["image_id"]])
    assert metrics["voc07/mAP"] == metrics["voc/mAP"] == 1.0, metrics
    assert metrics["bbox/AP"] == pytest.approx(1.0, abs=1e-12)  # COCOeval's float sums


def test_a_skipped_image_is_counted_and_its_ground_truth_still_scored(tmp_path):
    root = tmp_path / "coco"
    data = write_coco_photos(str(root))
    (root / "images" / "coins.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # 3 instances
    cfg = types.SimpleNamespace(image_size=0, data_dir=str(tmp_path / "tfds"),
                                skip_bad_images=True,
                                builders=types.SimpleNamespace(coco={"masks": None}))
    splits = load_splits(f"coco:{root}", cfg, instance_masks=False)
    metrics, results, _ = _evaluate((root, data, splits), tmp_path, noise=0.0)
    assert metrics["eval/skipped_images"] == 1 and metrics["eval/images"] == 3
    assert len(results) == 8  # 11 non-crowd instances, 3 of them in the skipped image
    want = _cocoeval(root / "annotations" / "instances_val.json", results, "bbox")
    assert metrics["bbox/AR100"] == want["AR100"] < 1.0  # its instances count as missed
