"""The predict CLI: restores the latest orbax checkpoint of a workdir, writes the overlay PNG."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

from jaxvision import predict

CONFIG = "configs/fcn8s.py"


def _tiny_config():
    from configs.fcn8s import get_config

    config = get_config()
    config.model_kwargs.backbone_widths = (4, 8, 8, 16, 16)
    config.model_kwargs.fc_width = 8
    return config


def _save_run(workdir, config, bias, step):
    model = predict.build_model(config, 4)
    variables = jax.jit(functools.partial(model.init, train=False))(
        jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
    params = dict(variables["params"])
    params["score_fr"] = {**params["score_fr"], "bias": jnp.asarray(bias, jnp.float32)}
    state = {"step": step, "params": params, "batch_stats": variables["batch_stats"],
             "ema_params": {}}
    manager = ocp.CheckpointManager(str(workdir / "checkpoints"), item_names=("state", "data"))
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)))
    manager.wait_until_finished()
    manager.close()


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


def test_cli_writes_the_overlay_of_the_latest_checkpoint(tmp_path):
    config = _tiny_config()
    _save_run(tmp_path, config, [0.0, 5.0, 0.0, 0.0], step=1)  # older: everything class 1
    _save_run(tmp_path, config, [0.0, 0.0, 5.0, 0.0], step=2)  # latest: everything class 2
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "x.png")
    mask = predict.predict_file(config, str(tmp_path), str(tmp_path / "x.png"),
                                str(tmp_path / "y.png"), alpha=0.5)
    assert mask.shape == (64, 64) and np.all(mask == 2)
    written = np.asarray(Image.open(tmp_path / "y.png"))
    expected = np.round(0.5 * image.astype(np.float32) + 0.5 * predict.PALETTE[2])
    np.testing.assert_array_equal(written, expected.astype(np.uint8))


def test_missing_checkpoints_raise_naming_the_workdir(tmp_path):
    with pytest.raises(ValueError, match="workdir: expected a training run"):
        predict.load_variables(str(tmp_path))


def test_main_requires_image_and_out(tmp_path):
    with pytest.raises(SystemExit):
        predict.main(["--config", CONFIG, "--workdir", str(tmp_path)])
