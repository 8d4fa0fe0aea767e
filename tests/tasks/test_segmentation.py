"""Segmentation task: the training loss skips ignore-label pixels (float64 reference), also when
a valid-padding model's logits are smaller than the labels."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.tasks import get_task

IGNORE = 255  # VOC's "void" label; torchvision's segmentation reference uses ignore_index=255


class _LogitsAreTheImage(nn.Module):
    """A parameter-free stand-in model: the 'image' [B, H, W, K] is returned as the logits,
    cropped by `crop` pixels on every side (as a valid-padding network shrinks its input)."""

    crop: int = 0

    @nn.compact
    def __call__(self, x, train: bool):
        c = self.crop
        return (x[:, c:x.shape[1] - c, c:x.shape[2] - c] if c else x), {}


def _reference(logits, labels, ignore):
    """float64: mean over pixels whose label != ignore of -log softmax(logits)[label], and the
    pixel accuracy over the same pixels."""
    z = logits.astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    keep = labels != ignore
    b, h, w = np.nonzero(keep)
    loss = -logp[b, h, w, labels[keep]].mean()
    accuracy = (logits[keep].argmax(-1) == labels[keep]).mean()
    return loss, accuracy


def _batch(rng, crop):
    logits = (rng.normal(size=(2, 6, 7, 4)) * 3).astype(np.float32)
    h, w = 6 + 2 * crop, 7 + 2 * crop
    labels = rng.integers(0, 4, size=(2, h, w)).astype(np.int32)
    labels[0, : crop + 3] = IGNORE  # a third of one image is void ...
    labels[1, crop + 2, crop + 1: crop + 5] = IGNORE  # ... and a few pixels of the other
    # the logits of void pixels are confidently wrong: counting them would move the loss a lot
    void = labels[:, crop:crop + 6, crop:crop + 7] == IGNORE
    logits[void] = [-8.0, 8.0, 8.0, 8.0]
    image = logits.copy()
    if crop:
        image = np.pad(image, ((0, 0), (crop, crop), (crop, crop), (0, 0)))
    return image, labels, logits


@pytest.mark.parametrize("crop", [0, 2])
def test_loss_ignores_void_pixels_like_the_float64_reference(crop):
    task = get_task("segmentation", ("circle", "square", "triangle"))
    assert task.ignore_label == IGNORE and task.num_classes == 4
    image, labels, logits = _batch(np.random.default_rng(crop), crop)
    model = _LogitsAreTheImage(crop)
    batch = {"image": jnp.asarray(image), "segmentation": jnp.asarray(labels)}
    loss, (metrics, _) = jax.jit(lambda b: task.loss(model, {"params": {}}, b,
                                                     jax.random.key(0)))(batch)
    cropped = labels[:, crop:labels.shape[1] - crop, crop:labels.shape[2] - crop]
    want_loss, want_accuracy = _reference(logits, cropped, IGNORE)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["loss"], want_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["pixel_accuracy"], want_accuracy, rtol=1e-6)
    # the reference is sensitive to the void pixels: counting them as class 0 changes the loss
    all_pixels, _ = _reference(logits, np.where(cropped == IGNORE, 0, cropped), IGNORE)
    assert abs(all_pixels - want_loss) > 1.0


def test_gradient_is_zero_on_void_pixels():
    task = get_task("segmentation", ("a", "b", "c"))
    image, labels, _ = _batch(np.random.default_rng(5), 0)
    grad = jax.grad(lambda x: task.loss(_LogitsAreTheImage(), {"params": {}},
                                        {"image": x, "segmentation": jnp.asarray(labels)},
                                        jax.random.key(0))[0])(jnp.asarray(image))
    void = labels == IGNORE
    assert np.all(np.asarray(grad)[void] == 0)
    assert np.all(np.abs(np.asarray(grad)[~void]).sum(-1) > 0)
