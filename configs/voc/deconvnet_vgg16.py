"""DeconvNet VGG-16 on PASCAL VOC 2012: Noh, Hong & Han (ICCV 2015), the authors' Caffe
training (HyeonwooNoh/DeconvNet, training/001_stage_1/ and 002_stage_2/: solver.prototxt,
stage_*_train.prototxt, start_train.sh).

Target: 69.6 mean IU on VOC 2012 test for DeconvNet alone, 72.5 for EDeconvNet + CRF (the
paper's VOC 2012 test table; 72.5 also in its abstract; the test server is not reproducible
here). The paper trains on VOC 2012 with SBD's extra annotations (as we recall its section
6.1; its text was not available here to re-read); we train on SBD train (8,498 images) and
validate on seg11valid, the 736 VOC 2011 val images not in SBD train (the same images are in
VOC 2012's val and its folder), because SBD train overlaps VOC 2012 val. The exact training
image list of the paper (its setup.sh download) was not checked.

Commands (paths are placeholders; seg11valid.txt is fcn.berkeleyvision.org's
data/pascal/seg11valid.txt, see configs/voc/fcn8s_vgg16.py):

    # ImageNet VGG-16, classifier included (torchvision's IMAGENET1K_V1,
    # https://download.pytorch.org/models/vgg16-397923af.pth): the 13 convs go to the encoder,
    # fc6 / fc7 become its 7x7 and 1x1 convolutions (the reference's VGG_ILSVRC_16_layers_conv)
    python -m jaxvision.weights.torchvision --model vgg16 --in vgg16-397923af.pth \\
        --out weights/vgg16_imagenet
    cp seg11valid.txt /data/VOCdevkit/VOC2012/ImageSets/Segmentation/
    CUDA_VISIBLE_DEVICES=0 python train.py --config configs/voc/deconvnet_vgg16.py \\
        --config.dataset=sbd:/data/benchmark_RELEASE \\
        --config.data.builders.sbd.voc_root=/data/VOCdevkit/VOC2012 \\
        --config.init_from=weights/vgg16_imagenet

Sized for the reference's one GPU: global batch 64 as 8 micro-batches of 8 (Caffe's batch_size
8 with iter_size 8; BatchNorm statistics over each 8).

Schedule (the first stage's solver.prototxt): 20,000 steps of 64 images (about 151 epochs of
the 8,498 SBD train images), SGD momentum 0.9, weight decay 5e-4, lr 0.01, x0.1 every 9,000
steps (at 9,000 and 18,000), no warm-up; the paper states the same lr, momentum and weight
decay (from memory, not re-read). Inputs 224 x 224 with random
flips; 255 (void) ignored; BatchNorm after every conv and deconv, no dropout.

How the two-stage training maps here: the reference's first stage trains on windows around
one ground-truth object (250 x 250, random 224 crops), the second (40,000 steps from the first
stage's weights, lr 0.01 x0.1 every 10,000) on windows of object proposals, and inference
aggregates the instance-wise maps of about 50 proposals per image. None of that is
implemented: this recipe is the first stage's schedule on whole images resized to 224 x 224
(no crop), evaluated on whole images at 224 (predictions resized back to the image). The
second stage can be run as a second command with `--config.init_from` on the first run's
weights and `--config.train.steps=40000 --config.optimizer.boundaries='(10000,20000,30000)'`
(not tried). Expect well under 69.6 from whole-image training and inference.

Other differences: Caffe's solver gives biases twice the learning rate and no weight decay
(here all parameters the same); torchvision's VGG-16 (RGB, mean/std) instead of Caffe's (BGR,
mean subtracted). None of this has been run to the target.
"""

from configs.recipes import vgg16_map
from jaxvision.train.config import base_config

BATCH, MICRO_BATCHES = 64, 8
STEPS, LR_STEPS = 20_000, (9_000, 18_000)
SIZE = 224


def get_config():
    config = base_config()
    config.model = "deconvnet"
    config.task = "segmentation"
    config.dataset = "sbd:~/data/benchmark_RELEASE"
    config.data.builders.sbd.update(dict(train_split="train", test_split="seg11valid",
                                         voc_root="~/data/VOCdevkit/VOC2012"))
    config.data.update(dict(resize="fixed", fixed_size=SIZE, pad_size=0, random_flip=True))
    config.optimizer.update(dict(
        name="sgd", learning_rate=0.01, momentum=0.9, weight_decay=5e-4, warmup_steps=0,
        schedule="steps", boundaries=LR_STEPS, decay_factor=0.1, grad_clip_norm=0.0))
    config.train.update(dict(steps=STEPS, batch_size=BATCH, grad_accum_steps=MICRO_BATCHES,
                             eval_batch_size=64, log_every=20, eval_every=1000,
                             checkpoint_every=500))
    config.init_from_map = vgg16_map("backbone", fc_to="")
    config.lock()
    return config
