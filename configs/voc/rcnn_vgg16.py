"""R-CNN VGG-16 ("O-Net") on PASCAL VOC 2007: Girshick et al. (2014) with selective-search
regions, a fine-tuned CNN on warped regions, per-class linear SVMs on fc7 and a box regressor on
pool5 (jaxvision.models.rcnn, which trains the three stages as one multitask step).

Target: 66.0 mAP on VOC 2007 test (11-point, `voc07/mAP`) with box regression, trained on VOC
2007 trainval (Girshick et al., TPAMI 2016 / arXiv v5, Table 3, "R-CNN O-Net BB").

Commands (`voc:<root>` as in configs/voc/faster_rcnn_vgg16.py; `voc:~/data/VOCdevkit/VOC2007` in
the config is a placeholder: pass yours):

    python -m jaxvision.weights.torchvision --model vgg16 --in vgg16-397923af.pth \\
        --out weights/vgg16_imagenet --no-head
    CUDA_VISIBLE_DEVICES=0 python train.py --config configs/voc/rcnn_vgg16.py \\
        --config.dataset=voc:/data/VOCdevkit/VOC2007 --config.init_from=weights/vgg16_imagenet

The first run computes selective search ('fast' strategy, up to 2,000 boxes per image) in 8
worker processes and caches it. The ImageNet convs, fc6 and fc7 initialise the CNN; the softmax,
SVMs and regressor start fresh.

Sized for one GPU (global batch 2 images). Fine-tuning follows the VGG-16 solver of the authors'
release (rbgirshick/rcnn, finetuning/vgg16/: lr 1e-3, x0.1 every 20,000 iterations, i.e. at
steps 20,000, 40,000, 60,000 and 80,000 of 100,000 (here about 40 epochs of the 5,011 trainval
images at 2 a step), momentum 0.9, weight decay 5e-4, 224 x 224
warps with 16 px of context, mirrored;
its window batch is 24 regions, 25% foreground at IoU >= 0.5; the paper's AlexNet batch was
128): here 2 images x 12 sampled proposals (+ their ground truth) go through the CNN a step,
24 of them in the fine-tuning loss, all in the SVM and regressor losses; images keep their size
(VOC's are at most 500 px a side) and are padded to 500 x 500. Test: detection NMS 0.3 per
class, SVM scores.

Where this differs from the reference:
- One training stage instead of three: the SVMs (hard negatives mined per batch, not from a
  cache over the data set) and the regressor learn beside the fine-tuning, on features that
  still move (see jaxvision/models/rcnn.py for the exact losses).
- Proposals are jaxvision's selective search, at most 2,000 per image.
- Evaluation runs the CNN on all 2,000 regions of an image as one batch: conv1's output alone
  is 2,000 x 224 x 224 x 64 float32 = 25.7 GB; lower `data.proposals.max_proposals` on a
  smaller device (a chunked loop over the regions is missing).
- Images whose longer side is under 500 px are scaled up to 500 (the min/max resize rule that
  keeps every other VOC image at its size).
"""

from configs.recipes import vgg16_map
from configs.voc.faster_rcnn_vgg16 import voc_sgd
from jaxvision.train.config import base_config

STEPS, LR_STEPS = 100_000, (20_000, 40_000, 60_000, 80_000)


def get_config():
    config = base_config()
    config.model = "rcnn"
    config.model_kwargs.update(dict(
        backbone="vgg16", crop_size=224, context_padding=16, fc_dim=4096, train_proposals=12,
        finetune_samples=24, finetune_fg_fraction=0.25, fg_iou_thresh=0.5, nms_thresh=0.3,
        detections_per_img=100))
    config.task = "detection"
    config.dataset = "voc:~/data/VOCdevkit/VOC2007"
    config.data.update(dict(resize="min_max", min_size=500, max_size=500, pad_size=500,
                            random_flip=True, max_boxes=64))
    config.data.proposals.update(dict(method="selective_search", max_proposals=2000,
                                      strategy="fast", processes=8))
    voc_sgd(config, steps=STEPS, boundaries=LR_STEPS)
    config.train.update(dict(batch_size=2, eval_batch_size=1, log_every=100, eval_every=20_000,
                             checkpoint_every=1000))
    config.init_from_map = vgg16_map("backbone", fc_to="")  # fc6 / fc7 at the top
    config.lock()
    return config
