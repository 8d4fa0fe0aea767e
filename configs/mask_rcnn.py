"""Mask R-CNN on shapes detection with instance masks: the Faster R-CNN recipe of
configs/faster_rcnn.py with RoI Align and the mask branch (4 convs, deconv, per-class sigmoid
28x28), evaluated with bbox and segm COCO AP.

    python train.py --config configs/mask_rcnn.py

Result (measured, 2-core CPU with nothing else running, 13 images/s): after 1,200 steps test
bbox/AP50 1.000, bbox/AP 0.941, segm/AP50 1.000, segm/AP 0.896 in 12 min 20 s wall, dataset
generation included (issue 11's target: bbox/AP50 >= 0.90, segm/AP50 >= 0.85 within 25 min).
"""

from configs.faster_rcnn import detector_config


def get_config():
    config = detector_config("mask_rcnn")
    config.model_kwargs.update(dict(mask_layers=(64,) * 4, mask_dim_reduced=64))
    config.task_kwargs.masks = True
    config.lock()
    return config
