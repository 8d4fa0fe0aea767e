"""Classification: label-smoothed CE vs float64 numpy, top-k vs argsort, evaluator sums."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.losses import softmax_cross_entropy
from jaxvision.metrics.classification import topk_correct, topk_counts
from jaxvision.tasks import get_task


def ce_reference(logits, labels, smoothing):
    """float64 numpy: -sum(target * log_softmax), target = (1-s) one_hot + s / K."""
    x = logits.astype(np.float64)
    log_p = x - x.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    k = x.shape[-1]
    target = np.full(x.shape, smoothing / k)
    target[np.arange(len(labels)), labels] += 1 - smoothing
    return -(target * log_p).sum(-1)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_cross_entropy_matches_float64(smoothing):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 7)).astype(np.float32) * 5
    labels = rng.integers(0, 7, size=16)
    per = softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels),
                                label_smoothing=smoothing, reduce=False)
    expected = ce_reference(logits, labels, smoothing)
    np.testing.assert_allclose(per, expected, rtol=1e-5, atol=1e-6)
    mean = softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels),
                                 label_smoothing=smoothing)
    np.testing.assert_allclose(mean, expected.mean(), rtol=1e-5)


def test_cross_entropy_is_float32_for_bfloat16_logits():
    logits = jnp.asarray([[30.0, -30.0, 0.0]], jnp.bfloat16)
    loss = softmax_cross_entropy(logits, jnp.asarray([1]), label_smoothing=0.1)
    assert loss.dtype == jnp.float32
    expected = ce_reference(np.asarray(logits.astype(jnp.float32)), np.array([1]), 0.1)
    np.testing.assert_allclose(loss, expected[0], rtol=1e-5)


def test_cross_entropy_rejects_bad_input():
    with pytest.raises(ValueError, match=r"label_smoothing: expected 0 <= value < 1, got 1.0"):
        softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((2,), int), label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"expected \[B, K\] and \[B\], got \(2, 3\) and \(3,\)"):
        softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((3,), int))


def topk_reference(logits, labels, k):
    order = np.argsort(-logits.astype(np.float64), axis=-1, kind="stable")[:, :k]
    return (order == labels[:, None]).any(-1)


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_topk_matches_stable_argsort_with_ties(k):
    rng = np.random.default_rng(1)
    logits = rng.integers(-2, 3, size=(200, 6)).astype(np.float32)  # many ties
    labels = rng.integers(0, 6, size=200)
    got = topk_correct(jnp.asarray(logits), jnp.asarray(labels), k)
    np.testing.assert_array_equal(got, topk_reference(logits, labels, min(k, 6)))


def test_topk_tie_rule_prefers_the_lower_index():
    logits = jnp.asarray([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(topk_correct(logits, jnp.asarray([0, 1]), 1), [True, False])
    np.testing.assert_array_equal(topk_correct(logits, jnp.asarray([0, 2]), 2), [True, False])


def test_topk_counts_and_jit():
    logits = jnp.asarray([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]])
    labels = jnp.asarray([0, 2, 0])
    counts = jax.jit(lambda a, b: topk_counts(a, b, (1, 2, 5)))(logits, labels)
    assert {k: float(v) for k, v in counts.items()} == {
        "top1_correct": 1.0, "top2_correct": 2.0, "top5_correct": 3.0, "count": 3.0}


def test_evaluator_sums_over_batches():
    task = get_task("classification", ("a", "b", "c", "d", "e", "f"))
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(10, 6)).astype(np.float32)
    labels = rng.integers(0, 6, size=10)
    evaluator = task.evaluator()
    evaluator.update({"logits": logits[:7]}, {"label": labels[:7]})
    evaluator.update({"logits": logits[7:]}, {"label": labels[7:]})
    summary = evaluator.result()
    assert set(summary) == {"top1", "top5", "loss"}
    assert summary["top1"] == pytest.approx(topk_reference(logits, labels, 1).mean())
    assert summary["top5"] == pytest.approx(topk_reference(logits, labels, 5).mean())
    assert summary["loss"] == pytest.approx(ce_reference(logits, labels, 0).mean(), rel=1e-5)


@pytest.mark.slow
def test_task_loss_predict_on_a_tiny_resnet():
    from jaxvision.models import get_model

    task = get_task("classification", ("circle", "square", "triangle"), label_smoothing=0.1)
    assert task.num_classes == 3 and task.fields == ("image", "label")
    model = get_model("resnet18", num_classes=3)
    batch = {"image": jnp.ones((2, 32, 32, 3)), "label": jnp.asarray([0, 2])}
    variables = task.init(model, jax.random.key(0), batch)
    loss, (metrics, new_state) = task.loss(model, variables, batch, jax.random.key(1))
    assert loss.dtype == jnp.float32 and np.isfinite(loss) and set(metrics) == {"loss", "top1"}
    assert set(new_state) == {"batch_stats"}
    logits = task.predict(model, variables, batch)["logits"]
    assert logits.shape == (2, 3) and logits.dtype == jnp.float32


def test_task_rejects_bad_settings():
    with pytest.raises(ValueError, match="task: expected one of"):
        get_task("classify", ("a", "b"))
    with pytest.raises(ValueError, match=r"task_kwargs.label_smoothing: expected"):
        get_task("classification", ("a", "b"), label_smoothing=-0.1)
