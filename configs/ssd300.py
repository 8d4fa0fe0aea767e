"""SSD300 on shapes detection: the torchvision ssd300_vgg16 architecture at width 0.25 on
300x300 inputs, with the SSD paper's augmentation (photometric distortion, zoom-out, min-IoU
crop, flips) from the data transforms.

    python train.py --config configs/ssd300.py

Result: not measured yet (issue 12's target: bbox/AP50 >= 0.90 within 20 minutes on 2 CPU
cores). Evaluation logs bbox/AP*, voc07/mAP and voc/mAP and writes the COCO files to
workdir/eval/<step>/.
"""

from configs.detection_shapes import detection_shapes
from jaxvision.train.config import base_config


def get_config():
    config = base_config()
    config.model = "ssd300"
    config.model_kwargs.update(dict(width=0.25))
    config.task = "detection"
    detection_shapes(config, recipe="ssd", size=300)
    config.train.update(dict(steps=3000, batch_size=16, eval_batch_size=32, log_every=50,
                             eval_every=1000, checkpoint_every=250))
    config.optimizer.update(dict(name="adamw", learning_rate=1e-3, warmup_steps=100,
                                 weight_decay=1e-4, grad_clip_norm=10.0))
    config.lock()
    return config
