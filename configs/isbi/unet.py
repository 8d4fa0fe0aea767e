"""U-Net on the ISBI 2012 EM segmentation stacks: Ronneberger, Fischer and Brox (2015).

    python train.py --config configs/isbi/unet.py --workdir runs/unet_isbi \\
        --config.dataset=isbi:/data/isbi2012

`isbi:<root>` is the folder with the challenge's train-volume.tif, train-labels.tif (and
test-volume.tif); `isbi:~/data/isbi2012` in the config is a placeholder: pass yours. Classes:
0 'background' = membrane (label 0), 1 'cell' = cell interior (label 255). The test labels are
not public, so the last 5 of the 30 training slices are held out as the test split
(`data.builders.isbi.holdout`), leaving 25 for training.

Target: warping error 0.000353 on the challenge's test stack (paper, Table 1; its Rand error
0.0382 and pixel error 0.0611 are quoted from memory, not verified here; the paper's entry
averages predictions over rotated inputs, which this recipe does not). The warping and Rand
errors need the challenge server and its hidden labels, so this recipe reaches the target only
on paper: we report pixel error (1 - `pixel_accuracy`), mIoU and the boundary F-score on the 5
held-out slices, which are not the challenge's test slices.

Sized for the paper's hardware: one GPU (an NVidia Titan, 6 GB; the paper trains for 10
hours), global batch 1, one 572 x 572 tile per step.

The paper's model and training (sections 2 and 3): valid 3x3 convolutions, depth 4, 64 to 1,024
channels, 2x2 up-convolutions, no normalisation (by our layer-by-layer count 31,030,658
parameters for its one-channel input; ours has 31,031,810, the grayscale slices being
replicated to RGB as every source's images are); 572 x 572 input tiles for a 388 x 388
output, the context beyond the slice mirrored (overlap-tile); SGD with momentum 0.99 and batch
1 (one large tile); Gaussian initialisation with std sqrt(2 / N); elastic deformations from
3 x 3 lattice displacements of 10 px std, bicubically interpolated; drop-out at the end of the
contracting path; the cross-entropy weighted by w(x) = w_c(x) + 10 exp(-(d1 + d2)^2 /
(2 * 5^2)).

Ours (the paper gives no learning rate, schedule or length, and no solver of the authors'
could be found): lr 0.01 held constant after a 500-step linear warm-up, no weight decay,
20,000 steps (800 passes over the 25 training slices, each step a random tile). Nothing here
has been run to the target: the stacks and accelerators are not on the dev machine.

Where this differs from the paper:
- The paper's drop-out at the end of the contracting path is on the bottleneck's output at
  rate 0.5 (the paper gives neither); no random rotations or gray-value variations; random
  horizontal flips are added.
- w_c balances the class frequencies of each deformed training slice, and the border term is
  added on membrane pixels only (the paper leaves both unspecified); the loss is the weighted
  mean, sum(w * CE) / sum(w), not the paper's sum.
- Evaluation predicts each held-out slice in one window (516 x 516 output from a 700 x 700
  mirrored input for a 512 slice, `data.tile.step` = 16) instead of 388 x 388 tiles: the
  same network on a larger mirrored window, differing from tiling only in where the 2x2
  poolings' grid falls.
"""

from jaxvision.train.config import base_config

STEPS, WARMUP = 20_000, 500
DEPTH = 4
TILE, MARGIN = 388, 92  # output tile; 572 = 388 + 2 * 92 input


def get_config():
    config = base_config()
    config.model = "unet"
    config.model_kwargs.update(dict(depth=DEPTH, base_width=64, padding="VALID",
                                    batch_norm=False, upsampling="transpose", kernel_init="he",
                                    dropout=0.5))
    config.task = "segmentation"
    config.task_kwargs.update(dict(pixel_weights=True))
    config.dataset = "isbi:~/data/isbi2012"
    config.data.update(dict(image_size=512, random_flip=True))  # the slices' size
    config.data.builders.isbi.holdout = 5
    config.data.elastic.update(dict(sigma=10.0, grid=3))
    config.data.tile.update(dict(size=TILE, margin=MARGIN, step=2**DEPTH))
    config.data.weight_map.update(dict(w0=10.0, sigma=5.0))
    config.train.update(dict(steps=STEPS, batch_size=1, eval_batch_size=1, log_every=100,
                             eval_every=2000, checkpoint_every=1000))
    config.optimizer.update(dict(name="sgd", learning_rate=0.01, momentum=0.99, nesterov=False,
                                 weight_decay=0.0, warmup_steps=WARMUP, warmup="linear",
                                 warmup_start=0.0, schedule="constant"))
    config.lock()
    return config
