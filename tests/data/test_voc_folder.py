"""`voc:<root>`: a generated VOCdevkit folder of scikit-image photographs (RGB, grey and CMYK
JPEGs, palette and RGBA PNGs named .jpg), annotations written as the devkit writes them (a
person with <part>s, difficult objects, an object without <difficult>, boxes at the one-pixel
slack), palette masks with 255 borders; prepared without TensorFlow and every field checked
against torchvision's own VOCDetection / VOCSegmentation readers and PIL; bad input gives
errors naming the file and leaves no dataset behind."""

import copy
import os
import types

import numpy as np
import pytest
from PIL import Image
from skimage import data as photos
from torchvision.datasets import VOCDetection, VOCSegmentation

from jaxvision.data import ExampleTransform, eval_batches, load_splits
from jaxvision.data.voc import image_ids

# VOC's 20 classes in the devkit's order (VOCcode/VOCinit.m)
VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]
# stem -> (photograph, (height, width), PIL mode, file format)
PHOTOS = {"000005": (photos.astronaut, (40, 48), "RGB", "JPEG"),
          "000007": (photos.coins, (36, 44), "L", "JPEG"),
          "000009": (photos.coffee, (30, 45), "CMYK", "JPEG"),
          "000012": (photos.chelsea, (33, 50), "P", "PNG"),
          "000016": (photos.rocket, (42, 28), "RGBA", "PNG")}
# stem -> objects (name, difficult: 0 / 1 / None for no tag, 1-based inclusive box, parts)
OBJECTS = {
    "000005": [dict(name="person", difficult=0, box=(5, 3, 30, 40),
                    parts=[("head", (10, 3, 20, 12)), ("hand", (5, 20, 9, 26))]),
               dict(name="chair", difficult=1, box=(30, 20, 48, 40))],
    "000007": [dict(name="dog", difficult=None, box=(2, 4, 2, 4))],  # one pixel, no <difficult>
    "000009": [dict(name="tvmonitor", difficult=0, box=(10, 5, 44, 30)),
               dict(name="aeroplane", difficult=0, box=(0, 20, 12, 31))],  # one pixel of slack
    "000012": [dict(name="cat", difficult=0, box=(1, 1, 50, 33))],  # the whole image
    "000016": [dict(name="bottle", difficult=1, box=(4, 6, 20, 40)),
               dict(name="bird", difficult=0, box=(1, 0, 29, 5))]}  # ymin, xmax: slack
LISTS = {"Main": {"train": ["000005", "000007"], "val": ["000009"],
                  "trainval": ["000005", "000007", "000009"], "test": ["000012", "000016"]},
         "Segmentation": {"train": ["000005"], "val": ["000009"],
                          "trainval": ["000005", "000009"]}}


def _voc_palette() -> list[int]:
    """The devkit's colour map (VOCcode/VOClabelcolormap.m)."""
    out = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= (c & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out += [r, g, b]
    return out


def _bndbox(box, indent):
    tabs = "\t" * indent
    return [f"{tabs}<bndbox>", *(f"{tabs}\t<{t}>{v}</{t}>" for t, v in
                                 zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True)),
            f"{tabs}</bndbox>"]


def _xml(stem, height, width, objects):
    """An annotation as the VOC devkit writes it."""
    lines = ["<annotation>", "\t<folder>VOC2007</folder>", f"\t<filename>{stem}.jpg</filename>",
             "\t<source>", "\t\t<database>The VOC2007 Database</database>",
             "\t\t<annotation>PASCAL VOC2007</annotation>", "\t\t<image>flickr</image>",
             "\t</source>", "\t<size>", f"\t\t<width>{width}</width>",
             f"\t\t<height>{height}</height>", "\t\t<depth>3</depth>", "\t</size>",
             "\t<segmented>0</segmented>"]
    for obj in objects:
        lines += ["\t<object>", f"\t\t<name>{obj['name']}</name>", "\t\t<pose>Left</pose>",
                  "\t\t<truncated>0</truncated>"]
        if obj["difficult"] is not None:
            lines.append(f"\t\t<difficult>{obj['difficult']}</difficult>")
        lines += _bndbox(obj["box"], 2)
        for name, box in obj.get("parts", ()):
            lines += ["\t\t<part>", f"\t\t\t<name>{name}</name>", *_bndbox(box, 3), "\t\t</part>"]
        lines.append("\t</object>")
    return "\n".join([*lines, "</annotation>", ""])


