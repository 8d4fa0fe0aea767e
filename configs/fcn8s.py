"""FCN-8s (VGG16-BN backbone at 1/4 width) on the synthetic shapes dataset.

    python train.py --config configs/fcn8s.py

Builds the 64x64 shapes dataset on first use, trains 800 steps of batch 16 with AdamW.
Measured once (2-core CPU shared with other jobs, so slower than CI): 9m25s wall, 29 train
images/s, 1,290,268 parameters; test mIoU 0.925 (>= 0.80), boundary F-score 0.996 at 2 px /
0.979 at 1 px tolerance (`python -m jaxvision.predict --config configs/fcn8s.py
--workdir <workdir> --eval_boundary [--tolerance 1]`).
"""

from jaxvision.train.config import base_config


def get_config():
    config = base_config()
    config.model = "fcn8s"
    # The paper's structure at small scale: VGG16 blocks at 1/4 width, fc6 3x3 (7x7 needs a
    # >= 7x7 pool5 map, i.e. >= 224 px), fc6/fc7 256 wide. BatchNorm after each conv because the
    # backbone trains from scratch here (the paper fine-tunes ImageNet weights).
    config.model_kwargs.update(dict(backbone="vgg16", backbone_widths=(16, 32, 64, 128, 128),
                                    batch_norm=True, fc_width=256, fc_kernel=3,
                                    dropout_rate=0.1))
    config.task = "segmentation"
    config.train.update(dict(steps=800, batch_size=16, eval_every=400, checkpoint_every=200))
    config.optimizer.update(dict(name="adamw", learning_rate=3e-3, warmup_steps=40,
                                 weight_decay=1e-4))
    config.lock()
    return config
