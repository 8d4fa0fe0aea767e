"""ImageNet (ILSVRC-2012) reference recipes: the fields they share.

Data: `imagefolder:<root>` (ImageNet as users extract it, `<root>/{train,val}/<class>/*.JPEG`;
the default root is `~/imagenet`) or `imagenet2012` (the TFDS copy, `pip install -e '.[tf]'`).
1,281,167 training images, 50,000 validation images (the test split), 1000 classes. Train:
224 px random-resized crop (area 8-100%, aspect 3/4-4/3) and horizontal flip; eval: resize to
256, centre crop 224 (`data.crop='random_resized'`).

Steps count images: `epochs * 1,281,167 // batch` (torchvision's loader also runs the last
partial batch of each epoch, 5005 steps per epoch at 256 where this gives 5004.56; its
per-epoch learning-rate steps therefore fall up to ~14 steps later than here).

These recipes train from scratch. Their checkpoints, or torchvision's published weights
converted with `python -m jaxvision.weights.torchvision --model resnet50 --in resnet50.pth
--out ckpt/resnet50`, are what the detection recipes' `config.init_from` starts from.
"""

from jaxvision.train.config import base_config

TRAIN_IMAGES = 1_281_167
DATASET = "imagefolder:~/imagenet"


def epoch_steps(epochs: float, batch_size: int) -> int:
    """Steps that see `epochs` x 1,281,167 images at a global batch of `batch_size` (floor)."""
    return int(epochs * TRAIN_IMAGES // batch_size)


def imagenet_config(model: str, *, epochs: int, batch_size: int, eval_every_epochs: int = 1):
    """Unlocked config for `model` on ImageNet: data, `epochs` of `batch_size`, an evaluation
    every `eval_every_epochs` and a checkpoint every epoch; the recipe sets the optimiser."""
    config = base_config()
    config.model = model
    config.task = "classification"
    config.dataset = DATASET
    config.data.update(dict(image_size=224, crop="random_resized", random_flip=True,
                            random_crop_padding=0))
    per_epoch = epoch_steps(1, batch_size)
    config.train.update(dict(steps=epoch_steps(epochs, batch_size), batch_size=batch_size,
                             eval_batch_size=256, log_every=100,
                             eval_every=eval_every_epochs * per_epoch,
                             checkpoint_every=per_epoch))
    return config


def torchvision_sgd(config, *, lr: float, epochs: int, batch_size: int) -> None:
    """torchvision references/classification's defaults: SGD momentum 0.9 (no Nesterov), weight
    decay 1e-4, no warm-up, learning rate x0.1 every 30 epochs."""
    boundaries = tuple(epoch_steps(e, batch_size) for e in range(30, epochs, 30))
    config.optimizer.update(dict(name="sgd", learning_rate=lr, momentum=0.9, nesterov=False,
                                 weight_decay=1e-4, warmup_steps=0, schedule="steps",
                                 boundaries=boundaries, decay_factor=0.1))
