"""The predict CLI: a run trained with `--config.*` overrides reopened from its workdir alone,
predictions drawn on real photographs at their original size, the score threshold, readable
labels, and `--eval` into a directory of its own."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from jaxvision import predict
from jaxvision.data.transforms import normalise
from jaxvision.models import get_model
from tests.train.conftest import REPO, checkpoint_steps, records, saved_state, train_cmd


def test_overlay_paints_only_foreground_classes():
    image = np.full((4, 6, 3), 100, np.uint8)
    mask = np.zeros((4, 6), np.int32)
    mask[1, 2] = 1
    out = predict.overlay(image, mask, alpha=0.5)
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
    blended = (image[1, 2].astype(float) + predict.PALETTE[1]) / 2
    np.testing.assert_array_equal(out[1, 2], np.round(blended))
    with pytest.raises(ValueError, match="alpha: expected a value in"):
        predict.overlay(image, mask, alpha=2.0)


def test_draw_detections_outlines_valid_boxes_at_the_threshold():
    image = np.zeros((200, 200, 3), np.uint8)
    detections = {"boxes": np.array([[25, 90, 100, 150], [110, 10, 190, 60],
                                     [5, 150, 45, 190.0], [120, 120, 180, 180]]),
                  "scores": np.array([0.9, 0.95, 0.49, 0.5]), "labels": np.array([1, 2, 3, 4]),
                  "valid": np.array([True, False, True, True])}
    names = ("bg", "a", "b", "c", "d")
    out = predict.draw_detections(image, detections, names)  # default threshold 0.5
    np.testing.assert_array_equal(out[149, 60], predict.PALETTE[1])  # bottom edge of box 0
    np.testing.assert_array_equal(out[179, 150], predict.PALETTE[4])  # score exactly 0.5: drawn
    assert not out[55:62, 105:195].any()  # invalid box 1 not drawn (its bottom edge)
    assert not out[185:195, 0:50].any()  # box 2, 0.49 < 0.5: not drawn
    masked = dict(detections, masks=np.zeros((4, 200, 200), bool))
    masked["masks"][0, 120:125, 50:55] = True
    out = predict.draw_detections(image, masked, names, alpha=1.0, score_threshold=0.3)
    np.testing.assert_array_equal(out[122, 52], predict.PALETTE[1])
    np.testing.assert_array_equal(out[189, 20], predict.PALETTE[3])  # box 2 drawn at 0.3


def test_labels_of_boxes_with_the_same_top_do_not_cover_each_other():
    taken = []
    for box in ([10, 40, 60, 90], [12, 40, 70, 80], [11, 41, 50, 70]):
        x, y = predict._place(box, (50, 14), taken, height=100)
        rect = (x, y, x + 50, y + 14)
        assert not [t for t in taken if rect[0] < t[2] and t[0] < rect[2]
                    and rect[1] < t[3] and t[1] < rect[3]]
        taken.append(rect)
    assert taken[0][1] == 26  # the first label sits right above its box
    assert predict._place([0, 2, 30, 30], (20, 14), [], height=100) == (0, 2)  # inside: no room


@pytest.fixture(scope="module")
def overridden_run(tmp_path_factory):  # about 25 s: its tests are slow
    """A tiny U-Net run trained by `train.py` with overrides that change the model's shapes."""
    workdir = str(tmp_path_factory.mktemp("run"))
    cmd = train_cmd(workdir, str(tmp_path_factory.mktemp("tfds")), "--config.train.steps=4",
                    "--config.train.log_every=2", "--config.train.eval_every=4",
                    "--config.train.checkpoint_every=2", "--config.model_kwargs.base_width=6")
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return workdir


def _photo(path, photo="chelsea", size=(150, 113), mode="RGB"):
    image = Image.fromarray(getattr(skimage.data, photo)()).convert("RGB").resize(size)
    image.convert(mode).save(path)
    return np.asarray(Image.open(path).convert("RGB"))  # as saved (JPEG, palette)


