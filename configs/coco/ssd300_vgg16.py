"""SSD300 VGG-16 on COCO 2017: torchvision's reference recipe (references/detection/README.md,
`--model ssd300_vgg16 --epochs 120 --lr-steps 80 110 --lr 0.002 --batch-size 4
--weight-decay 0.0005 --data-augmentation ssd` on 8 GPUs).

Target: box AP 25.1 on val2017, the COCO_V1 weights torchvision trained with that recipe
(torchvision's model docs, `SSD300_VGG16_Weights.COCO_V1`).

Commands (the `coco:<root>` layout of configs/coco/faster_rcnn_r50_fpn.py; `coco:~/data/coco2017`
in the config is a placeholder: pass yours):

    # ImageNet VGG-16 without its classifier (torchvision's IMAGENET1K_V1,
    # https://download.pytorch.org/models/vgg16-397923af.pth); init_from_map takes its 13 convs
    python -m jaxvision.weights.torchvision --model vgg16 --in vgg16-397923af.pth \\
        --out weights/vgg16_imagenet --no-head
    python train.py --config configs/coco/ssd300_vgg16.py \\
        --config.dataset=coco:/data/coco2017 --config.init_from=weights/vgg16_imagenet

Sized for torchvision's hardware: 8 GPUs x 4 images = global batch 32.

Schedule: 120 epochs of 117,266 images (torchvision's training set) at batch 32 = 3,664 steps an
epoch (rounded down), 439,680 steps; SGD momentum 0.9, weight decay 5e-4, lr 0.002 (x0.1 at
epochs 80 and 110: steps 293,120 and 403,040) after the reference's 1,000-step linear warm-up
from lr / 1000. Data: SSD augmentation (photometric distortion, zoom-out up to 4x, min-IoU
crop, horizontal flip), then a fixed 300 x 300 resize. VGG conv1 frozen (torchvision's default
4 trainable backbone stages with pretrained weights).

Where this differs from the reference:
- Backbone weights: torchvision starts from `VGG16_Weights.IMAGENET1K_FEATURES` (the original
  SSD's VGG-16, for 0-255 inputs minus the mean); every jaxvision model normalises with the
  ImageNet mean and std, so this recipe starts from the standard IMAGENET1K_V1 VGG-16 instead.
  fc6 / fc7 start from their initialisers in both.
- Classes: 81 outputs (the `coco:` folder's 80 categories + background), torchvision 91.
- Images without a usable annotation stay in the `coco:` train split (118,287 images, 117,266
  in torchvision's); crowd regions are ordinary targets of SSD's loss here, torchvision drops
  them from the targets.
- `data.max_boxes` 100 pads the targets (at most 93 instances in a COCO image, issue 19).
"""

from configs.recipes import COCO_TRAIN_IMAGES, steps_per_epoch, vgg16_map
from jaxvision.train.config import base_config

BATCH = 32
EPOCHS, LR_EPOCHS = 120, (80, 110)


def get_config():
    config = base_config()
    config.model = "ssd300"
    config.model_kwargs.update(dict(trainable_layers=4))
    config.task = "detection"
    config.dataset = "coco:~/data/coco2017"
    config.data.update(dict(resize="fixed", fixed_size=300, pad_size=0, random_flip=True,
                            photometric_distort=True, zoom_out=True, zoom_out_max=4.0,
                            min_iou_crop=True, max_boxes=100))
    epoch = steps_per_epoch(COCO_TRAIN_IMAGES, BATCH)
    config.train.update(dict(steps=EPOCHS * epoch, batch_size=BATCH, eval_batch_size=32,
                             log_every=100, eval_every=epoch, checkpoint_every=1000))
    config.optimizer.update(dict(
        name="sgd", learning_rate=0.002, momentum=0.9, weight_decay=5e-4, warmup="linear",
        warmup_steps=1000, warmup_start=1e-3, schedule="steps",
        boundaries=tuple(e * epoch for e in LR_EPOCHS), decay_factor=0.1, grad_clip_norm=0.0))
    config.init_from_map = vgg16_map()
    config.lock()
    return config
