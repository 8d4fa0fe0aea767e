"""Segmentation metrics at each image's original resolution: a `folder:` dataset of real
photographs of different sizes with hand-made masks, the evaluator fed with predictions made at
the model's input size, against a float64 numpy mIoU / boundary F written from the definitions
on the mask files themselves (predictions upsampled with torch's nearest interpolation)."""

import os

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from jaxvision.data import eval_batches, load_splits, make_transforms
from jaxvision.tasks import get_task
from jaxvision.train.config import base_config
from tests.data.photos import CLASS_NAMES, IGNORE, TEST, write_segmentation_folder


def _nearest(x, size):
    """torch `interpolate(mode='nearest')` of an int map [h, w] to size (H, W)."""
    t = torch.from_numpy(np.asarray(x, np.float64))[None, None]
    return torch.nn.functional.interpolate(t, size=tuple(size), mode="nearest")[0, 0].numpy()


def _edges(m):
    """Pixels with a 4-neighbour of another label."""
    out = np.zeros(m.shape, bool)
    for axis in (0, 1):
        d = np.diff(m, axis=axis) != 0
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        out[tuple(lo)] |= d
        out[tuple(hi)] |= d
    return out


def _reference(pairs, k, tolerance):
    """float64 from the definitions over (truth [H, W], prediction [H, W]) pairs: IoU_c =
    TP / (TP + FP + FN) over non-void pixels, mIoU over classes present in either; boundary F
    from summed (matched predicted, predicted, matched true, true) boundary pixel counts, matched
    = a Chebyshev distance <= tolerance to the other map's boundary."""
    tp, fp, fn = (np.zeros(k, np.float64) for _ in range(3))
    counts = np.zeros(4, np.float64)
    for truth, pred in pairs:
        valid = truth != IGNORE
        for c in range(k):
            tp[c] += np.sum(valid & (truth == c) & (pred == c))
            fp[c] += np.sum(valid & (truth != c) & (pred == c))
            fn[c] += np.sum(valid & (truth == c) & (pred != c))
        tb, pb = _edges(truth), _edges(pred)
        near_t = ndimage.distance_transform_cdt(~tb, metric="chessboard") <= tolerance
        near_p = ndimage.distance_transform_cdt(~pb, metric="chessboard") <= tolerance
        counts += [np.sum(pb & near_t), pb.sum(), np.sum(tb & near_p), tb.sum()]
    union = tp + fp + fn
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    precision, recall = counts[0] / counts[1], counts[2] / counts[3]
    return {"miou": np.nanmean(iou), "pixel_accuracy": tp.sum() / (tp + fn).sum(),
            **{f"iou/{n}": v for n, v in zip(("background", *CLASS_NAMES), iou, strict=True)},
            "boundary_f": 2 * precision * recall / (precision + recall)}


def _predict(batch, rng, shrink):
    """A plausible class map at the input size: the transformed labels (void as background)
    shifted by a pixel, with 10% noise; `shrink` > 0 crops that many pixels off every side (a
    valid-padding network's output)."""
    labels = np.where(batch["segmentation"] == IGNORE, 0, batch["segmentation"])
    pred = np.roll(labels, 1, axis=2)
    noise = rng.random(pred.shape) < 0.1
    pred[noise] = rng.integers(0, 3, noise.sum())
    h, w = pred.shape[1:]
    return pred[:, shrink:h - shrink, shrink:w - shrink].astype(np.int32)


@pytest.mark.parametrize("data, shrink", [
    (dict(), 0),  # resize 'none' on images of varying size: the transform resizes to 24 x 24
    (dict(resize="fixed", fixed_size=20, pad_size=24), 0),  # content 20 x 20 inside padding
    (dict(), 4),  # a valid-padding model: 16 x 16 predictions centred on the 24 x 24 input
])
def test_metrics_at_the_original_resolution_match_the_definition(tmp_path, data, shrink):
    root = str(tmp_path / "photos")
    write_segmentation_folder(root)
    config = base_config()
    config.data.update(dict(data_dir=str(tmp_path / "tfds"), image_size=24, **data))
    task = get_task("segmentation", CLASS_NAMES)
    splits = load_splits(f"folder:{root}", config.data)
    _, transform = make_transforms(config, task.fields)
    evaluator = task.evaluator(None, splits)
    unit = task.evaluator()  # no splits: the input frame, as before
    rng = np.random.default_rng(0)
    pairs, seen = [], 0
    for batch in eval_batches(splits.test, transform, global_batch=3):  # 4 images, 2 padding
        keep = batch.pop("example_valid")
        batch = {k: v[keep] for k, v in batch.items()}
        classes = _predict(batch, rng, shrink)
        evaluator.update({"classes": classes}, batch)
        unit.update({"classes": classes}, batch)
        for i, index in enumerate(batch["example_index"]):
            name, (h, w), _ = TEST[index]  # the source keeps file order
            assert splits.test[index]["file_name"].decode().startswith(f"test/images/{name}.")
            truth = np.asarray(Image.open(os.path.join(root, "test", "masks", f"{name}.png")))
            content = (20, 20) if data else (24, 24)
            frame = np.full((24, 24), -1)  # the prediction in the input frame; -1: none
            frame[shrink:24 - shrink, shrink:24 - shrink] = classes[i]
            pred = _nearest(frame[:content[0], :content[1]], (h, w))
            rows, cols = (pred >= 0).any(1), (pred >= 0).any(0)
            assert rows.all() == cols.all() == (shrink == 0)
            pairs.append((truth[rows][:, cols], pred[rows][:, cols].astype(np.int64)))
            seen += 1
    assert seen == len(TEST)
    want = _reference(pairs, 3, task.boundary_tolerance)
    got = evaluator.result()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert 0.3 < want["miou"] < 0.95 and 0.2 < want["boundary_f"] < 0.95
    # the number of scored pixels is the original images' (or windows') non-void pixels
    assert evaluator.confusion.sum() == sum(int((t != IGNORE).sum()) for t, _ in pairs)
    # scoring in the input frame gives other numbers: the test can tell the two apart
    assert abs(unit.result()["miou"] - want["miou"]) > 1e-3


def test_missing_fields_are_named(tmp_path):
    root = str(tmp_path / "photos")
    write_segmentation_folder(root)
    config = base_config()
    config.data.update(dict(data_dir=str(tmp_path / "tfds"), image_size=24))
    splits = load_splits(f"folder:{root}", config.data)
    evaluator = get_task("segmentation", CLASS_NAMES).evaluator(None, splits)
    batch = {"segmentation": np.zeros((1, 24, 24), np.int32), "example_index": np.zeros(1)}
    with pytest.raises(ValueError, match=r"expected fields \['image_size'\]"):
        evaluator.update({"classes": np.zeros((1, 24, 24), np.int32)}, batch)
