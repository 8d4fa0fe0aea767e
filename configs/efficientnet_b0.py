"""EfficientNet-B0 on synthetic shapes classification (one shape per image).

    python train.py --config configs/efficientnet_b0.py

Builds the one-shape shapes dataset on first use and trains from scratch with pad-and-random-crop
plus flip, label smoothing 0.1 and AdamW; prints one JSON line with test top1/top5/loss.
NOT MEASURED yet (no run within this session's time; see configs/resnet18.py for the trouble
ResNet-18 had learning this dataset from scratch on CPU).

The ImageNet recipe (224px, SGD momentum 0.9, lr 0.1 x batch/256, cosine, label smoothing 0.1;
the paper's RMSProp/AutoAugment recipe is not reproduced) is one switch away:

    python train.py --config configs/efficientnet_b0.py:imagenet2012

which needs `pip install -e '.[tf]'` and a prepared TFDS imagenet2012.
"""

from configs.resnet18 import imagenet_recipe
from jaxvision.train.config import base_config


def get_config(variant: str = ""):
    config = base_config()
    config.model = "efficientnet_b0"
    config.task = "classification"
    config.task_kwargs.label_smoothing = 0.1
    config.data.update(dict(image_size=32, min_shapes=1, max_shapes=1, random_crop_padding=2,
                            random_flip=True))
    config.train.update(dict(steps=300, batch_size=32, eval_batch_size=64, log_every=25,
                             eval_every=100, checkpoint_every=300))
    config.optimizer.update(dict(name="adamw", learning_rate=2e-3, warmup_steps=30,
                                 weight_decay=1e-4))
    if variant == "imagenet2012":
        imagenet_recipe(config, epochs=90)
    elif variant:
        raise ValueError(f"config variant: expected '' or 'imagenet2012', got {variant!r}")
    config.lock()
    return config
