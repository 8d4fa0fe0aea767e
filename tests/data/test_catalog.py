"""TFDS catalogue switches without TensorFlow: the error says what is needed; VOC/COCO examples
convert TFDS's normalised ymin, xmin, ymax, xmax once; the imagenet2012 input path (decode,
random-resized crop + flip, resize + centre crop) on a tiny generated dataset of its format."""

import io
import types

import numpy as np
import pytest
from PIL import Image

from jaxvision.data import augment, catalog, load_splits, pipeline
from jaxvision.train.config import base_config


class FakeSource(list):
    """A TFDS-like data source: a list of example dicts with a `dataset_info`."""

    def __init__(self, examples, features):
        super().__init__(examples)
        self.dataset_info = types.SimpleNamespace(features=features)


def _names(*names):
    return types.SimpleNamespace(names=list(names))


@pytest.mark.parametrize("name, tfds_name", [("voc2007", "voc/2007"), ("voc2012", "voc/2012"),
                                             ("coco2017", "coco/2017"),
                                             ("imagenet2012", "imagenet2012")])
def test_catalog_without_tensorflow_says_what_it_needs(tmp_path, monkeypatch, name, tfds_name):
    monkeypatch.setattr(catalog, "_have_tensorflow", lambda: False)
    data = base_config().data
    data.data_dir = str(tmp_path)
    with pytest.raises(ValueError, match=(
            rf"dataset='{name}': expected a prepared catalog dataset; it needs `pip install -e "
            rf"'\.\[tf\]'` \(TensorFlow, to prepare it\); a prepared TFDS {tfds_name} in "
            rf"data.data_dir='{tmp_path}' \(.*tfds build {tfds_name} --data_dir")):
        load_splits(name, data)


def test_voc_and_coco_boxes_are_converted_to_absolute_xyxy():
    image = np.zeros((40, 50, 3), np.uint8)
    voc = {"image": image, "image/filename": "000005.jpg",
           "objects": {"bbox": np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]], np.float32),
                       "label": np.array([4, 11]), "is_difficult": np.array([False, True])}}
    coco = {"image": image, "image/id": 397133,
            "objects/bbox": np.array([[0.25, 0.5, 0.75, 1.0]], np.float32),
            "objects/label": np.array([0]), "objects/is_crowd": np.array([True])}
    features = {"objects": {"label": _names(*[f"c{i}" for i in range(20)])}}
    sources, names = catalog.catalog_sources(
        "voc2007", "unused", open_split=lambda n, s: FakeSource([voc, coco], features))
    assert names == tuple(f"c{i}" for i in range(20))
    out = sources["train"][0]
    # ymin, xmin, ymax, xmax = 0.1, 0.2, 0.5, 0.6 of 40 x 50 -> x1 10, y1 4, x2 30, y2 20
    np.testing.assert_allclose(out["boxes"], [[10, 4, 30, 20], [0, 0, 50, 40]], rtol=1e-6)
    np.testing.assert_array_equal(out["labels"], [4, 11])
    np.testing.assert_array_equal(out["difficult"], [False, True])
    assert not out["iscrowd"].any() and out["image_id"] == 0
    out = sources["test"][1]
    np.testing.assert_allclose(out["boxes"], [[25, 10, 50, 30]], rtol=1e-6)
    assert out["iscrowd"].tolist() == [True] and out["image_id"] == 397133
    t = pipeline.ExampleTransform(("image", "boxes"), max_boxes=3)
    assert t(sources["train"][0], 0)["difficult"].tolist() == [False, True, False]


def _imagenet_like(n=6):
    """TFDS imagenet2012-format examples: JPEG bytes of varied sizes, label, file_name."""
    rng = np.random.default_rng(4)
    out = []
    for i in range(n):
        h, w = int(rng.integers(30, 90)), int(rng.integers(30, 90))
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buffer, "JPEG")
        out.append({"image": buffer.getvalue(), "label": i % 3,
                    "file_name": f"n0144{i}_{i}.JPEG".encode()})
    return out


def test_imagenet_input_path_on_a_tiny_dataset():
    raw = _imagenet_like()
    features = {"label": _names("tench", "goldfish", "shark")}
    sources, names = catalog.catalog_sources(
        "imagenet2012", "unused", open_split=lambda n, s: FakeSource(raw, features))
    assert names == ("tench", "goldfish", "shark")
    config = base_config()
    config.data.update(dict(image_size=24, crop="random_resized", random_flip=True))
    train, evaluation = pipeline.make_transforms(config, ("image", "label"))
    assert evaluation.crop == "center" and not evaluation.random_flip
    for index in range(len(raw)):
        decoded = np.asarray(Image.open(io.BytesIO(raw[index]["image"])).convert("RGB"))
        ex = sources["train"][index]
        np.testing.assert_array_equal(ex["image"], decoded)
        out = train(ex, index)
        assert out["image"].shape == (24, 24, 3) and out["label"] == index % 3
        crop = augment.imagenet_train_crop(decoded, 24, np.random.default_rng([0, index, 5]))
        if np.random.default_rng([0, index]).random() < 0.5:
            crop = crop[:, ::-1]
        np.testing.assert_allclose(out["image"], augment.transforms.normalise(crop))
        e = evaluation(ex, index)
        np.testing.assert_allclose(
            e["image"], augment.transforms.normalise(augment.imagenet_eval_crop(decoded, 24)))


def test_a_corrupt_catalog_image_names_its_file():
    raw = _imagenet_like(1)
    raw[0]["image"] = b"\xff\xd8 broken"
    sources, _ = catalog.catalog_sources(
        "imagenet2012", "unused",
        open_split=lambda n, s: FakeSource(raw, {"label": _names("a")}))
    with pytest.raises(ValueError, match=r"image n01440_0.JPEG: expected a readable image file"):
        sources["train"][0]
