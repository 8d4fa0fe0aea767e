"""A tiny U-Net trained on a `folder:` dataset of photographs of different sizes: it trains, and
its evaluation scores every non-void pixel of the test masks at their original size."""

import os

import numpy as np
import pytest
from PIL import Image

from jaxvision.tasks.segmentation import SegmentationEvaluator
from jaxvision.train import train_and_evaluate
from tests.data.photos import IGNORE, TEST, write_segmentation_folder
from tests.train.conftest import tiny_unet_config


@pytest.mark.slow
def test_tiny_unet_trains_on_a_folder_and_scores_at_the_original_size(tmp_path, monkeypatch):
    root = str(tmp_path / "photos")
    write_segmentation_folder(root)
    config = tiny_unet_config(str(tmp_path / "tfds"), steps=2)
    config.dataset = f"folder:{root}"
    evaluators = []
    result = SegmentationEvaluator.result
    monkeypatch.setattr(SegmentationEvaluator, "result",
                        lambda self: evaluators.append(self) or result(self))
    final = train_and_evaluate(config, str(tmp_path / "run"))
    assert final["step"] == 2 and 0.0 <= final["miou"] <= 1.0 and "boundary_f" in final
    masks = [np.asarray(Image.open(os.path.join(root, "test", "masks", f"{name}.png")))
             for name, _, _ in TEST]
    assert len(evaluators) == 1  # the final evaluation: 4 images at 4 sizes, none at 32 x 32
    assert evaluators[0].confusion.sum() == sum(int((m != IGNORE).sum()) for m in masks)
