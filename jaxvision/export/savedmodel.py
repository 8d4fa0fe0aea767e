"""A TensorFlow SavedModel of an exported serving function (the `[tf]` extra): jax2tf with
native serialization, signature 'serve' taking `images` uint8 [B, H, W, 3] and returning the
same dict as the jax artifact. It loads in a plain tensorflow install (`tf.saved_model.load`)."""

from __future__ import annotations

import numpy as np

INSTALL = "pip install -e '.[tf]'"


def require_tensorflow():
    """The tensorflow module; ValueError naming the format and the install command without it."""
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ValueError(f"format: 'savedmodel' needs tensorflow ({INSTALL}), got "
                         f"ImportError: {error}") from error
    return tf


def save(exported, path: str) -> str:
    """Writes the SavedModel of `exported` (a `jax.export.Exported`) into `path`."""
    tf = require_tensorflow()
    from jax.experimental import jax2tf

    shape = [d if isinstance(d, int) else None for d in exported.in_avals[0].shape]
    polymorphic = "(" + ", ".join("b" if d is None else str(d) for d in shape) + ")"
    convert = jax2tf.convert(exported.call, polymorphic_shapes=[polymorphic],
                             native_serialization_platforms=exported.platforms,
                             with_gradient=False)
    module = tf.Module()
    module.serve = tf.function(
        lambda images: convert(images), autograph=False,
        input_signature=[tf.TensorSpec(shape, tf.uint8, name="images")])
    tf.saved_model.save(module, path, signatures={"serve": module.serve})
    return path


def load(path: str):
    """The 'serve' signature of the SavedModel at `path`: `images` (numpy) -> dict of numpy."""
    tf = require_tensorflow()
    serve = tf.saved_model.load(path).signatures["serve"]
    return lambda images: {k: np.asarray(v) for k, v in serve(images=tf.constant(
        np.asarray(images, np.uint8))).items()}


