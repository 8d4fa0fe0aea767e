"""Serving export: the artifact of a tiny run gives the in-process predict's outputs on real
photographs (batch 1 and 3 through one symbolic-batch artifact), carries cuda and tpu programs
lowered on the CPU, runs where jaxvision cannot be imported, and describes itself in
signature.json; bad arguments are named."""

import importlib
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import skimage.data
from PIL import Image

from jaxvision import export
from jaxvision.export import __main__ as export_cli
from jaxvision.predict import load_run, predict_image
from jaxvision.train.loop import Trainer
from jaxvision.train.run_config import save_run

PHOTOS = (("astronaut", "jpg"), ("coffee", "png"), ("chelsea", "jpg"))
# config -> model_kwargs that shrink it (as tests/train/test_detector_configs.py)
RUNS = {
    "resnet18": dict(),
    "unet": dict(depth=2, base_width=4),
    "mask_rcnn": dict(backbone_kwargs=dict(widths=(8, 8, 16, 16, 32)), mask_layers=(8,) * 4,
                      mask_dim_reduced=8, box_detections_per_img=6),
}
DETECTION_SIZE = 64
LABEL_MAP = [3, 7, 11]  # COCO-like dataset ids of the three shapes (the mask_rcnn run's)
_MADE = {}


def make_run(name, workdir, data_dir):
    """A run of configs/<name>.py, narrowed, on tiny shapes data, as train.py leaves it
    (config.json, dataset.json, a checkpoint) with its initial state saved at step 0: compiling
    a train step would cost most of this file's time budget, and parity needs no training.
    Made once per module."""
    if name in _MADE:
        return _MADE[name]
    config = importlib.import_module(f"configs.{name}").get_config()
    config.unlock()
    config.model_kwargs.update(RUNS[name])
    config.data.data_dir = data_dir
    config.data.builders.shapes.update(dict(num_train=8, num_test=8))
    if config.task == "detection":
        config.data.update(dict(image_size=DETECTION_SIZE, min_size=DETECTION_SIZE,
                                max_size=DETECTION_SIZE))
    config.lock()
    trainer = Trainer(config, workdir)
    save_run(workdir, config, trainer.splits)
    trainer.save(0, trainer.initial_state(), force=True)
    trainer.checkpoints.manager.wait_until_finished()
    _MADE[name] = workdir
    return workdir


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module", params=sorted(RUNS))
def exported(request, tmp_path_factory, data_dir):
    """(config name, workdir, export folder) of each task's run: Mask R-CNN exported for cpu,
    cuda and tpu, the others for the CPU (the classification run through the command line).
    Faster R-CNN's outputs are Mask R-CNN's without the masks (one code path)."""
    name = request.param
    workdir = make_run(name, str(tmp_path_factory.mktemp(name)), data_dir)
    if name == "mask_rcnn":  # dataset ids that are not the class indices
        path = os.path.join(workdir, "dataset.json")
        with open(path) as f:
            info = json.load(f)
        with open(path, "w") as f:
            json.dump(dict(info, label_map=LABEL_MAP), f)
    out = str(tmp_path_factory.mktemp(f"{name}-export"))
    if name == "resnet18":
        export_cli.main(["--workdir", workdir, "--out", out, "--platforms", "cpu"])
    else:
        platforms = export.PLATFORMS if name == "mask_rcnn" else ("cpu",)
        assert export.export_run(workdir, out, platforms=platforms) == out
    return name, workdir, out


def photos(folder, size):
    """uint8 [3, H, W, 3]: skimage photographs resized to (H, W) with PIL, saved as JPEG/PNG
    and read back (what a server receives)."""
    out = []
    for name, ext in PHOTOS:
        path = os.path.join(folder, f"{name}.{ext}")
        Image.fromarray(getattr(skimage.data, name)()).resize(size[::-1]).save(path)
        out.append(np.asarray(Image.open(path).convert("RGB")))
    return np.stack(out)


def load(out):
    with open(os.path.join(out, "model.jax_exported"), "rb") as f:
        artifact = jax.export.deserialize(f.read())
    with open(os.path.join(out, "signature.json")) as f:
        return artifact, json.load(f)


def expected(workdir, images):
    """The in-process predict (jaxvision.predict.predict_image) of each image, in the export's
    output names, labels as dataset ids (the predict CLI's mapping)."""
    trainer, state = load_run(workdir)
    with open(os.path.join(workdir, "dataset.json")) as f:
        label_map = json.load(f)["label_map"]
    ids = np.array([0, *label_map] if label_map else range(len(trainer.task.class_names)),
                   np.int32)
    rows = []
    for image in images:
        out = predict_image(trainer, state, image)
        if "logits" in out:
            rows.append({"probabilities": np.asarray(jax.nn.softmax(out["logits"]))})
        elif "classes" in out:
            rows.append({"labels": out["classes"]})
        else:
            rows.append(dict(out, labels=ids[out["labels"]]))
            if "masks" in out:
                rows[-1]["masks"] = out["masks"].astype(np.uint8)
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def assert_same(got, want):
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        got_value = np.asarray(got[key])
        assert got_value.shape == value.shape and got_value.dtype == value.dtype, key
        if key in ("boxes", "scores", "probabilities"):
            np.testing.assert_allclose(got_value, value, atol=1e-5, rtol=0, err_msg=key)
        else:
            np.testing.assert_array_equal(got_value, value, err_msg=key)


