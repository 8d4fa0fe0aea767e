"""SSD300 VGG-16 on PASCAL VOC 2007+2012: Liu et al. (2016), the authors' Caffe recipe
(weiliu89/caffe, examples/ssd/ssd_pascal.py).

Target: 77.2 mAP on VOC 2007 test (11-point, `voc07/mAP`) for SSD300* (trained with the
"expansion" zoom-out augmentation) on VOC 2007 trainval + VOC 2012 trainval (Liu et al., ECCV
2016 / arXiv v5: the SSD300* row of the image-expansion results; 74.3 without it).

Data: one VOC folder holding both years' trainval and VOC 2007 test, merged with links (the
`voc:` builder reads one year folder; `voc:~/data/VOCdevkit/VOC0712` in the config is a
placeholder: pass yours). VOC 2012's file names (2008_000005) never collide with 2007's (000005):

    mkdir VOC0712 && cp -rs /data/VOCdevkit/VOC2007/. VOC0712/
    cp -rs /data/VOCdevkit/VOC2012/Annotations /data/VOCdevkit/VOC2012/JPEGImages VOC0712/
    cat /data/VOCdevkit/VOC2007/ImageSets/Main/trainval.txt \\
        /data/VOCdevkit/VOC2012/ImageSets/Main/trainval.txt \\
        > VOC0712/ImageSets/Main/trainval0712.txt

Commands:

    # ImageNet VGG-16 without its classifier (torchvision's IMAGENET1K_V1,
    # https://download.pytorch.org/models/vgg16-397923af.pth); init_from_map takes its 13 convs
    python -m jaxvision.weights.torchvision --model vgg16 --in vgg16-397923af.pth \\
        --out weights/vgg16_imagenet --no-head
    python train.py --config configs/voc/ssd300_vgg16.py \\
        --config.dataset=voc:$PWD/VOC0712 --config.init_from=weights/vgg16_imagenet

Sized for a global batch of 32 (ssd_pascal.py: 32 images on one to four GPUs); the batch is split
over every device of the run. Schedule (ssd_pascal.py's solver): 120,000 steps (about 232 epochs
of the 16,551 images), SGD momentum 0.9, weight decay 5e-4, lr 1e-3, x0.1 at steps 80,000 and
100,000, no warm-up. Data: photometric distortion, zoom-out up to 4x, min-IoU crop, flips, then
a fixed 300 x 300 resize; `difficult` objects are training targets (`train_on_diff_gt`). Default
boxes at the VOC scales (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05), i.e. ssd_pascal.py's min sizes
30, 60, 111, 162, 213, 264 and max sizes 60, 111, 162, 213, 264, 315 at 300 px; 3:1 hard
negatives; test: score > 0.01, NMS 0.45 over the best 400 per class, 200 detections.

Where this differs from the reference:
- Backbone: the paper starts from a VGG-16 whose fc6 / fc7 were subsampled into the dilated
  conv fc6 (1,024) and fc7 (VGG_ILSVRC_16_layers_fc_reduced); here the 13 ImageNet convs are
  imported and fc6 / fc7 start from their initialisers (as torchvision's SSD). Inputs are
  normalised with the ImageNet mean and std (Caffe: 0-255 minus the mean).
- The augmentation is torchvision's port of SSD's (RandomPhotometricDistort, RandomZoomOut,
  RandomIoUCrop), not Caffe's batch samplers, and the resize is always bilinear (Caffe picks
  one of five interpolations at random).
- Caffe's solver gives biases twice the learning rate and no weight decay; here every
  parameter has the same. `data.max_boxes` 64 pads the targets.
"""

from configs.recipes import vgg16_map
from configs.voc.faster_rcnn_vgg16 import voc_sgd
from jaxvision.train.config import base_config

BATCH = 32
STEPS, LR_STEPS = 120_000, (80_000, 100_000)
# ssd_pascal.py: min_ratio 20, max_ratio 90 over the 5 maps after conv4_3 (step 17), conv4_3 at 10
VOC_SCALES = (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05)


def get_config():
    config = base_config()
    config.model = "ssd300"
    config.model_kwargs.update(dict(scales=VOC_SCALES))
    config.task = "detection"
    config.dataset = "voc:~/data/VOCdevkit/VOC0712"
    config.data.builders.voc.update(dict(train_split="trainval0712", test_split="test"))
    config.data.update(dict(resize="fixed", fixed_size=300, pad_size=0, random_flip=True,
                            photometric_distort=True, zoom_out=True, zoom_out_max=4.0,
                            min_iou_crop=True, max_boxes=64))
    voc_sgd(config, steps=STEPS, boundaries=LR_STEPS)
    config.train.update(dict(batch_size=BATCH, eval_batch_size=32, log_every=100,
                             eval_every=10_000, checkpoint_every=1000))
    config.init_from_map = vgg16_map()
    config.lock()
    return config
