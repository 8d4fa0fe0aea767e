"""Training system: state, the pure step, parallel wrapper, checkpoints, logging and the loop."""

from jaxvision.train.loop import train_and_evaluate

__all__ = ["train_and_evaluate"]
