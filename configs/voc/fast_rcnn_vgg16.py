"""Fast R-CNN VGG-16 on PASCAL VOC 2007 with selective-search proposals: Girshick (2015).

Target: 66.9 mAP on VOC 2007 test (11-point, `voc07/mAP`), trained on VOC 2007 trainval with
difficult objects (Girshick 2015, Table 1, VGG16 "L", FRCN, 07).

Commands (`voc:<root>` as in configs/voc/faster_rcnn_vgg16.py; `voc:~/data/VOCdevkit/VOC2007` in
the config is a placeholder: pass yours):

    python -m jaxvision.weights.torchvision --model vgg16 --in vgg16-397923af.pth \\
        --out weights/vgg16_imagenet --no-head
    CUDA_VISIBLE_DEVICES=0 python train.py --config configs/voc/fast_rcnn_vgg16.py \\
        --config.dataset=voc:/data/VOCdevkit/VOC2007 --config.init_from=weights/vgg16_imagenet

The first run computes selective search ('fast' strategy, up to 2,000 boxes per image) for the
5,011 + 4,952 images in `data.proposals.processes` = 8 worker processes and caches them under
`<data_dir>/jaxvision_proposals/`. The VGG-16 convs go to the backbone, fc6 / fc7 to the box
head.

Sized for the paper's hardware: one GPU, 2 images per step (global batch 2; the batch is split
over every device of the run, hence one visible device).

Schedule and model (the paper's sections 2.3 and 4.5): 40,000 steps of 2 images (about 16
epochs of the 5,011 trainval images), SGD momentum 0.9, weight decay 5e-4, lr 1e-3 for 30,000
steps then 1e-4 for 10,000, no warm-up; shorter side 600, longer at most 1,000, random
horizontal flip; 64 RoIs per image (25% foreground, IoU >= 0.5), RoI Pool 7x7, 4,096-wide fc6
/ fc7; conv1 and conv2 frozen ("fine-tune conv3_1 and up"); detection NMS 0.3.

Where this differs from the reference:
- Proposals are jaxvision's selective search (`jaxvision.ops.proposals`, 'fast' strategy),
  not the MATLAB boxes the paper used, and at most 2,000 per image (static shapes).
- Caffe's solver gives biases twice the learning rate and no weight decay; here every
  parameter has the same.
- Background RoIs are those with IoU < 0.5; the paper's are in [0.1, 0.5).
- Images are padded to a static 1,008 x 1,008 square; `data.max_boxes` 64 pads the targets.
"""

from configs.recipes import vgg16_map
from configs.voc.faster_rcnn_vgg16 import VOC_TEST, voc_detection_data, voc_sgd
from jaxvision.train.config import base_config

STEPS, LR_STEPS = 40_000, (30_000,)


def get_config():
    config = base_config()
    config.model = "fast_rcnn"
    config.model_kwargs.update(dict(
        backbone="vgg16", backbone_kwargs=dict(trainable_layers=3), representation_size=4096,
        box_batch_size_per_image=64, box_positive_fraction=0.25, **VOC_TEST))
    voc_detection_data(config)
    config.data.proposals.update(dict(method="selective_search", max_proposals=2000,
                                      strategy="fast", processes=8))
    voc_sgd(config, steps=STEPS, boundaries=LR_STEPS)
    config.train.update(dict(batch_size=2, eval_batch_size=8, log_every=100, eval_every=10_000,
                             checkpoint_every=1000))
    config.init_from_map = vgg16_map("backbone", fc_to="roi_heads/box_head")
    config.lock()
    return config
