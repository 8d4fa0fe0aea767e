"""A short classification run end to end: logs top-1/top-5 and evaluates the test split."""

from jaxvision.train import train_and_evaluate
from tests.train.conftest import records
from tests.train.test_init_from import tiny_classification_config


def test_short_classification_run(tmp_path, data_dir):
    config = tiny_classification_config(data_dir, steps=4)
    final = train_and_evaluate(config, str(tmp_path))
    assert set(final) >= {"step", "top1", "top5", "loss"} and final["step"] == 4
    assert 0.0 <= final["top1"] <= final["top5"] == 1.0  # 3 classes: top-5 is top-3
    train = [r for r in records(str(tmp_path)) if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4] and all(r["loss"] > 0 for r in train)


def test_imagenet_switch_is_recognised_and_says_what_it_needs(tmp_path):
    import pytest

    from configs import resnet18 as resnet18_config
    from jaxvision.train import train_and_evaluate as run

    config = resnet18_config.get_config("imagenet2012")
    assert config.dataset == "imagenet2012" and config.data.image_size == 224
    config.unlock()
    config.data.data_dir = str(tmp_path)
    with pytest.raises(ValueError, match=r"dataset='imagenet2012': expected a prepared catalog "
                                         r"dataset; it needs .*prepared TFDS imagenet2012"):
        run(config, str(tmp_path / "work"))