@pytest.mark.slow
def test_artifact_matches_predict_on_photographs(exported, tmp_path):
    name, workdir, out = exported
    artifact, signature = load(out)
    assert artifact.platforms == (("cpu", "cuda", "tpu") if name == "mask_rcnn" else ("cpu",))
    batch, height, width, _ = signature["input_shape"]
    assert batch is None
    images = photos(tmp_path, (height, width))
    want = expected(workdir, images)
    if "valid" in want:  # detections to compare (an untrained head still scores some)
        assert want["valid"].any()
    if name == "unet":  # a class map that is not one class (it changes with the input)
        assert len(np.unique(want["labels"])) > 1
    for batch in (1, 3):
        assert_same(artifact.call(images[:batch]), {k: v[:batch] for k, v in want.items()})
    if name == "mask_rcnn":
        _runs_without_jaxvision(out, tmp_path, want)


BLOCKER = """
import importlib.abc, sys
class NoJaxvision(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'jaxvision':
            raise ImportError('jaxvision is not installed here')
        return None
sys.meta_path.insert(0, NoJaxvision())
"""
NO_JAXVISION = """
try:
    import jaxvision
except ImportError:
    pass
else:
    raise SystemExit('jaxvision importable')
"""
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                    "export.md")


def docs_example() -> str:
    """docs/export.md's example serving an exported Mask R-CNN with only jax."""
    with open(DOCS) as f:
        text = f.read()
    start = text.index("```python\n") + 10
    return text[start:text.index("```\n", start)]


def _runs_without_jaxvision(out, folder, want):
    """docs/export.md's example, run where importing jaxvision raises, on the first photograph."""
    code = docs_example().replace("DIR", out).replace("photo.jpg", PHOTOS[0][0] + ".jpg")
    code += "np.savez('out.npz', **{k: np.asarray(v) for k, v in out.items()})\n"
    code += NO_JAXVISION
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True,
                          text=True, cwd=folder, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("mask pixels") == int(
        (want["valid"][0] & (want["scores"][0] >= 0.5)).sum())
    with np.load(folder / "out.npz") as got:
        assert_same(dict(got), {k: v[:1] for k, v in want.items()})


@pytest.mark.slow
@pytest.mark.parametrize("exported", ["mask_rcnn"], indirect=True)  # its label_map
def test_signature_describes_the_instance_segmenter(exported):
    name, workdir, out = exported
    _, signature = load(out)
    d, size = RUNS["mask_rcnn"]["box_detections_per_img"], DETECTION_SIZE
    assert signature == {
        "input_shape": [None, size, size, 3], "input_dtype": "uint8",
        "classes": [{"id": 3, "name": "circle"}, {"id": 7, "name": "square"},
                    {"id": 11, "name": "triangle"}],
        "outputs": {"boxes": [[None, d, 4], "float32"], "labels": [[None, d], "int32"],
                    "masks": [[None, d, size, size], "uint8"],
                    "scores": [[None, d], "float32"], "valid": [[None, d], "bool"]},
        "platforms": ["cpu", "cuda", "tpu"], "workdir": workdir, "step": 0}


@pytest.mark.slow
def test_fixed_batch_and_cpu_only(tmp_path_factory, data_dir, tmp_path):
    run = make_run("unet", str(tmp_path_factory.mktemp("unet")), data_dir)
    out = export.export_run(run, str(tmp_path), batch=2, platforms=("cpu",))
    artifact, signature = load(out)
    assert signature["input_shape"] == [2, 64, 64, 3] and artifact.platforms == ("cpu",)
    assert signature["outputs"] == {"labels": [[2, 64, 64], "int32"]}
    assert signature["classes"][0] == {"id": 0, "name": "background"}
    with pytest.raises(ValueError, match="shape"):
        artifact.call(np.zeros((3, 64, 64, 3), np.uint8))


@pytest.mark.parametrize("kwargs, message", [
    (dict(format="onnx"), r"format: expected one of \('stablehlo', 'savedmodel'\), got 'onnx'"),
    (dict(batch=0), "batch: expected a positive integer .*, got 0"),
    (dict(format="savedmodel"), "batch: expected a fixed batch size with format 'savedmodel'"),
    (dict(platforms=("cpu", "rocm")), r"platforms: expected distinct names among .*'rocm'"),
])
def test_bad_arguments_are_named(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        export.export_run(str(tmp_path), str(tmp_path / "out"), **kwargs)
    assert not (tmp_path / "out").exists()


def test_missing_config_and_flags_are_named(tmp_path):
    with pytest.raises(ValueError, match="workdir: expected a training run with config.json"):
        export.export_run(str(tmp_path / "nowhere"), str(tmp_path / "out"))
    with pytest.raises(SystemExit, match="export: batch: expected a positive integer"):
        export_cli.main(["--workdir", str(tmp_path), "--out", str(tmp_path), "--batch", "0"])
    with pytest.raises(SystemExit, match="export: format: expected one of"):
        export_cli.main(["--workdir", str(tmp_path), "--out", str(tmp_path), "--format", "x"])
    with pytest.raises(SystemExit, match="--workdir and --out are required"):
        export_cli.main(["--workdir", str(tmp_path)])


def test_savedmodel_without_tensorflow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as when it is not installed
    with pytest.raises(SystemExit, match=r"format: 'savedmodel' needs tensorflow "
                                         r"\(pip install -e '\.\[tf\]'\)"):
        export_cli.main(["--workdir", str(tmp_path), "--out", str(tmp_path / "out"),
                         "--format", "savedmodel", "--batch", "1"])
