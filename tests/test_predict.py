"""The predict CLI: the latest checkpoint of a real (tiny) run, the trainer's own restore and
transform, and a picture per task."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from PIL import Image

from jaxvision import predict
from jaxvision.data.transforms import normalise
from jaxvision.models import get_model
from jaxvision.train import train_and_evaluate
from tests.train.conftest import checkpoint_steps, saved_state, tiny_unet_config


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


def test_draw_detections_outlines_confident_valid_boxes_only():
    image = np.zeros((40, 40, 3), np.uint8)
    detections = {"boxes": np.array([[5, 18, 20, 30], [22, 2, 38, 12], [1, 30, 9, 38.0]]),
                  "scores": np.array([0.9, 0.95, 0.1]), "labels": np.array([1, 2, 3]),
                  "valid": np.array([True, False, True])}
    out = predict.draw_detections(image, detections, ("bg", "a", "b", "c"), min_score=0.3)
    np.testing.assert_array_equal(out[29, 12], predict.PALETTE[1])  # bottom edge of box 0
    assert not out[5:12, 30:37].any()  # invalid box 1 not drawn
    assert not out[32:37, 2:8].any()  # box 2 under min_score not drawn
    masked = dict(detections, masks=np.zeros((3, 40, 40), bool))
    masked["masks"][0, 10:12, 10:12] = True
    out = predict.draw_detections(image, masked, ("bg", "a", "b", "c"), alpha=1.0)
    np.testing.assert_array_equal(out[10, 10], predict.PALETTE[1])


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    workdir = tmp_path_factory.mktemp("run")
    config = tiny_unet_config(data_dir, steps=6)
    final = train_and_evaluate(config, str(workdir))
    return config, workdir, final


def test_image_prediction_uses_the_latest_checkpoint(unet_run, tmp_path):
    config, workdir, _ = unet_run
    latest = max(checkpoint_steps(str(workdir)))
    params = saved_state(str(workdir), latest)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    trainer, state = predict.load_run(config, str(workdir))
    seen, out = predict.predict_image(trainer, state, image)
    # independent path: torch's bilinear resize to data.image_size (half-pixel centres, no
    # antialias: the eval transform's resize of an image of another size), the saved params
    # restored by orbax directly
    size = config.data.image_size
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    resized = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                              align_corners=False, antialias=False)
    resized = resized[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(seen, np.round(resized), atol=1)
    model = get_model("unet", num_classes=4, **config.model_kwargs)
    logits, _ = model.apply({"params": params["params"], "batch_stats": params["batch_stats"]},
                            jnp.asarray(normalise(resized))[None], train=False)
    logits = np.asarray(logits[0])
    top2 = np.sort(logits, -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-4  # float rounding cannot flip the argmax there
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(out["classes"][clear], np.argmax(logits, -1)[clear])
    picture, summary = predict.render(trainer, seen, out, alpha=0.5)
    np.testing.assert_array_equal(picture, predict.overlay(seen, out["classes"], 0.5))
    assert summary.startswith("pixels: background")


def test_cli_eval_reproduces_the_runs_final_metrics(unet_run, tmp_path, monkeypatch, capsys):
    config, workdir, final = unet_run
    monkeypatch.setattr(predict, "load_config", lambda path: config)
    predict.main(["--config", "tiny", "--workdir", str(workdir), "--eval"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["step"] == final["step"]
    assert printed["miou"] == pytest.approx(final["miou"], abs=1e-12)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "x.png")
    predict.main(["--config", "tiny", "--workdir", str(workdir), "--image",
                  str(tmp_path / "x.png"), "--out", str(tmp_path / "y.png")])
    assert np.asarray(Image.open(tmp_path / "y.png")).shape == (32, 32, 3)


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


def test_missing_checkpoints_raise_naming_the_workdir(tmp_path):
    config = tiny_unet_config(str(tmp_path / "tfds"))
    with pytest.raises(ValueError, match="workdir: expected a training run with checkpoints"):
        predict.load_run(config, str(tmp_path))
    assert not (tmp_path / "checkpoints").exists()


def test_main_requires_image_and_out(tmp_path):
    with pytest.raises(SystemExit):
        predict.main(["--config", "configs/unet.py", "--workdir", str(tmp_path)])

