"""A short classification run end to end: logs top-1/top-5 and evaluates the test split."""

import jax
import numpy as np
import pytest

from jaxvision.data.pipeline import ExampleTransform, eval_batches
from jaxvision.models import get_model
from jaxvision.tasks import get_task
from jaxvision.train import train_and_evaluate
from jaxvision.train.loop import load_data
from tests.train.conftest import records, saved_state
from tests.train.test_init_from import tiny_classification_config


@pytest.mark.slow
def test_short_classification_run(tmp_path, data_dir):
    """The run's final top-1 and loss equal a float64 recomputation from its saved parameters
    on the test split (top-5 is top-3 with 3 classes, so only top-1 and the loss say much)."""
    config = tiny_classification_config(data_dir, steps=4)
    final = train_and_evaluate(config, str(tmp_path))
    assert set(final) >= {"step", "top1", "top5", "loss"} and final["step"] == 4
    train = [r for r in records(str(tmp_path)) if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4] and all(r["loss"] > 0 for r in train)

    state = saved_state(str(tmp_path), 4)
    params = state["ema_params"] or state["params"]
    splits = load_data(config)
    task = get_task(config.task, splits.class_names, **config.task_kwargs)
    model = get_model(config.model, num_classes=task.num_classes, **config.model_kwargs)
    transform = ExampleTransform(task.fields, config.data.max_boxes, random_flip=False, seed=0)
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False)[0])
    logits, labels = [], []
    for batch in eval_batches(splits.test, transform, global_batch=8):
        keep = np.asarray(batch["example_valid"])
        out = apply({"params": params, "batch_stats": state["batch_stats"]}, batch["image"])
        logits.append(np.asarray(out, np.float64)[keep])
        labels.append(np.asarray(batch["label"])[keep])
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    assert len(labels) == config.data.builders.shapes.num_test
    order = np.argsort(-logits, axis=1, kind="stable")
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    assert final["top1"] == pytest.approx((order[:, 0] == labels).mean(), abs=1e-6)
    assert final["top5"] == pytest.approx((order[:, :5] == labels[:, None]).any(1).mean())
    assert final["loss"] == pytest.approx(-log_p[np.arange(len(labels)), labels].mean(),
                                          rel=1e-4)


def test_imagenet_switch_is_recognised_and_says_what_it_needs(tmp_path):
    from configs import resnet18 as resnet18_config
    from jaxvision.train import train_and_evaluate as run

    config = resnet18_config.get_config("imagenet2012")
    assert config.dataset == "imagenet2012" and config.data.image_size == 224
    config.unlock()
    config.data.data_dir = str(tmp_path)
    with pytest.raises(ValueError, match=r"dataset='imagenet2012': expected a prepared catalog "
                                         r"dataset; it needs .*prepared TFDS imagenet2012"):
        run(config, str(tmp_path / "work"))
