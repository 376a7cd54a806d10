"""Garbage-collection pauses: a collection stops every Python thread, so each request's profile shows the
pauses that fell inside it (phase ``gc``) and ``/metrics`` their durations by generation.

``freeze_startup_objects`` moves what startup built (modules, the model, the app) out of the collector's
reach: those objects live as long as the process, and walking them made every full collection cost about
200 ms (2-core machine) in whichever requests were running.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

from service.metrics import GC_PAUSE


class GcPauseClock:
    """Seconds spent in garbage collection since the process started (all threads stop meanwhile)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started: float | None = None
        self._install_lock = threading.Lock()

    def install(self) -> None:
        """Start counting (idempotent)."""
        with self._install_lock:
            if self._on_collection not in gc.callbacks:
                gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            paused = time.perf_counter() - self._started
            self._started = None
            self.total += paused
            GC_PAUSE.labels(str(info.get("generation", "?"))).observe(paused)


PAUSES = GcPauseClock()


def freeze_startup_objects() -> None:
    """Exempt every object alive now from later collections (``gc.freeze``: cheap, nothing is walked)."""
    gc.freeze()


def thaw_startup_objects() -> None:
    """Give the frozen objects back to the collector (at shutdown, so an app closed in a longer-lived
    process, such as a test run, can be collected)."""
    gc.unfreeze()
