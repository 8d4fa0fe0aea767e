"""SIGTERM handling: the loop checks a flag between steps, saves and exits cleanly."""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """Context manager turning SIGTERM (pre-emption) into a flag the loop polls."""

    def __init__(self, signals=(signal.SIGTERM,)):
        self.signals = signals
        self._event = threading.Event()
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, lambda *_: self._event.set())
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False
