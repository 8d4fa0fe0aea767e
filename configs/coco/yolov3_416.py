"""YOLOv3-416 (Darknet-53) on COCO 2017: the optimiser and schedule of Darknet's yolov3.cfg
(batch 64, lr 1e-3, momentum 0.9, decay 5e-4, burn_in 1000, max_batches 500200, policy steps at
400000 and 450000 with scales .1, .1).

Target: AP 31.0, AP50 55.3 at 416 x 416 on COCO test-dev (Redmon & Farhadi 2018, Table 3;
mmdetection's reproduction gives 30.9 box AP at 416 on val2017). Evaluation here is on val2017.

Commands (the `coco:<root>` layout of configs/coco/faster_rcnn_r50_fpn.py; `coco:~/data/coco2017`
in the config is a placeholder: pass yours):

    python train.py --config configs/coco/yolov3_416.py --config.dataset=coco:/data/coco2017

There is no `init_from` step yet: Darknet-53's ImageNet weights (darknet53.conv.74) are a
Darknet file, not a torchvision model, and `jaxvision.weights` reads no Darknet files (issue 22).
From scratch, this schedule is not expected to reach the target.

Sized for a global batch of 64: 8 accelerators x 8 images, or fewer devices with
`--config.train.grad_accum_steps` (Darknet's cfg splits the 64 into subdivisions=16 chunks of 4
on one GPU). Schedule: 500,200 steps (about 273 epochs of the 117,266 images), counted in steps as
Darknet does: lr 1e-3 after a 1,000-step burn-in (lr x (step / 1000)^4), x0.1 at steps 400,000
and 450,000; SGD momentum 0.9, weight decay 5e-4. The loss is summed over each image and
averaged over the batch, Darknet's scale (its update divides the summed gradient by the batch).

Where this differs from the reference:
- No ImageNet-pretrained Darknet-53 (above).
- Augmentation: Darknet's (jitter 0.3 crops and translations with aspect change, HSV
  saturation / exposure 1.5 and hue 0.1, flips) is not available; the library's SSD
  augmentation stands in (photometric distortion, zoom-out up to 2x, min-IoU crop, flips).
- Multi-scale training (`random=1`): `data.multi_scale` 320, 352, ..., 608 and
  `multi_scale_every` 10 follow pjreddie/darknet's train_detector (src/detector.c: every 10
  batches `(rand() % 10 + 10) * 32`, 608 for the last 200 batches), with the size of each
  10-batch period drawn from (seed, period) instead of C's rand(), so a resumed run keeps its
  sizes (Darknet's period restarts with the process). One compiled step per size (10).
  Evaluation is at 416 x 416, as the paper's table.
- Crowd regions are ordinary targets of the loss; `data.max_boxes` 100 pads the targets.
"""

from jaxvision.train.config import base_config

BATCH = 64
STEPS, LR_STEPS, BURN_IN = 500_200, (400_000, 450_000), 1000


def get_config():
    config = base_config()
    config.model = "yolov3"
    config.task = "detection"
    config.dataset = "coco:~/data/coco2017"
    config.data.update(dict(resize="fixed", fixed_size=416, pad_size=0, random_flip=True,
                            photometric_distort=True, zoom_out=True, zoom_out_max=2.0,
                            min_iou_crop=True, max_boxes=100,
                            multi_scale=tuple(range(320, 609, 32)), multi_scale_every=10))
    config.train.update(dict(steps=STEPS, batch_size=BATCH, eval_batch_size=64, log_every=100,
                             eval_every=10_000, checkpoint_every=1000))
    config.optimizer.update(dict(
        name="sgd", learning_rate=1e-3, momentum=0.9, weight_decay=5e-4, warmup="burn_in",
        warmup_steps=BURN_IN, schedule="steps", boundaries=LR_STEPS, decay_factor=0.1,
        grad_clip_norm=0.0))
    config.lock()
    return config
