"""R-CNN on shapes detection: selective-search regions (computed once per image, cached), each
warped to a 48x48 crop with 8 pixels of context and run through a narrow VGG-16 (pool5 ->
fc6 -> fc7, 256 wide); the CNN fine-tuned as a 4-way softmax on 128 windows per batch (8
images x (12 sampled proposals, 25% foreground, + the ground-truth boxes)), per-class linear
SVMs on fc7 with per-batch hard negative mining and a class-specific box regressor on pool5
in the same step (see jaxvision.models.rcnn); at test time the CNN runs once per proposal
(up to 256 per image), the lecture's slow baseline.

    python train.py --config configs/rcnn.py

Result (measured on the 2-core CPU, load average 1-4 from other work, 32 images/s): after 1,000
steps test bbox/AP50 1.000, bbox/AP 0.897, bbox/AP75 0.997, voc07/mAP 1.000 in 6 min 56 s
wall, all stages included: dataset generation, selective search over the 2,256 images (1 min
49 s), the joint fine-tuning / SVM / regressor training and the test evaluation with the CNN
run on every one of the 256 padded proposals per image (issue 11's target: bbox/AP50 >= 0.75
within 30 minutes).
"""

from configs.detection_shapes import detection_shapes
from jaxvision.train.config import base_config


def get_config():
    config = base_config()
    config.model = "rcnn"
    config.model_kwargs.update(dict(
        backbone="vgg16", backbone_widths=(16, 32, 64, 128, 128), crop_size=48,
        context_padding=8, fc_dim=256, train_proposals=12, finetune_samples=128,
        detections_per_img=20))
    config.task = "detection"
    detection_shapes(config, recipe="rcnn")
    config.data.proposals.update(dict(method="selective_search", max_proposals=256))
    config.train.update(dict(steps=1000, batch_size=8, eval_batch_size=32, log_every=50,
                             eval_every=1000, checkpoint_every=250))
    config.optimizer.update(dict(name="adamw", learning_rate=1e-3, warmup_steps=100,
                                 weight_decay=1e-4, grad_clip_norm=10.0))
    config.lock()
    return config
