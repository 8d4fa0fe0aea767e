"""SSD300 on shapes detection: the torchvision ssd300_vgg16 architecture (conv4_3 L2Norm,
dilated fc6, extra layers, default boxes on six maps) at width 0.125 on 268x268 inputs, the
smallest size its last 3x3 valid convs accept (34/17/9/5/3/1 maps, 7,034 default boxes; 300
gives the paper's 38/19/10/5/3/1 and 8,732), with the SSD paper's augmentation (photometric
distortion, zoom-out, min-IoU crop, flips) from the data transforms.

    python train.py --config configs/ssd300.py

Result (measured on the 2-core CPU, load average about 2, 29 images/s): after 1,600 steps test
bbox/AP50 1.000, bbox/AP 0.849, bbox/AP75 1.000, voc07/mAP 1.000 in 15 min 5 s wall (at step
800, 8 minutes in: AP50 1.000, AP 0.797); issue 12's target: bbox/AP50 >= 0.90 within 20
minutes. At width 0.25 and 300 px it trains at 9 images/s, too slow for that budget here.
Evaluation logs bbox/AP*, voc07/mAP and voc/mAP and writes the COCO files to
workdir/eval/<step>/.
"""

from configs.detection_shapes import detection_shapes
from jaxvision.train.config import base_config


def get_config():
    config = base_config()
    config.model = "ssd300"
    config.model_kwargs.update(dict(width=0.125))
    config.task = "detection"
    detection_shapes(config, recipe="ssd", size=268)
    config.train.update(dict(steps=1600, batch_size=16, eval_batch_size=32, log_every=50,
                             eval_every=800, checkpoint_every=250))
    config.optimizer.update(dict(name="adamw", learning_rate=1e-3, warmup_steps=100,
                                 weight_decay=1e-4, grad_clip_norm=10.0))
    config.lock()
    return config
