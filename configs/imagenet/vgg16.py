"""VGG-16 on ImageNet: torchvision references/classification's recipe.

    python train.py --config configs/imagenet/vgg16.py --workdir runs/vgg16 \
        --config.dataset=imagefolder:/data/imagenet          # or imagenet2012 (TFDS)

Target: top-1 71.59 / top-5 90.38 (torchvision's VGG16_Weights.IMAGENET1K_V1, its docs).
torchvision's README trains VGG and AlexNet with its defaults but lr 0.01 (no BatchNorm, so
0.1 is too high): 90 epochs, global batch 256 (8 GPUs x 32), SGD momentum 0.9, x0.1 at epochs
30 and 60 (steps 150,136 and 300,273 of 450,410), weight decay 1e-4, no warm-up, float32,
224 random-resized crop + flip, eval resize 256 / centre crop 224; dropout 0.5 in fc6 and fc7
(the model's default). That the published weights came from exactly this command is not
stated there (not verified). Steps count images (configs/imagenet/__init__.py). Nothing here
has been run to the target.
"""

from configs.imagenet import imagenet_config, torchvision_sgd


def get_config():
    config = imagenet_config("vgg16", epochs=90, batch_size=256)
    torchvision_sgd(config, lr=0.01, epochs=90, batch_size=256)
    config.lock()
    return config
