"""Settings shared by the classification configs: the shapes default and the ImageNet recipe."""

from jaxvision.train.config import base_config

SHAPES_DATA = dict(image_size=32, random_crop_padding=2, random_flip=True)
# One shape per 32x32 image, its diameter 40-90% of the image (objects fill the frame as in
# ImageNet; at the segmentation default of 20-45% ResNet-18 stayed near chance for 600 steps).
SHAPES_BUILDER = dict(num_train=10000, min_shapes=1, max_shapes=1, min_extent=0.4,
                      max_extent=0.9)


def shapes_classification(config, *, steps: int, learning_rate: float):
    """Shapes classification: batch 32, AdamW with a 20-step warm-up, label smoothing 0.1."""
    config.task = "classification"
    config.task_kwargs.label_smoothing = 0.1
    config.data.update(SHAPES_DATA)
    config.data.builders.shapes.update(SHAPES_BUILDER)
    config.train.update(dict(steps=steps, batch_size=32, eval_batch_size=64, log_every=50,
                             eval_every=300, checkpoint_every=300))
    config.optimizer.update(dict(name="adamw", learning_rate=learning_rate, warmup_steps=20,
                                 weight_decay=5e-4))
    return config


def imagenet_recipe(config, *, epochs: int = 90, batch_size: int = 256, lr: float = 0.1):
    """The classic ImageNet fields (He et al. / torchvision): 224 px random-resized crops and
    flips (eval: resize 256, centre crop 224), SGD momentum 0.9,
    lr 0.1 x batch/256 with 5 warm-up epochs and cosine decay, weight decay 1e-4, bfloat16."""
    config.dataset = "imagenet2012"
    config.data.update(dict(image_size=224, random_crop_padding=0, random_flip=True,
                            crop="random_resized"))
    steps = epochs * 1_281_167 // batch_size
    config.train.update(dict(steps=steps, batch_size=batch_size, eval_batch_size=250,
                             log_every=100, eval_every=5000, checkpoint_every=2500))
    config.optimizer.update(dict(name="sgd", learning_rate=lr * batch_size / 256,
                                 momentum=0.9, nesterov=False, weight_decay=1e-4,
                                 warmup_steps=5 * 1_281_167 // batch_size, schedule="cosine"))
    config.dtype = "bfloat16"
    return config


def classification_config(model: str, variant: str, *, steps: int, learning_rate: float):
    """`model` on shapes classification; `variant='imagenet2012'` switches to the ImageNet
    recipe. Returns the locked config."""
    config = base_config()
    config.model = model
    shapes_classification(config, steps=steps, learning_rate=learning_rate)
    if variant == "imagenet2012":
        imagenet_recipe(config)
    elif variant:
        raise ValueError(f"config variant: expected '' or 'imagenet2012', got {variant!r}")
    config.lock()
    return config
