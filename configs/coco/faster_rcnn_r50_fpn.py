"""Faster R-CNN ResNet-50-FPN on COCO 2017: torchvision's reference recipe
(references/detection/README.md, `--model fasterrcnn_resnet50_fpn --epochs 26 --lr-steps 16 22
--aspect-ratio-group-factor 3`, with train.py's defaults).

Target: box AP 37.0 on val2017, the COCO_V1 weights torchvision trained with that recipe
(torchvision's model docs, `FasterRCNN_ResNet50_FPN_Weights.COCO_V1`).

Commands (COCO 2017 laid out as a `coco:<root>` folder, see jaxvision/data/coco.py: link
`instances_train2017.json` / `instances_val2017.json` as `<root>/annotations/instances_train.json`
/ `instances_val.json` and the `train2017` / `val2017` folders as `<root>/images/train` / `val`;
the root in the config, `coco:~/data/coco2017`, is a placeholder: pass yours):

    # ImageNet ResNet-50 without its classifier (torchvision's IMAGENET1K_V1, the backbone of
    # the reference: https://download.pytorch.org/models/resnet50-0676ba61.pth)
    python -m jaxvision.weights.torchvision --model resnet50 --in resnet50-0676ba61.pth \\
        --out weights/resnet50_imagenet --no-head
    python train.py --config configs/coco/faster_rcnn_r50_fpn.py \\
        --config.dataset=coco:/data/coco2017 --config.init_from=weights/resnet50_imagenet

`init_from_map` ':backbone/body' puts the checkpoint into the detector's ResNet body; the FPN,
RPN and box head start from their initialisers.

Sized for torchvision's hardware: 8 GPUs x 2 images = global batch 16 (8x V100 in the
reference); the batch is split over every device of the run (`parallel='jit'`).

Schedule: 26 epochs of 117,266 images (train2017 images with annotations, torchvision's training
set) at batch 16 = 7,329 steps an epoch (rounded down), 190,554 steps; SGD momentum 0.9, weight
decay 1e-4, lr 0.02 (x0.1 at epochs 16 and 22: steps 117,264 and 161,238) after a 1,000-step
linear warm-up from 0.02 / 1000; evaluation once an epoch, as the reference. Images: shorter
side 800, longer at most 1,333, random horizontal flip; BatchNorm frozen, conv1 and layer1
frozen (3 trainable stages): their parameters get no update, weight decay included.

Where this differs from the reference:
- Aspect-ratio grouping: torchvision (`--aspect-ratio-group-factor 3`) groups images into 8
  width / height bins (edges 2 ** linspace(-1, 1, 7)) and pads each batch to its own largest
  image, so its shapes vary from batch to batch; here `data.aspect_buckets` (0.75, 1.0, 1.34,
  1.5) makes 5 static shapes (H x W: 1,344 x 800 for width / height below 0.75, 1,088 x 800,
  800 x 1,088 (4:3, square), 800 x 1,216 (3:2), 800 x 1,344), one compiled step each, every
  global batch one bucket (jaxvision.data.buckets). Padded pixels on `benchmarks/padding.py`'s
  assumed COCO mix (not COCO's measured histogram): 4.8% of the input instead of 50.6% with the
  single 1,344 square (17.0% with portrait / landscape only). Evaluation is bucketed the same
  way. The image sizes are read once per run from the stored examples (no image is decoded).
- Classes: the `coco:` folder numbers COCO's 80 categories 1..80 (81 outputs with background)
  where torchvision indexes by category id (91 outputs, 10 ids never used).
- Images without a usable annotation: torchvision's training set leaves them out (118,287 ->
  117,266: none, or only boxes with a side of at most 1 px); the `coco:` train split keeps
  them, so the 7,329 steps of an "epoch" cover 99% of one pass. The step counts are
  torchvision's.
- `data.max_boxes` 100 pads the targets; issue 19 found at most 93 instances in a COCO image,
  and a truncation would be counted (`num_dropped_boxes`).
"""

from configs.recipes import COCO_TRAIN_IMAGES, steps_per_epoch
from jaxvision.train.config import base_config

BATCH = 16
EPOCHS, LR_EPOCHS = 26, (16, 22)
ASPECT_BUCKETS = (0.75, 1.0, 1.34, 1.5)  # width / height: portrait 3:4, 4:3, 3:2 (docstring)


def rcnn_config(model: str):
    """The torchvision R-CNN recipe shared by Faster and Mask R-CNN."""
    config = base_config()
    config.model = model
    config.model_kwargs.update(dict(
        backbone="resnet50_fpn", backbone_kwargs=dict(trainable_layers=3, frozen_bn=True)))
    config.task = "detection"
    config.dataset = "coco:~/data/coco2017"
    config.data.update(dict(resize="min_max", min_size=800, max_size=1333, size_divisible=32,
                            pad_size=0, random_flip=True, max_boxes=100,
                            aspect_buckets=ASPECT_BUCKETS))
    epoch = steps_per_epoch(COCO_TRAIN_IMAGES, BATCH)
    config.train.update(dict(steps=EPOCHS * epoch, batch_size=BATCH, eval_batch_size=16,
                             log_every=100, eval_every=epoch, checkpoint_every=1000))
    config.optimizer.update(dict(
        name="sgd", learning_rate=0.02, momentum=0.9, weight_decay=1e-4, warmup="linear",
        warmup_steps=1000, warmup_start=1e-3, schedule="steps",
        boundaries=tuple(e * epoch for e in LR_EPOCHS), decay_factor=0.1, grad_clip_norm=0.0))
    config.init_from_map = (":backbone/body",)
    return config


def get_config():
    config = rcnn_config("faster_rcnn")
    config.lock()
    return config
