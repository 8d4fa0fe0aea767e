"""Trains and evaluates a model: `python train.py --config configs/unet.py [--workdir DIR]`.

Config fields can be overridden on the command line (`--config.train.steps=200`); an unknown
field is an error. A workdir that holds a checkpoint is resumed.
"""

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Path to a configs/<model>.py file.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory (default: workdir/<config name>).")
flags.mark_flags_as_required(["config"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import os

    from jaxvision.train import train_and_evaluate

    workdir = flags.FLAGS.workdir
    if workdir is None:
        name = os.path.splitext(os.path.basename(config_flags.get_config_filename(
            flags.FLAGS["config"])))[0]
        workdir = os.path.join("workdir", name)
    train_and_evaluate(flags.FLAGS.config, workdir)


if __name__ == "__main__":
    app.run(main)
