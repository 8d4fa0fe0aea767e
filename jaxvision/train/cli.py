"""The training command: `jaxvision-train --config CONFIG.py [--workdir DIR]` (installed by pip)
and `python train.py ...` in the repository, one function behind both.

Config fields can be overridden on the command line (`--config.train.steps=200`); an unknown
field is an error. A workdir that holds a checkpoint is resumed. On Linux the command restarts
itself under tcmalloc when installed (`jaxvision.allocator`; `JAXVISION_TCMALLOC=0` opts out).
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Path to a configs/<model>.py file.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Output directory (default: workdir/<config file name>).")
flags.mark_flags_as_required(["config"])


def parse_flags(argv):
    """absl parsing, with config mistakes (unknown fields, wrong types) as one clear line;
    `--help` prints this command's flags and exits 0 (`--helpfull`: absl's, every flag).

    Without `--verbosity`, logs below WARNING are off: absl's `app.run` would raise the default
    to INFO right after this parser (and orbax and TFDS log every file at INFO).
    """
    if any(a in ("-h", "--help", "--helpshort") for a in argv[1:]):
        print(f"{__doc__.strip()}\n\n{flags.FLAGS.module_help(sys.modules[__name__])}")
        sys.exit(0)
    try:
        argv = flags.FLAGS(argv)
    except (KeyError, AttributeError, TypeError, ValueError, flags.Error) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        sys.exit(f"train: bad flag or config override: {message}")
    if flags.FLAGS["verbosity"].using_default_value:
        flags.FLAGS.verbosity = logging.WARNING  # also sets Python's root logger level
    return argv


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import tensorflow_datasets as tfds

    from jaxvision.train import train_and_evaluate

    tfds.display_progress_bar(sys.stderr.isatty())  # its bars are escape codes in a log file
    workdir = flags.FLAGS.workdir
    if workdir is None:
        config_path = config_flags.get_config_filename(flags.FLAGS["config"])
        workdir = os.path.join("workdir", os.path.splitext(os.path.basename(config_path))[0])
    try:
        train_and_evaluate(flags.FLAGS.config, workdir)
    except ValueError as e:  # bad config or data: the message names the field
        logging.debug("", exc_info=True)
        sys.exit(f"train: {type(e).__name__}: {e}")


def run():
    """Entry point: tcmalloc first (before JAX starts: CPU steps page-fault much less), then
    absl's app with the config flags."""
    from jaxvision.allocator import reexec_with_tcmalloc

    reexec_with_tcmalloc()
    app.run(main, flags_parser=parse_flags)