def _mask(height, width, objects):
    """Class k + 1 inside each object's pixels, a 255 border one pixel wide around them."""
    mask = np.zeros((height, width), np.uint8)
    for obj in objects:
        x0, y0, x1, y1 = max(obj["box"][0], 1) - 1, max(obj["box"][1], 1) - 1, *obj["box"][2:]
        mask[max(y0 - 1, 0):y1 + 1, max(x0 - 1, 0):x1 + 1] = 255
    for obj in objects:
        x0, y0, x1, y1 = max(obj["box"][0], 1) - 1, max(obj["box"][1], 1) - 1, *obj["box"][2:]
        mask[y0:y1, x0:x1] = VOC_CLASSES.index(obj["name"]) + 1
    return mask


def _write(tmp_path, objects=None, sizes=None):
    """tmp_path/VOCdevkit/VOC2007 from PHOTOS, `objects` (default OBJECTS) and the listed
    `sizes` {stem: (h, w)} (default the files' own); returns the year folder."""
    objects = objects or OBJECTS
    root = tmp_path / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "SegmentationClass", "ImageSets/Main",
                "ImageSets/Segmentation"):
        os.makedirs(root / sub, exist_ok=True)
    for stem, (photo, (h, w), mode, fmt) in PHOTOS.items():
        image = Image.fromarray(photo()).resize((w, h), Image.BILINEAR)
        image = image.convert(mode) if mode != "P" else image.convert("P", palette=Image.ADAPTIVE)
        image.save(root / "JPEGImages" / f"{stem}.jpg", fmt)
        listed = (sizes or {}).get(stem, (h, w))
        (root / "Annotations" / f"{stem}.xml").write_text(_xml(stem, *listed, objects[stem]))
    for kind, lists in LISTS.items():
        for split, stems in lists.items():
            (root / "ImageSets" / kind / f"{split}.txt").write_text("\n".join(stems) + "\n")
    for stem in LISTS["Segmentation"]["trainval"]:
        mask = Image.fromarray(_mask(*PHOTOS[stem][1], OBJECTS[stem]), "P")
        mask.putpalette(_voc_palette())
        mask.save(root / "SegmentationClass" / f"{stem}.png")
    return root


def _cfg(tmp_path, skip=False, **voc):
    return types.SimpleNamespace(image_size=0, data_dir=str(tmp_path / "tfds"),
                                 skip_bad_images=skip, builders=types.SimpleNamespace(voc=voc))


def _no_prepared_dataset(tmp_path):
    """A failed preparation leaves no file and no folder in the data_dir."""
    left = [os.path.join(d, n) for d, dirs, files in os.walk(tmp_path / "tfds")
            for n in dirs + files]
    assert not left, left


def _check_detection(source, reference):
    """Every example against torchvision's VOCDetection (PIL pixels, its own XML parse)."""
    assert len(source) == len(reference)
    for i in range(len(reference)):
        image, target = reference[i]
        ann, ex = target["annotation"], source[i]
        stem = os.path.splitext(ann["filename"])[0]
        assert ex["file_name"] == stem and int(ex["image_id"]) == int(stem)
        np.testing.assert_array_equal(ex["image"], np.asarray(image))
        h, w = int(ann["size"]["height"]), int(ann["size"]["width"])
        np.testing.assert_array_equal(ex["orig_size"], [h, w])
        assert ex["image"].shape == (h, w, 3)
        objects = ann["object"]
        assert ex["boxes"].shape == (len(objects), 4) and ex["boxes"].dtype == np.float32
        for k, obj in enumerate(objects):
            b = {t: float(v) for t, v in obj["bndbox"].items()}
            want = np.clip([b["xmin"] - 1, b["ymin"] - 1, b["xmax"], b["ymax"]], 0, [w, h] * 2)
            np.testing.assert_array_equal(ex["boxes"][k], want)
            assert ex["labels"][k] == VOC_CLASSES.index(obj["name"])
            assert bool(ex["difficult"][k]) == bool(int(obj.get("difficult", 0)))
        assert ex["labels"].dtype == np.int64 and not ex["iscrowd"].any()
        assert ex["iscrowd"].shape == ex["difficult"].shape == (len(objects),)


