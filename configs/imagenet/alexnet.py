"""AlexNet (torchvision's single-tower variant) on ImageNet: torchvision's recipe.

    python train.py --config configs/imagenet/alexnet.py --workdir runs/alexnet \
        --config.dataset=imagefolder:/data/imagenet          # or imagenet2012 (TFDS)

Target: top-1 56.52 / top-5 79.07 (torchvision's AlexNet_Weights.IMAGENET1K_V1, its docs).
torchvision's README trains AlexNet and VGG with its defaults but lr 0.01: 90 epochs, global
batch 256 (8 GPUs x 32), SGD momentum 0.9, x0.1 at epochs 30 and 60 (steps 150,136 and
300,273 of 450,410), weight decay 1e-4, no warm-up, float32, 224 random-resized crop + flip,
eval resize 256 / centre crop 224; dropout 0.5 before fc6 and fc7. Krizhevsky et al.'s own
recipe (batch 128, lr 0.01 divided by 10 on plateaus, weight decay 5e-4, PCA colour noise,
two GPUs) is not this one. That the published weights came from exactly this command is not
stated (not verified). Steps count images (configs/imagenet/__init__.py). Nothing here has been
run to the target.
"""

from configs.imagenet import imagenet_config, torchvision_sgd


def get_config():
    config = imagenet_config("alexnet", epochs=90, batch_size=256)
    torchvision_sgd(config, lr=0.01, epochs=90, batch_size=256)
    config.lock()
    return config
