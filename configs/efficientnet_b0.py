"""EfficientNet-B0 on synthetic shapes classification (one shape per image).

    python train.py --config configs/efficientnet_b0.py

Same shapes settings as configs/resnet18.py (configs/classification.py): 900 steps of batch 32
from scratch, AdamW 2e-3; prints one JSON line with test top1/top5/loss.
MEASURED (quiet 2-core CPU): 229 s wall including dataset generation, 245 train images/s,
4,011,391 parameters; test top-1 0.621 / 0.848 / 0.859 at steps 300 / 600 / 900 (no target set
for B0; ResNet-18 reaches 0.980 on the same data).

The ImageNet recipe (224px, SGD momentum 0.9, lr 0.1 x batch/256, cosine, label smoothing 0.1;
the paper's RMSProp/AutoAugment recipe is not reproduced) is one switch away:

    python train.py --config configs/efficientnet_b0.py:imagenet2012

which needs `pip install -e '.[tf]'` and a prepared TFDS imagenet2012.
"""

from configs.classification import classification_config


def get_config(variant: str = ""):
    return classification_config("efficientnet_b0", variant, steps=900, learning_rate=2e-3)
