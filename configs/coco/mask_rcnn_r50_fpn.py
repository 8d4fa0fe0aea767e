"""Mask R-CNN ResNet-50-FPN on COCO 2017: torchvision's reference recipe
(references/detection/README.md, `--model maskrcnn_resnet50_fpn --epochs 26 --lr-steps 16 22
--aspect-ratio-group-factor 3`), the schedule, data and frozen layers of
configs/coco/faster_rcnn_r50_fpn.py plus the mask branch (RoI Align 14x14, 4 convs, 28x28
per-class masks) and the instance masks decoded from the annotations.

Target: box AP 37.9 and mask AP 34.6 on val2017, the COCO_V1 weights torchvision trained with
that recipe (torchvision's model docs, `MaskRCNN_ResNet50_FPN_Weights.COCO_V1`).

Commands (the `coco:<root>` layout and ImageNet ResNet-50 of configs/coco/faster_rcnn_r50_fpn.py;
`coco:~/data/coco2017` in the config is a placeholder: pass yours):

    python -m jaxvision.weights.torchvision --model resnet50 --in resnet50-0676ba61.pth \\
        --out weights/resnet50_imagenet --no-head
    python train.py --config configs/coco/mask_rcnn_r50_fpn.py \\
        --config.dataset=coco:/data/coco2017 --config.init_from=weights/resnet50_imagenet

Sized for 8 GPUs x 2 images = global batch 16 (8x V100 in the reference). Schedule: 26 epochs
of 117,266 images at batch 16 = 190,554 steps, lr 0.02 x0.1 at steps 117,264 and 161,238, a
1,000-step linear warm-up from 0.02 / 1000, SGD momentum 0.9, weight decay 1e-4.

Where this differs from the reference: everything listed in configs/coco/faster_rcnn_r50_fpn.py
(5 static aspect-ratio buckets, 4.8% padded pixels on an assumed COCO mix, instead of each
batch padded to its largest image; 81 outputs instead of 91; images without annotations kept),
and the instance masks travel as `max_boxes` planes of the bucket's shape, uint8 [100, 800,
1,216] (97 MB) per 3:2 image (180 MB at 1,344 x 1,344 without buckets), where torchvision keeps
one plane per instance.
"""

from configs.coco.faster_rcnn_r50_fpn import rcnn_config


def get_config():
    config = rcnn_config("mask_rcnn")
    config.task_kwargs.masks = True
    config.lock()
    return config
