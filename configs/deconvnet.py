"""DeconvNet (VGG16-BN encoder and mirrored unpooling decoder at 1/4 width) on shapes.

    python train.py --config configs/deconvnet.py

Noh et al. train and run DeconvNet instance-wise: on crops around one object (ground-truth boxes
enlarged 1.2x for the first training stage, object proposals at test time), and aggregate the
instance maps into the image's segmentation. The shapes data here is built the same way: one
shape per 64x64 image filling 40-90% of it, so the encoder's 1x1 fc7 code describes one object.
Trains 1000 steps of batch 16 with AdamW (1e-3).

MEASURED (quiet 2-core CPU): 249 s wall including dataset generation, 76 train images/s,
2,176,996 parameters; test mIoU 0.919 (circle 0.903, square 0.886, triangle 0.919, background
0.967), boundary F-score 0.969 at 2 px. On whole images with 1-3 smaller shapes (the FCN
configs' data) it found the foreground (background IoU 0.945) but rarely the class: mIoU 0.369
after 1500 steps, as one global fc7 code cannot say which of several shapes is which.
"""

from jaxvision.train.config import base_config


def get_config():
    config = base_config()
    config.model = "deconvnet"
    # The paper's structure at small scale: 1/4 widths, fc6/fc7 256 wide; fc6 spans the whole
    # pool5 map (2x2 at 64 px, as 7x7 at the paper's 224 px).
    config.model_kwargs.update(dict(widths=(16, 32, 64, 128, 128), fc_width=256))
    config.task = "segmentation"
    config.data.builders.shapes.update(dict(max_shapes=1, min_extent=0.4, max_extent=0.9))
    config.train.update(dict(steps=1000, batch_size=16, eval_every=250, checkpoint_every=250))
    config.optimizer.update(dict(name="adamw", learning_rate=1e-3, warmup_steps=40,
                                 weight_decay=1e-4))
    config.lock()
    return config
