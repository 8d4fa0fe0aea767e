"""FCN-16s (VGG16-BN backbone at 1/4 width) on the synthetic shapes dataset.

    python train.py --config configs/fcn16s.py

Builds the 64x64 shapes dataset on first use, trains 800 steps of batch 16 with AdamW.
Measured once (2-core CPU shared with other jobs, so slower than CI): 7m14s wall, 37 train
images/s, 1,302,040 parameters; test mIoU 0.823 (>= 0.80), boundary F-score 0.950 at 2 px /
0.843 at 1 px tolerance (between FCN-32s and FCN-8s, as the lecture says).
"""

from jaxvision.train.config import base_config


def get_config():
    config = base_config()
    config.model = "fcn16s"
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
