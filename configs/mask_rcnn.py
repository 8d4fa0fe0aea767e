"""Mask R-CNN on shapes detection with instance masks: the Faster R-CNN recipe of
configs/faster_rcnn.py with RoI Align and the mask branch (4 convs, deconv, per-class sigmoid
28x28), evaluated with bbox and segm COCO AP.

    python train.py --config configs/mask_rcnn.py

Result: not measured yet (issue 11's target: bbox/AP50 >= 0.90 and segm/AP50 >= 0.85 within 25
minutes on 2 CPU cores).
"""

from configs.faster_rcnn import detector_config


def get_config():
    config = detector_config("mask_rcnn")
    config.model_kwargs.update(dict(mask_layers=(64,) * 4, mask_dim_reduced=64))
    config.task_kwargs.masks = True
    config.lock()
    return config
