"""FCN-8s (VGG16-BN backbone at 1/4 width) on the synthetic shapes dataset.

    python train.py --config configs/fcn8s.py

Builds the 64x64 shapes dataset on first use, trains 800 steps of batch 16 with AdamW.
Measured once (2-core CPU shared with other jobs, so slower than CI): 9m25s wall, 29 train
images/s, 1,290,268 parameters; test mIoU 0.925 (>= 0.80), boundary F-score 0.996 at 2 px /
0.979 at 1 px tolerance (`python -m jaxvision.predict --config configs/fcn8s.py
--workdir <workdir> --eval_boundary [--tolerance 1]`).
"""

from configs.fcn_shapes import fcn_config


def get_config():
    return fcn_config("fcn8s")
