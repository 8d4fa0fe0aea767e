"""ResNet-50 on ImageNet: torchvision's V1 recipe (default) or the flax example's (`:flax`).

    python train.py --config configs/imagenet/resnet50.py --workdir runs/resnet50 \
        --config.dataset=imagefolder:/data/imagenet          # or imagenet2012 (TFDS)

Target: top-1 76.13 / top-5 92.86 on the 50,000 validation images (torchvision's
ResNet50_Weights.IMAGENET1K_V1, its docs), from torchvision references/classification: 90
epochs, global batch 256 (8 V100 GPUs x 32), SGD momentum 0.9, lr 0.1, x0.1 at epochs 30 and
60 (steps 150,136 and 300,273 of 450,410), weight decay 1e-4, no warm-up, no label smoothing,
float32, 224 random-resized crop + flip, eval resize 256 / centre crop 224.

    python train.py --config configs/imagenet/resnet50.py:flax ...

The flax example (examples/imagenet, configs/tpu.py): 100 epochs of global batch 1024
(1,251 steps per epoch, 125,100 steps; a TPU v3-8, 128 per core), bfloat16, SGD Nesterov
momentum 0.9, lr 0.1 x 1024/256 = 0.4, linear warm-up from 0 over 5 epochs (6,255 steps),
cosine to 0. Its README reports top-1 76.37 on a v3-8 (76.54 on a v3-32).

Differences from both: weight decay applies to every parameter (torchvision's too; the flax
example decays only kernels, ndim > 1) and steps count images, not per-epoch batches (see
configs/imagenet/__init__.py). Evaluated every epoch, as both references do. Nothing here
has been run to the target: ImageNet and accelerators are not on the dev machine.
"""

from configs.imagenet import TRAIN_IMAGES, imagenet_config, torchvision_sgd


def get_config(variant: str = ""):
    if variant == "flax":
        batch, epochs = 1024, 100
        per_epoch = TRAIN_IMAGES // batch  # the flax example's steps_per_epoch
        config = imagenet_config("resnet50", epochs=epochs, batch_size=batch)
        config.train.update(dict(steps=epochs * per_epoch, eval_every=per_epoch,
                                 checkpoint_every=per_epoch))
        config.optimizer.update(dict(name="sgd", learning_rate=0.1 * batch / 256, momentum=0.9,
                                     nesterov=True, weight_decay=1e-4, warmup_steps=5 * per_epoch,
                                     warmup="linear", warmup_start=0.0, schedule="cosine"))
        config.dtype = "bfloat16"
    elif variant == "":
        config = imagenet_config("resnet50", epochs=90, batch_size=256)
        torchvision_sgd(config, lr=0.1, epochs=90, batch_size=256)
    else:
        raise ValueError(f"configs/imagenet/resnet50.py variant: expected '' (torchvision) or "
                         f"'flax', got {variant!r}")
    config.lock()
    return config
