"""Faster R-CNN VGG-16 on PASCAL VOC 2007: Ren et al. (2015), the end-to-end trained RPN +
Fast R-CNN detector with shared convolutions.

Target: 69.9 mAP on VOC 2007 test (11-point, `voc07/mAP`), trained on VOC 2007 trainval with 300
proposals per test image (Ren et al., Table 3, "RPN+VGG, shared", 07 trainval).

Commands (`voc:<root>` is the VOC2007 folder as the VOCtrainval and VOCtest tars extract together,
see jaxvision/data/voc.py; `voc:~/data/VOCdevkit/VOC2007` in the config is a placeholder: pass
yours):

    # ImageNet VGG-16 without its classifier (torchvision's IMAGENET1K_V1,
    # https://download.pytorch.org/models/vgg16-397923af.pth): the 13 convs go to the backbone,
    # fc6 / fc7 to the box head, as in the paper
    python -m jaxvision.weights.torchvision --model vgg16 --in vgg16-397923af.pth \\
        --out weights/vgg16_imagenet --no-head
    CUDA_VISIBLE_DEVICES=0 python train.py --config configs/voc/faster_rcnn_vgg16.py \\
        --config.dataset=voc:/data/VOCdevkit/VOC2007 --config.init_from=weights/vgg16_imagenet

Sized for the paper's hardware: one GPU, one image per step (global batch 1; the batch is split
over every device of the run, hence one visible device).

Schedule and model (the paper's sections 3.1.3 and 3.3): 80,000 steps of one image (about 16
epochs of the 5,011 trainval images), SGD momentum 0.9, weight decay 5e-4, lr 1e-3 for 60,000
steps then 1e-4 for 20,000, no warm-up; shorter side 600, longer at most 1,000, random
horizontal flip (the paper's flipped copies); conv1 and conv2 frozen ("fine-tune conv3_1 and
up"); 3 scales x 3 ratios = 9 anchors (128, 256, 512 px) on conv5 at stride 16, 256 anchors
per image for the RPN loss, 128 RoIs per image (25% foreground) for the detector, RoI Pool
7x7 and 4,096-wide fc6 / fc7. RPN NMS 0.7 keeping 2,000 of the best 12,000 in training and 300
of 6,000 at test, detection NMS 0.3: py-faster-rcnn's defaults (lib/fast_rcnn/config.py,
read there, not in the paper).

Where this differs from the reference:
- Objectness is one sigmoid logit per anchor (torchvision's RPN head) where Caffe's has a
  2-way softmax: 4,617 fewer parameters in the RPN head.
- Caffe's solver gives biases twice the learning rate and no weight decay; here every
  parameter has the same learning rate and decay.
- Background RoIs are those with IoU < 0.5 (torchvision's rule; py-faster-rcnn's are in
  [0.1, 0.5)); the RPN drops no proposals for being small (py-faster-rcnn: RPN_MIN_SIZE 16 px
  of the original image).
- Images are padded to a static 1,008 x 1,008 square (Caffe runs each at its own size) and
  `difficult` objects are training targets (py-faster-rcnn's pascal_voc.py leaves them out,
  `use_diff: False`; the paper does not say).
- `data.max_boxes` 64 pads the targets (a truncation would be counted in
  `num_dropped_boxes`; VOC 2007's most crowded image was not checked).
"""

from configs.recipes import vgg16_map
from jaxvision.train.config import base_config

STEPS, LR_STEPS = 80_000, (60_000,)

# py-faster-rcnn's test-time settings, shared by the VGG-16 R-CNN recipes on VOC
VOC_TEST = dict(box_nms_thresh=0.3, box_score_thresh=0.05, box_detections_per_img=100)


def voc_detection_data(config, *, dataset: str = "voc:~/data/VOCdevkit/VOC2007"):
    """Sets the VOC detection data of Ren et al. / Girshick: shorter side 600, longer at most
    1,000, padded to a 1,008 square (stride 16), random flips."""
    config.task = "detection"
    config.dataset = dataset
    config.data.update(dict(resize="min_max", min_size=600, max_size=1000, size_divisible=16,
                            pad_size=0, random_flip=True, max_boxes=64))
    return config


def voc_sgd(config, *, steps: int, boundaries: tuple[int, ...]):
    """Caffe's SGD of the VOC recipes: lr 1e-3, x0.1 at `boundaries`, momentum 0.9, weight
    decay 5e-4, no warm-up."""
    config.train.steps = steps
    config.optimizer.update(dict(
        name="sgd", learning_rate=1e-3, momentum=0.9, weight_decay=5e-4, warmup_steps=0,
        schedule="steps", boundaries=boundaries, decay_factor=0.1, grad_clip_norm=0.0))
    return config


def get_config():
    config = base_config()
    config.model = "faster_rcnn"
    config.model_kwargs.update(dict(
        backbone="vgg16", backbone_kwargs=dict(trainable_layers=3), representation_size=4096,
        rpn_pre_nms_top_n_train=12000, rpn_post_nms_top_n_train=2000,
        rpn_pre_nms_top_n_test=6000, rpn_post_nms_top_n_test=300, rpn_batch_size_per_image=256,
        box_batch_size_per_image=128, box_positive_fraction=0.25, **VOC_TEST))
    voc_detection_data(config)
    voc_sgd(config, steps=STEPS, boundaries=LR_STEPS)
    config.train.update(dict(batch_size=1, eval_batch_size=8, log_every=100, eval_every=10_000,
                             checkpoint_every=1000))
    config.init_from_map = vgg16_map("backbone", fc_to="roi_heads/box_head")
    config.lock()
    return config
