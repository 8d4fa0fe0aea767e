"""Trains and evaluates a model: `python train.py --config configs/unet.py [--workdir DIR]`
(the same command as `jaxvision-train`, see jaxvision/train/cli.py)."""

from jaxvision.train.cli import run

if __name__ == "__main__":
    run()
