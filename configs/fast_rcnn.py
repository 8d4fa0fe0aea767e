"""Fast R-CNN on shapes detection: the RoI Pool 7x7 head of configs/faster_rcnn.py (narrow
VGG-16 conv5 at stride 16) on selective-search proposals computed once per image before
training (Girshick 2015: proposals are an input; here up to 256 per image, cached under
`<data_dir>/jaxvision_proposals/`, computed in 2 worker processes with a progress bar).

    python train.py --config configs/fast_rcnn.py

Result: not measured yet (issue 11's target: bbox/AP50 >= 0.85 within 20 minutes on 2 CPU
cores, proposals included).
"""

from configs.faster_rcnn import detector_config


def get_config():
    config = detector_config("fast_rcnn", rpn=False)
    config.data.proposals.update(dict(method="selective_search", max_proposals=256))
    config.lock()
    return config
