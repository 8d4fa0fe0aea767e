"""DeconvNet (VGG16-BN encoder and mirrored unpooling decoder at 1/4 width) on shapes.

    python train.py --config configs/deconvnet.py

RESULTS_PLACEHOLDER
"""

from jaxvision.train.config import base_config


def get_config():
    config = base_config()
    config.model = "deconvnet"
    # The paper's structure at small scale: 1/4 widths, fc6/fc7 256 wide; fc6 spans the whole
    # pool5 map (2x2 at 64 px, as 7x7 at the paper's 224 px).
    config.model_kwargs.update(dict(widths=(16, 32, 64, 128, 128), fc_width=256))
    config.task = "segmentation"
    config.train.update(dict(steps=800, batch_size=16, eval_every=400, checkpoint_every=200))
    config.optimizer.update(dict(name="adamw", learning_rate=3e-3, warmup_steps=40,
                                 weight_decay=1e-4))
    config.lock()
    return config
