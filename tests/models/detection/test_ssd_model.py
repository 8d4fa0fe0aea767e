"""SSD300 shapes and input checks (abstract evaluation only: no compute)."""

import jax
import jax.numpy as jnp
import pytest

from jaxvision.models import get_model


def _num_default_boxes(sizes, per_position=(4, 6, 6, 6, 4, 4)):
    return sum(s * s * a for s, a in zip(sizes, per_position, strict=True))


def _shapes(model, size, **kwargs):
    x = jnp.zeros((2, size, size, 3))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
    return jax.eval_shape(lambda v: model.apply(v, x, **kwargs), variables)


def test_outputs_at_300_and_narrow_at_the_minimum_size():
    out = _shapes(get_model("ssd300", num_classes=4), 300)
    assert _num_default_boxes((38, 19, 10, 5, 3, 1)) == 8732
    assert out["cls_logits"].shape == (2, 8732, 4) and out["bbox_regression"].shape == (2, 8732, 4)
    assert out["boxes"].shape == (2, 200, 4) and out["scores"].shape == (2, 200)
    assert out["labels"].dtype == jnp.int32 and out["valid"].dtype == jnp.bool_
    narrow = get_model("ssd300", num_classes=4, width=0.125, detections_per_img=50)
    out = _shapes(narrow, 268)
    assert out["cls_logits"].shape == (2, _num_default_boxes((34, 17, 9, 5, 3, 1)), 4)
    assert out["boxes"].shape == (2, 50, 4)


def test_bad_input_raises():
    model = get_model("ssd300", num_classes=4, width=0.125)
    with pytest.raises(ValueError, match="at least 268"):
        _shapes(model, 267)
    with pytest.raises(ValueError, match="targets"):
        _shapes(model, 300, train=True)
    with pytest.raises(ValueError, match="boxes_valid"):
        _shapes(model, 300, train=True, targets={"boxes": jnp.zeros((2, 1, 4)),
                                                 "labels": jnp.zeros((2, 1), jnp.int32)})


def test_score_threshold_is_strict():
    # zero logits over 2 classes: every foreground score is exactly 0.5
    from jaxvision.models.ssd import SSD300
    anchors = jnp.array([[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 11, 10]], jnp.float32)
    logits, deltas = jnp.zeros((3, 2)), jnp.zeros((3, 4))
    for thresh, expected in ((0.5, 0), (0.4999, 2)):  # the third box overlaps the first
        det = SSD300(num_classes=2, score_thresh=thresh, detections_per_img=4).apply(
            {}, logits, deltas, anchors, (100, 100), method=SSD300.postprocess)
        assert int(det["valid"].sum()) == expected
        assert det["boxes"].shape == (4, 4) and set(det["labels"].tolist()) <= {0, 1}
