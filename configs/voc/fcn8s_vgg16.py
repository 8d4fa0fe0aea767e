"""FCN-8s VGG-16 on PASCAL VOC: Long, Shelhamer & Darrell (CVPR 2015 / PAMI 2016), the
all-at-once FCN-8s of the authors' repository (shelhamer/fcn.berkeleyvision.org,
voc-fcn8s-atonce/: net.py, solver.prototxt, solve.py).

Target: 65.4 mean IU on seg11valid, the 736 VOC 2011 segmentation val images not in SBD train
(the repository's README for voc-fcn8s-atonce; 65.5 for the staged voc-fcn8s), and 62.7 on
VOC 2011 test (the CVPR paper's Table 3, FCN-8s, staged training; the test server is not
reproducible here). Trained on SBD train (8,498 images, Hariharan et al. 2011).

Data: SBD's benchmark.tgz (`sbd:<root>`, the benchmark_RELEASE folder or its dataset/; see
jaxvision/data/sbd.py) and the VOC 2011 year folder with the repository's
data/pascal/seg11valid.txt put in its ImageSets/Segmentation/ (`data.builders.sbd.voc_root`);
the paths in the config are placeholders: pass yours.

Commands:

    # ImageNet VGG-16, classifier included (torchvision's IMAGENET1K_V1,
    # https://download.pytorch.org/models/vgg16-397923af.pth); init_from_map places its 13
    # convs in the backbone and fc6 / fc7 as the 7x7 and 1x1 convolutions (fc8 unused)
    python -m jaxvision.weights.torchvision --model vgg16 --in vgg16-397923af.pth \\
        --out weights/vgg16_imagenet
    cp fcn.berkeleyvision.org/data/pascal/seg11valid.txt \\
        /data/VOCdevkit/VOC2011/ImageSets/Segmentation/
    CUDA_VISIBLE_DEVICES=0 python train.py --config configs/voc/fcn8s_vgg16.py \\
        --config.dataset=sbd:/data/benchmark_RELEASE \\
        --config.data.builders.sbd.voc_root=/data/VOCdevkit/VOC2011 \\
        --config.init_from=weights/vgg16_imagenet

Sized for the reference's hardware: one GPU, one image per step (global batch 1; the batch is
split over every device of the run, hence one visible device).

Schedule (solver.prototxt): 300,000 steps of one image (about 35 epochs of the 8,498 SBD train
images), SGD momentum 0.99, constant learning rate, no warm-up; evaluation every 4,000 steps
(solve.py). Caffe's lr 1e-10 and weight decay 5e-4 act on the loss summed over pixels
(SoftmaxWithLoss, normalize: false); our loss is the mean over counted pixels, so the same
updates take lr 1e-10 x N and weight decay 5e-4 / N, with N = 187,500 pixels (a 500 x 375 VOC
image, void pixels not subtracted): lr 1.875e-05, weight decay 2.667e-09. Images at their own
size (up to 500 px a side), no flip, no other augmentation, 255 (void) ignored.

Where this differs from the reference:
- Padding: Caffe pads conv1_1 by 100 and crops the upsampled scores back; here every conv is
  'SAME' and the image is padded to 512 x 512 (bottom/right, void labels); see
  jaxvision/models/fcn.py. An image whose longer side is under 500 px is scaled up to 500
  (`resize='min_max'` with min and max 500), Caffe keeps it as it is.
- The three upsampling layers are learnable here (Caffe: bilinear, lr_mult 0), and the fixed
  scaling of pool4 by 0.01 and pool3 by 1e-4 before their score layers (Caffe's Scale layers,
  768 fixed parameters) is left out: 134,489,759 parameters instead of Caffe's 134,490,527.
- Caffe's solver gives biases twice the learning rate and no weight decay; here every
  parameter has the same. The ImageNet VGG-16 is torchvision's (RGB, mean/std normalised), not
  Caffe's VGG_ILSVRC_16_layers (BGR, mean subtracted). Caffe draws images at random with
  replacement (voc_layers.py); here each epoch is a shuffled pass.
- N is an average: Caffe's effective step grows with each image's counted pixels, ours does not.
None of this has been run to the target.
"""

from configs.recipes import vgg16_map
from jaxvision.train.config import base_config

STEPS = 300_000
CAFFE_LR, CAFFE_DECAY = 1e-10, 5e-4  # solver.prototxt, on the pixel-summed loss
PIXELS = 500 * 375  # N: pixels of a typical VOC image, the per-pixel-mean equivalent's factor


def get_config():
    config = base_config()
    config.model = "fcn8s"
    config.task = "segmentation"
    config.dataset = "sbd:~/data/benchmark_RELEASE"
    config.data.builders.sbd.update(dict(train_split="train", test_split="seg11valid",
                                         voc_root="~/data/VOCdevkit/VOC2011"))
    config.data.update(dict(resize="min_max", min_size=500, max_size=500, size_divisible=32,
                            pad_size=0, random_flip=False))
    config.optimizer.update(dict(
        name="sgd", learning_rate=CAFFE_LR * PIXELS, momentum=0.99,
        weight_decay=CAFFE_DECAY / PIXELS, warmup_steps=0, schedule="constant",
        grad_clip_norm=0.0))
    config.train.update(dict(steps=STEPS, batch_size=1, eval_batch_size=8, log_every=20,
                             eval_every=4000, checkpoint_every=4000))
    config.init_from_map = vgg16_map("backbone", fc_to="")
    config.lock()
    return config
