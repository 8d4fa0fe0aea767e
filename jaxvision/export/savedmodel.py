"""A TensorFlow SavedModel of an exported serving function (the `[tf]` extra): jax2tf with
native serialization, signature 'serve' taking `images` uint8 [B, H, W, 3] and returning the
same dict as the jax artifact. It loads in a plain tensorflow install (`tf.saved_model.load`).

Two limits of the TensorFlow build (checked with tensorflow-cpu 2.21 and jax 0.10.2): its XLA
reads StableHLO up to its own version (1.13.7) while jax writes 1.15 (a composite top_k), so the
module is written at the older of the two versions; and it cannot refine a symbolic batch
through top_k, so the SavedModel needs a fixed batch (`--batch`).
"""

from __future__ import annotations

import contextlib

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
    with _stablehlo_version(_tf_stablehlo_version()):  # traced and written here
        tf.saved_model.save(module, path, signatures={"serve": module.serve})
    return path


def _tf_stablehlo_version() -> str | None:
    """The StableHLO version the installed TensorFlow's XLA reads (None if it does not say)."""
    try:
        from tensorflow.compiler.mlir.stablehlo import stablehlo
    except ImportError:
        return None
    return stablehlo.get_current_version()


@contextlib.contextmanager
def _stablehlo_version(version: str | None):
    """jax.export writes StableHLO at `version` when it is older than jax's own target (jax's
    private `_export.hlo` hook: the public API has no option for it)."""
    from jax._src.export import _export

    original = _export.hlo.get_version_from_compatibility_requirement

    def older(requirement):
        own = original(requirement)
        key = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
        return version if version and key(version) < key(own) else own

    _export.hlo.get_version_from_compatibility_requirement = older
    try:
        yield
    finally:
        _export.hlo.get_version_from_compatibility_requirement = original


def load(path: str):
    """The 'serve' signature of the SavedModel at `path`: `images` (numpy) -> dict of numpy."""
    tf = require_tensorflow()
    serve = tf.saved_model.load(path).signatures["serve"]
    return lambda images: {k: np.asarray(v) for k, v in serve(images=tf.constant(
        np.asarray(images, np.uint8))).items()}


