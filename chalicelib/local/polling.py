"""A background thread that polls on an interval until stopped: the shape of the pump and the watcher."""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("nexus.local")


class Poller:
    """Subclasses define `poll_once()`, `poll_interval` and `thread_name`; a failed poll never ends the loop."""

    poll_interval: float = 0.5
    @property
    def thread_name(self) -> str:
        return "poller"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def poll_once(self):
        raise NotImplementedError

    def poll_succeeded(self) -> None:
        """Called after each poll that raised nothing."""

    def poll_failed(self, exc: Exception) -> None:
        log.exception("%s failed a poll", self.thread_name, exc_info=exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
                self.poll_succeeded()
            except Exception as exc:
                self.poll_failed(exc)
            self._stop.wait(self.poll_interval)
