"""EfficientNet-B0 on ImageNet: Tan & Le's recipe (ICML 2019) as its TPU reference runs it.

    python train.py --config configs/imagenet/efficientnet_b0.py --workdir runs/effnet_b0 \
        --config.dataset=imagefolder:/data/imagenet          # or imagenet2012 (TFDS)

Target: top-1 77.1 / top-5 93.3 (the paper, Table 2; torchvision's EfficientNet_B0_Weights,
ported from timm, list 77.69). Sized for a TPU pod slice: global batch 4096 in bfloat16 (the
reference's TPU code defaults to batch 2048 on 32 replicas with lr 0.016 x batch/256, i.e.
0.256 at 4096; not verified on hardware here).

The paper: RMSProp decay 0.9, momentum 0.9 (TensorFlow 1's form, epsilon 1e-3 inside the
root), lr 0.256 decayed x0.97 every 2.4 epochs, weight decay 1e-5, BatchNorm momentum 0.99,
dropout 0.2 before the classifier, stochastic depth (drop connect) 0.2 rising linearly over the
blocks, AutoAugment. From the reference code (tensorflow/tpu models/official/efficientnet):
350 epochs (109,474 steps at 4096), 5-epoch linear warm-up from 0 (1,563 steps), label
smoothing 0.1, BatchNorm epsilon 1e-3, evaluation of an exponential moving average of the
weights (decay 0.9999). The staircase decay counts global steps, so the rate right after the
warm-up is already 0.256 x 0.97^2, as in the reference.

Augmentation: random-resized crop, AutoAugment with the paper's ImageNet policy
(`data.autoaugment='imagenet'`, as torchvision's AutoAugmentPolicy.IMAGENET, black fill), flip.

Differences, by name: the reference code's AutoAugment (`autoaugment_name='v0'`) is its own
variant of the policy table with grey (128) fill; we use the paper's table as torchvision has
it (not compared op by op with the TensorFlow one); the decay period is 751 steps (2.4 epochs =
750.68 steps, the reference's float period; by the last step the staircase lags by under 50
steps); weight decay also applies to BatchNorm parameters (the reference leaves them out); the
EMA decay is a fixed 0.9999 (the reference uses min(0.9999, (1 + n) / (10 + n)) at step n);
BatchNorm statistics are taken over the global batch (jit) rather than the reference's
per-replica groups; crops are resized bilinearly (the reference resizes bicubically). Nothing
here has been run to the target.
"""

from configs.imagenet import TRAIN_IMAGES, epoch_steps, imagenet_config

BATCH, EPOCHS = 4096, 350


def get_config():
    config = imagenet_config("efficientnet_b0", epochs=EPOCHS, batch_size=BATCH,
                             eval_every_epochs=10)
    config.model_kwargs.update(dict(dropout_rate=0.2, stochastic_depth_rate=0.2,
                                    bn_momentum=0.99, bn_epsilon=1e-3))
    config.data.autoaugment = "imagenet"
    config.task_kwargs.label_smoothing = 0.1
    config.optimizer.update(dict(
        name="rmsprop", learning_rate=0.256, rms_decay=0.9, momentum=0.9, eps=1e-3,
        weight_decay=1e-5, warmup_steps=epoch_steps(5, BATCH), warmup="linear",
        warmup_start=0.0, schedule="exponential", decay_factor=0.97,
        decay_every=round(2.4 * TRAIN_IMAGES / BATCH)))
    config.ema_decay = 0.9999
    config.dtype = "bfloat16"
    config.lock()
    return config