@pytest.mark.slow
def test_workdir_alone_predicts_on_the_original_photograph(overridden_run, tmp_path):
    workdir = overridden_run
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["model_kwargs"]["base_width"] == 6
    pixels = _photo(tmp_path / "cat.jpg", mode="CMYK")
    predict.main(["--workdir", workdir, "--image", str(tmp_path / "cat.jpg"), "--out",
                  str(tmp_path / "out.png")])
    picture = np.asarray(Image.open(tmp_path / "out.png"))
    assert picture.shape == (113, 150, 3)
    # independent path: torch's bilinear resize to data.image_size (half-pixel centres, no
    # antialias), the saved params restored by orbax, torch's nearest resize back
    x = torch.from_numpy(pixels.astype(np.float32)).permute(2, 0, 1)[None]
    resized = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear",
                                              align_corners=False, antialias=False)
    resized = resized[0].permute(1, 2, 0).numpy()
    params = saved_state(workdir, max(checkpoint_steps(workdir)))
    model = get_model("unet", num_classes=4, depth=2, base_width=6, padding="SAME",
                      batch_norm=True)
    logits, _ = model.apply({"params": params["params"], "batch_stats": params["batch_stats"]},
                            jnp.asarray(normalise(resized))[None], train=False)
    top2 = np.sort(np.asarray(logits[0]), -1)[..., -2:]
    back = lambda a: torch.nn.functional.interpolate(  # noqa: E731
        torch.from_numpy(np.asarray(a, np.float32))[None, None], size=(113, 150),
        mode="nearest")[0, 0].numpy()
    classes = back(np.argmax(np.asarray(logits[0]), -1)).astype(np.int32)
    clear = back(top2[..., 1] - top2[..., 0] > 1e-4) > 0  # rounding cannot flip the argmax
    assert clear.mean() > 0.95
    trainer, state = predict.load_run(workdir)
    out = predict.predict_image(trainer, state, pixels)
    np.testing.assert_array_equal(out["classes"][clear], classes[clear])
    np.testing.assert_array_equal(picture, predict.overlay(pixels, out["classes"], 0.5))


def test_render_classification_names_the_top_class():
    class Run:
        class task:  # noqa: N801
            class_names = ("circle", "square", "triangle")

    logits = np.array([0.1, 2.0, -1.0], np.float32)
    picture, summary = predict.render(Run, np.zeros((16, 64, 3), np.uint8), {"logits": logits})
    probs = np.exp(logits) / np.exp(logits).sum()
    assert summary == (f"square {probs[1]:.3f}, circle {probs[0]:.3f}, "
                       f"triangle {probs[2]:.3f}")
    assert picture.any()  # the label was written


@pytest.mark.slow
def test_exif_rotated_photograph_is_drawn_upright(overridden_run, tmp_path):
    image = Image.fromarray(skimage.data.rocket()).resize((96, 64))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    image.save(tmp_path / "rotated.jpg", exif=exif)
    predict.main(["--workdir", overridden_run, "--image", str(tmp_path / "rotated.jpg"),
                  "--out", str(tmp_path / "out.png")])
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (96, 64, 3)


@pytest.mark.slow
def test_eval_never_overwrites(overridden_run, capsys):
    workdir = overridden_run
    logged = [r for r in records(workdir) if r["split"] == "test"][-1]
    for name in ("4-predict", "4-predict-2"):
        predict.main(["--workdir", workdir, "--eval"])
        printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert printed["eval_dir"] == os.path.join(workdir, "eval", name)
        assert printed["miou"] == pytest.approx(logged["miou"], abs=1e-12)
        with open(os.path.join(printed["eval_dir"], "metrics.json")) as f:
            assert json.load(f)["miou"] == printed["miou"]
    assert sorted(os.listdir(os.path.join(workdir, "eval"))) == ["4-predict", "4-predict-2"]


@pytest.mark.slow
def test_a_conflicting_config_is_named(overridden_run, tmp_path):
    with pytest.raises(SystemExit, match=r"config.model_kwargs.base_width: the run has 6, "
                                         r"given 4"):
        predict.main(["--workdir", overridden_run, "--config",
                      os.path.join(REPO, "configs", "unet.py"), "--config.model_kwargs.depth=2",
                      "--config.model_kwargs.base_width=4", "--eval"])
    with pytest.raises(SystemExit, match=r"config.model_kwargs.depth: the run has 2, given 3"):
        predict.main(["--workdir", overridden_run, "--config.model_kwargs.depth=3", "--eval"])


def test_missing_checkpoints_raise_naming_the_workdir(tmp_path):
    with pytest.raises(SystemExit, match="workdir: expected a training run with checkpoints"):
        predict.main(["--workdir", str(tmp_path), "--eval"])
    assert not (tmp_path / "checkpoints").exists()


def test_main_requires_image_and_out(tmp_path):
    with pytest.raises(SystemExit, match="--image and --out are required"):
        predict.main(["--workdir", str(tmp_path)])


@pytest.mark.slow
def test_cli_runs_as_a_module(overridden_run, tmp_path):
    _photo(tmp_path / "a.png", "astronaut", (64, 80), "L")
    _photo(tmp_path / "b.png", "coffee", (90, 60), "P")
    done = subprocess.run([sys.executable, "-m", "jaxvision.predict", "--workdir", overridden_run,
                           "--image", str(tmp_path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.asarray(Image.open(tmp_path / "out" / "a.png")).shape == (80, 64, 3)
    assert np.asarray(Image.open(tmp_path / "out" / "b.png")).shape == (60, 90, 3)
