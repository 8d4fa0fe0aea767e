"""What the TFDS builders of local files (shapes and the folder entries) say while preparing."""

from __future__ import annotations

import sys


class LocalPreparation:
    """Mixin placed before `tfds.core.GeneratorBasedBuilder`.

    TFDS prints "Downloading and preparing dataset Unknown size (download: Unknown size, ...)"
    and "Dataset ... downloaded and prepared to ..." on stdout for every builder; these download
    nothing, and stdout is for results (train.py's final JSON line). Instead, one line on stderr
    when preparation starts.
    """

    def _log_download_bytes(self) -> None:
        print(f"Preparing dataset {self.name} in {self.data_dir} (once: later runs reuse it)",
              file=sys.stderr, flush=True)

    def _log_download_done(self) -> None:
        pass
