"""The synthetic `shapes` TFDS dataset: circles, squares and triangles on textured backgrounds.

Built on first use with no network and no TensorFlow: features are `tfds.features.Tensor` with zlib
encoding, written as array_record files that `tfds.data_source` (and grain) read by index.

    builder = shapes_builder(image_size=64, num_train=2000, num_test=256, data_dir="~/tfds")
    builder.download_and_prepare()
    source = builder.as_data_source(split="train")
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jaxvision.data.local_builder import LocalPreparation
from jaxvision.data.shapes_render import CLASS_NAMES, RenderSpec, render_example

_SPLIT_IDS = {"train": 0, "test": 1}


@dataclasses.dataclass(kw_only=True)
class ShapesConfig(tfds.core.BuilderConfig):
    """Image size, split sizes, shapes per image, shape size (diameter as a fraction of the image
    size) and the seed everything is drawn from."""

    image_size: int = 64
    num_train: int = 2000
    num_test: int = 256
    min_shapes: int = 1
    max_shapes: int = 3
    min_extent: float = RenderSpec.min_extent
    max_extent: float = RenderSpec.max_extent
    seed: int = 0


class Shapes(LocalPreparation, tfds.core.GeneratorBasedBuilder):
    """Synthetic shapes for classification, detection, instance and semantic segmentation."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        ShapesConfig(name="default", description="64x64, 1-3 shapes per image."),
        ShapesConfig(name="single", description="64x64, one shape per image (classification).",
                     min_shapes=1, max_shapes=1),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        s = self.builder_config.image_size
        def tensor(shape, dtype):
            return tfds.features.Tensor(shape=shape, dtype=dtype, encoding="zlib")

        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tensor((s, s, 3), np.uint8),
                "segmentation": tensor((s, s), np.uint8),
                "masks": tensor((None, s, s), np.uint8),
                "boxes": tensor((None, 4), np.float32),
                "labels": tensor((None,), np.int64),
                "label": tensor((), np.int64),
            }),
            description=f"Synthetic shapes; classes {CLASS_NAMES}. Boxes are absolute xyxy pixels.",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        cfg = self.builder_config
        return {"train": self._generate_examples("train", cfg.num_train),
                "test": self._generate_examples("test", cfg.num_test)}

    def _generate_examples(self, split: str, count: int):
        cfg = self.builder_config
        spec = RenderSpec(cfg.image_size, cfg.min_shapes, cfg.max_shapes, cfg.min_extent,
                          cfg.max_extent)
        for index in range(count):
            rng = np.random.default_rng([cfg.seed, _SPLIT_IDS[split], index])
            yield index, render_example(spec, rng)


def shapes_builder(*, image_size: int = 64, num_train: int = 2000, num_test: int = 256,
                   min_shapes: int = 1, max_shapes: int = 3,
                   min_extent: float = RenderSpec.min_extent,
                   max_extent: float = RenderSpec.max_extent, seed: int = 0,
                   data_dir: str | None = None) -> Shapes:
    """A `Shapes` builder for these settings; each distinct setting gets its own directory."""
    checks = {"image_size": (image_size, 16), "num_train": (num_train, 1),
              "num_test": (num_test, 1), "min_shapes": (min_shapes, 1)}
    for field, (value, least) in checks.items():
        if value < least:
            raise ValueError(f"shapes {field}: expected an integer >= {least}, got {value}")
    if max_shapes < min_shapes:
        raise ValueError(
            f"shapes max_shapes: expected >= min_shapes={min_shapes}, got {max_shapes}")
    if not 0.0 < min_extent <= max_extent <= 1.0:
        raise ValueError(f"shapes min_extent/max_extent: expected 0 < min_extent <= max_extent <= "
                         f"1, got {min_extent}/{max_extent}")
    name = f"s{image_size}_n{num_train}-{num_test}_k{min_shapes}-{max_shapes}_seed{seed}"
    if (min_extent, max_extent) != (RenderSpec.min_extent, RenderSpec.max_extent):
        name += f"_e{min_extent:g}-{max_extent:g}"
    config = ShapesConfig(name=name, image_size=image_size, num_train=num_train,
                          num_test=num_test, min_shapes=min_shapes, max_shapes=max_shapes,
                          min_extent=min_extent, max_extent=max_extent, seed=seed)
    return Shapes(config=config, data_dir=data_dir, file_format="array_record")
