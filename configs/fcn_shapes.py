"""The settings FCN-32s/16s/8s share on shapes, so the three configs differ only in the model."""

from jaxvision.train.config import base_config


def fcn_config(model: str, *, image_size: int = 64):
    """FCN on VGG16-BN at 1/4 width: 800 steps of batch 16, AdamW 3e-3 with 40 warm-up steps.

    The paper's structure at small scale: fc6 3x3 (7x7 needs a >= 7x7 pool5 map, i.e. >= 224 px)
    and fc6/fc7 256 wide; BatchNorm after each conv because the backbone trains from scratch
    here (the paper fine-tunes ImageNet weights).
    """
    config = base_config()
    config.model = model
    config.model_kwargs.update(dict(backbone="vgg16", backbone_widths=(16, 32, 64, 128, 128),
                                    batch_norm=True, fc_width=256, fc_kernel=3,
                                    dropout_rate=0.1))
    config.task = "segmentation"
    config.data.image_size = image_size
    config.train.update(dict(steps=800, batch_size=16, eval_every=400, checkpoint_every=200))
    config.optimizer.update(dict(name="adamw", learning_rate=3e-3, warmup_steps=40,
                                 weight_decay=1e-4))
    config.lock()
    return config
