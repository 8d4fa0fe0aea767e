"""YOLOv3-416 (Darknet-53) on COCO 2017: the optimiser and schedule of Darknet's yolov3.cfg
(batch 64, lr 1e-3, momentum 0.9, decay 5e-4, burn_in 1000, max_batches 500200, policy steps at
400000 and 450000 with scales .1, .1).

Target: AP 31.0, AP50 55.3 at 416 x 416 on COCO test-dev (Redmon & Farhadi 2018, Table 3;
mmdetection's reproduction gives 30.9 box AP at 416 on val2017). Evaluation here is on val2017.

Commands (the `coco:<root>` layout of configs/coco/faster_rcnn_r50_fpn.py; `coco:~/data/coco2017`
in the config is a placeholder: pass yours):

    # Darknet-53's ImageNet weights, Darknet's own file (https://pjreddie.com/media/files/
    # darknet53.conv.74), read with the model's cfg (write it with
    # jaxvision.weights.darknet.yolov3_cfg or use Darknet's cfg/yolov3.cfg)
    python -m jaxvision.weights.darknet --cfg yolov3.cfg --weights darknet53.conv.74 \
        --backbone --out weights/darknet53_imagenet
    python train.py --config configs/coco/yolov3_416.py \
        --config.dataset=coco:/data/coco2017 --config.init_from=weights/darknet53_imagenet

`init_from_map` 'backbone:backbone' puts the checkpoint into the detector's Darknet-53; the necks
and heads start from their initialisers. The model takes Darknet's input (`darknet_input`: RGB in
[0, 1], what darknet53.conv.74 was trained on) and BatchNorm epsilon 1e-6.

Evaluation letterboxes as Darknet does (`data.eval_resize='letterbox'`: aspect ratio kept,
centred on 0.5 grey, boxes mapped back through `image_origin`); `--config.data.eval_resize=fixed`
gives the squashing resize training uses. Darknet's `valid` thresholds: score 0.005, class-wise
NMS 0.45 (the model's defaults; `detector test` draws at 0.5). Darknet's COCO model
(yolov3.weights) converts with the same CLI without `--backbone`; its outputs match OpenCV's
Darknet importer (tests/weights/test_darknet.py).

Sized for a global batch of 64: 8 accelerators x 8 images, or fewer devices with
`--config.train.grad_accum_steps` (Darknet's cfg splits the 64 into subdivisions=16 chunks of 4
on one GPU). Schedule: 500,200 steps (about 273 epochs of the 117,266 images), counted in steps as
Darknet does: lr 1e-3 after a 1,000-step burn-in (lr x (step / 1000)^4), x0.1 at steps 400,000
and 450,000; SGD momentum 0.9, weight decay 5e-4. The loss is summed over each image and
averaged over the batch, Darknet's scale (its update divides the summed gradient by the batch).

Where this differs from the reference:
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
- Evaluation: the letterbox resamples with the pipeline's bilinear (half-pixel centres), not
  Darknet's `resize_image`; boxes are clipped to the input before the class-wise NMS (Darknet
  clips only when drawing), and at most 100 detections per image are kept.
"""

from jaxvision.train.config import base_config

BATCH = 64
STEPS, LR_STEPS, BURN_IN = 500_200, (400_000, 450_000), 1000


def get_config():
    config = base_config()
    config.model = "yolov3"
    config.task = "detection"
    config.dataset = "coco:~/data/coco2017"
    config.model_kwargs.update(dict(darknet_input=True, bn_epsilon=1e-6))
    config.data.update(dict(resize="fixed", eval_resize="letterbox", fixed_size=416, pad_size=0,
                            random_flip=True, photometric_distort=True, zoom_out=True,
                            zoom_out_max=2.0, min_iou_crop=True, max_boxes=100,
                            multi_scale=tuple(range(320, 609, 32)), multi_scale_every=10))
    config.train.update(dict(steps=STEPS, batch_size=BATCH, eval_batch_size=64, log_every=100,
                             eval_every=10_000, checkpoint_every=1000))
    config.init_from_map = ("backbone:backbone",)
    config.optimizer.update(dict(
        name="sgd", learning_rate=1e-3, momentum=0.9, weight_decay=5e-4, warmup="burn_in",
        warmup_steps=BURN_IN, schedule="steps", boundaries=LR_STEPS, decay_factor=0.1,
        grad_clip_norm=0.0))
    config.lock()
    return config