def test_detection_fields_against_torchvision_and_pipeline(tmp_path):
    root = _write(tmp_path)
    splits = load_splits(f"voc:{root}", _cfg(tmp_path))
    assert splits.class_names == tuple(VOC_CLASSES) and splits.image_size == 0
    for split, listed in (("train", "trainval"), ("test", "test")):
        _check_detection(getattr(splits, split),
                         VOCDetection(str(tmp_path), year="2007", image_set=listed))
    ex = splits.train[0]  # the person's <part>s are not objects
    np.testing.assert_array_equal(ex["boxes"], [[4, 2, 30, 40], [29, 19, 48, 40]])
    np.testing.assert_array_equal(ex["difficult"], [False, True])
    np.testing.assert_array_equal(splits.train[1]["boxes"], [[1, 3, 2, 4]])  # one pixel wide
    # xmin 0 and ymax = height + 1 are at the slack: clipped to the 45x30 image
    np.testing.assert_array_equal(splits.train[2]["boxes"][1], [0, 19, 12, 30])
    np.testing.assert_array_equal(splits.test[0]["boxes"], [[0, 0, 50, 33]])  # the whole image
    np.testing.assert_array_equal(splits.test[1]["boxes"][1], [0, 0, 28, 5])
    t = ExampleTransform(("image", "boxes"), max_boxes=3, resize="min_max", min_size=24,
                         max_size=40, size_divisible=8)
    batch = next(iter(eval_batches(splits.test, t, global_batch=2)))
    assert batch["image"].shape == (2, 40, 40, 3)
    np.testing.assert_array_equal(batch["image_id"], [12, 16])
    np.testing.assert_array_equal(batch["labels"], [[8, 0, 0], [5, 3, 0]])  # cat; bottle, bird
    np.testing.assert_array_equal(batch["difficult"], [[0, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(batch["orig_size"], [[33, 50], [42, 28]])


def test_other_lists_and_a_vocdevkit_root(tmp_path):
    _write(tmp_path)
    splits = load_splits(f"voc:{tmp_path / 'VOCdevkit'}",
                         _cfg(tmp_path, train_split="train", test_split="val"))
    _check_detection(splits.train, VOCDetection(str(tmp_path), year="2007", image_set="train"))
    _check_detection(splits.test, VOCDetection(str(tmp_path), year="2007", image_set="val"))
    assert splits.info["root"] == str(tmp_path / "VOCdevkit" / "VOC2007")


def test_segmentation_masks_against_torchvision(tmp_path):
    root = _write(tmp_path)
    splits = load_splits(f"voc:{root}", _cfg(tmp_path, segmentation=True, test_split="val"))
    assert splits.class_names == tuple(VOC_CLASSES)
    for split, listed in (("train", "trainval"), ("test", "val")):
        source = getattr(splits, split)
        reference = VOCSegmentation(str(tmp_path), year="2007", image_set=listed)
        assert len(source) == len(reference) == len(LISTS["Segmentation"][listed])
        for i, stem in enumerate(LISTS["Segmentation"][listed]):
            image, target = reference[i]
            ex = source[i]
            assert ex["file_name"] == stem and int(ex["image_id"]) == int(stem)
            assert "boxes" not in ex
            np.testing.assert_array_equal(ex["image"], np.asarray(image))
            np.testing.assert_array_equal(ex["segmentation"], np.asarray(target))
            assert ex["segmentation"].dtype == np.uint8
            assert {0, 255} < set(np.unique(ex["segmentation"]).tolist())
            np.testing.assert_array_equal(ex["orig_size"], PHOTOS[stem][1])
    t = ExampleTransform(("image", "segmentation"), resize="fixed", fixed_size=32)
    batch = next(iter(eval_batches(splits.test, t, global_batch=1)))
    assert batch["segmentation"].shape == (1, 32, 32)
    assert set(np.unique(batch["segmentation"]).tolist()) == {0, 1, 20, 255}


def test_image_ids_from_stems(tmp_path):
    def ids(*names):
        folder = tmp_path / names[0] / "JPEGImages"
        os.makedirs(folder)
        for name in names:
            (folder / f"{name}.jpg").write_bytes(b"")
        return image_ids(str(folder.parent))

    assert ids("000009", "000005") == {"000005": 5, "000009": 9}
    assert ids("2008_000010", "2007_000005") == {"2007_000005": 2007000005,
                                                 "2008_000010": 2008000010}
    assert ids("2147483647", "1") == {"1": 1, "2147483647": 2147483647}  # the largest int32
    assert ids("2147483648", "1") == {"1": 0, "2147483648": 1}  # not an int32: positions
    assert ids("dog", "000003", "cat") == {"000003": 0, "cat": 1, "dog": 2}
    assert ids("05", "5") == {"05": 0, "5": 1}  # the same integer twice


def test_unreadable_image_names_the_file_or_is_skipped(tmp_path):
    root = _write(tmp_path)
    (root / "JPEGImages" / "000007.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(ValueError, match=r"image file .*JPEGImages/000007.jpg: expected a "
                                         r"readable image"):
        load_splits(f"voc:{root}", _cfg(tmp_path))
    _no_prepared_dataset(tmp_path)
    splits = load_splits(f"voc:{root}", _cfg(tmp_path, skip=True))
    assert [splits.train[i]["file_name"] for i in range(len(splits.train))] == ["000005",
                                                                                "000009"]
    assert [os.path.basename(p) for p in splits.skipped_images["train"]] == ["000007.jpg"]
    assert splits.skipped_images["test"] == []


def _objects(stem, k, **change):
    objects = copy.deepcopy(OBJECTS)
    objects[stem][k].update(change)
    return objects


@pytest.mark.parametrize("objects, match", [
    (_objects("000005", 1, name="persn"),
     r"000005.xml object 1: expected a <name> among \['aeroplane', .*'tvmonitor'\], got 'persn'"),
    (_objects("000009", 1, box=(0, 20, 12, 32)),
     r"000009.xml object 1 \(aeroplane\): expected a box inside the 45x30 image .*got \(xmin, "
     r"ymin, xmax, ymax\) = \(0.0, 20.0, 12.0, 32.0\)"),
    (_objects("000009", 1, box=(-1, 20, 12, 31)), r"000009.xml object 1 .*inside the 45x30"),
    (_objects("000016", 1, box=(1, 0, 29.25, 5)), r"000016.xml object 1 .*inside the 28x42"),
    (_objects("000016", 1, box=(1, -0.25, 29, 5)), r"000016.xml object 1 .*inside the 28x42"),
    (_objects("000005", 0, box=(5, 3, 4, 40)),
     r"000005.xml object 0 \(person\): expected xmin <= xmax and ymin <= ymax, got an inverted "
     r"box \(xmin, ymin, xmax, ymax\) = \(5.0, 3.0, 4.0, 40.0\)"),
    (_objects("000007", 0, difficult="yes"),
     r"000007.xml object 0 \(dog\): expected a number in <difficult>, got 'yes'"),
])
def test_bad_annotations_are_named_and_leave_nothing(tmp_path, objects, match):
    root = _write(tmp_path, objects)
    with pytest.raises(ValueError, match=match):
        load_splits(f"voc:{root}", _cfg(tmp_path))
    _no_prepared_dataset(tmp_path)


def _remove(path):
    return lambda root: os.remove(root / path)


def _replace(path, old, new):
    def change(root):
        text = (root / path).read_text()
        assert old in text
        (root / path).write_text(text.replace(old, new))
    return change


@pytest.mark.parametrize("change, settings, match", [
    (_remove("JPEGImages/000007.jpg"), {},
     r"expected .*JPEGImages/000007.jpg \(image '000007' listed in .*ImageSets/Main/"
     r"trainval.txt\), not found"),
    (_remove("Annotations/000016.xml"), {},
     r"expected .*Annotations/000016.xml \(image '000016' listed in .*ImageSets/Main/"
     r"test.txt\), not found"),
    (_remove("SegmentationClass/000009.png"), {"segmentation": True, "test_split": "val"},
     r"expected .*SegmentationClass/000009.png \(image '000009' listed in .*ImageSets/"
     r"Segmentation/trainval.txt\), not found"),
    (lambda root: None, {"test_split": "tests"},
     r"expected the list .*ImageSets/Main/tests.txt \(split 'tests'\), not found; lists in "
     r".*ImageSets/Main: \['test', 'train', 'trainval', 'val'\]"),
    (lambda root: None, {"segmentation": True},  # VOC has no segmentation test list here
     r"expected the list .*ImageSets/Segmentation/test.txt \(split 'test'\), not found; "
     r"lists in .*: \['train', 'trainval', 'val'\]"),
    (_replace("ImageSets/Main/test.txt", "000012\n", "000012 -1\n"), {},
     r"test.txt line 1: expected one image name, got '000012 -1'"),
    (_replace("ImageSets/Main/val.txt", "000009\n", "000009\n000009\n"), {"test_split": "val"},
     r"val.txt: expected each image once, got \['000009'\] twice"),
    (_replace("Annotations/000012.xml", "</annotation>\n", ""), {},
     r"000012.xml: expected VOC annotation XML, got"),
    (_replace("Annotations/000007.xml", "<height>36</height>", "<height>37</height>"), {},
     r"voc dataset .*000007.xml <size>: expected the listed size 37x44 \(height x width\), got "
     r"36x44 in .*JPEGImages/000007.jpg$"),
])
def test_bad_folders_are_named_and_leave_nothing(tmp_path, change, settings, match):
    root = _write(tmp_path)
    change(root)
    with pytest.raises(ValueError, match=match):
        load_splits(f"voc:{root}", _cfg(tmp_path, **settings))
    _no_prepared_dataset(tmp_path)


def _mask_values(root, stem, values):
    mask = np.asarray(Image.open(root / "SegmentationClass" / f"{stem}.png")).copy()
    mask[:values.shape[0], :values.shape[1]] = values
    image = Image.fromarray(mask, "P")
    image.putpalette(_voc_palette())
    image.save(root / "SegmentationClass" / f"{stem}.png")


def test_bad_masks_are_named_and_leave_nothing(tmp_path):
    root = _write(tmp_path)
    cfg = _cfg(tmp_path, segmentation=True, test_split="val")
    _mask_values(root, "000009", np.array([[20, 21, 254]], np.uint8))  # 20 is the last class
    with pytest.raises(ValueError, match=r"mask .*000009.png: expected values 0..20 or 255, got "
                                         r"\[21, 254\]"):
        load_splits(f"voc:{root}", cfg)
    Image.fromarray(np.zeros((30, 44), np.uint8)).save(root / "SegmentationClass" / "000009.png")
    with pytest.raises(ValueError, match=r"voc dataset: expected the size of its mask .*000009"
                                         r".png 30x44 \(height x width\), got 30x45 in .*000009"
                                         r".jpg$"):
        load_splits(f"voc:{root}", cfg)
    Image.new("RGB", (45, 30)).save(root / "SegmentationClass" / "000009.png")
    with pytest.raises(ValueError, match=r"mask .*000009.png: expected a palette \(P\) or grey "
                                         r"\(L\) PNG of class indices, got mode RGB"):
        load_splits(f"voc:{root}", cfg)
    _no_prepared_dataset(tmp_path)


def _exif_rotated(path, orientation):
    """Rewrites `path` as a JPEG carrying the EXIF `orientation` tag, pixels unchanged."""
    image = Image.open(path).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, "JPEG", exif=exif)


@pytest.mark.parametrize("orientation, named", [(6, True), (8, True), (3, False), (None, False)])
def test_exif_orientation_that_swaps_the_sides_is_named(tmp_path, orientation, named):
    root = _write(tmp_path, sizes={"000005": (48, 40)})  # listed as a viewer shows it turned
    if orientation is not None:
        _exif_rotated(root / "JPEGImages" / "000005.jpg", orientation)
    exif = (f"; the file's EXIF orientation {orientation} swaps its sides: save the pixels "
            r"rotated \(PIL ImageOps.exif_transpose\) or fix the listed size$")
    with pytest.raises(ValueError, match=r"000005.xml <size>: expected the listed size 48x40 "
                                         r"\(height x width\), got 40x48 in .*000005.jpg"
                                         + (exif if named else "$")):
        load_splits(f"voc:{root}", _cfg(tmp_path))
    _no_prepared_dataset(tmp_path)


def test_a_vocdevkit_with_two_years_asks_for_one(tmp_path):
    _write(tmp_path)
    os.makedirs(tmp_path / "VOCdevkit" / "VOC2012" / "ImageSets")
    with pytest.raises(ValueError, match=r"VOCdevkit: expected a VOCdevkit folder holding one "
                                         r"year folder, got \['VOC2007', 'VOC2012'\]; name one, "
                                         r"e.g. voc:.*VOCdevkit/VOC2007"):
        load_splits(f"voc:{tmp_path / 'VOCdevkit'}", _cfg(tmp_path))
    with pytest.raises(ValueError, match=r"root .*: expected a VOC year folder"):
        load_splits(f"voc:{tmp_path}", _cfg(tmp_path))
    with pytest.raises(ValueError, match=r"data.builders.voc: expected keys among "
                                         r"\['segmentation', 'test_split', 'train_split'\], got "
                                         r"\['masks'\]"):
        load_splits(f"voc:{tmp_path / 'VOCdevkit' / 'VOC2007'}", _cfg(tmp_path, masks=True))
    _no_prepared_dataset(tmp_path)
