"""Where a request's time goes: named phases recorded while it is served (the ``Server-Timing`` header).

The HTTP layer opens a ``PhaseLog`` per request (``open_log``); code that serves it records phases into
whatever log is open in its context, also from worker threads, and does nothing when none is open.
``in_thread`` runs blocking work on the thread pool and splits its time three ways: waiting for a
thread (``thread-wait``), running (the phase itself) and waiting for the event loop to resume the
request afterwards (``loop-wait``). A phase recorded twice adds up. ``gc`` (the process's garbage-collection
pauses during the request) and nested phases (``search.index``) overlap the others.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from service.common.priority import BulkPool

THREAD_WAIT = "thread-wait"
LOOP_WAIT = "loop-wait"
GC = "gc"  # garbage-collection pauses inside the request: they overlap its other phases
P = ParamSpec("P")
T = TypeVar("T")


class PhaseLog:
    """Seconds per phase of one request, in the order phases first appeared; thread-safe."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to phase ``name``."""
        with self._lock:
            self._seconds[name] = self._seconds.get(name, 0.0) + max(seconds, 0.0)

    def phases(self) -> dict[str, float]:
        """A copy of the phases so far."""
        with self._lock:
            return dict(self._seconds)

    def elapsed(self) -> float:
        """Seconds since the log was opened."""
        return time.perf_counter() - self.started


def format_server_timing(phases: dict[str, float], app_seconds: float) -> str:
    """A ``Server-Timing`` value: each phase, then ``app`` (until the answer began), in milliseconds."""
    entries = [f"{name};dur={seconds * 1000:.2f}" for name, seconds in phases.items()]
    return ", ".join([*entries, f"app;dur={app_seconds * 1000:.2f}"])


def parse_server_timing(value: str) -> dict[str, float]:
    """Seconds per metric of a ``Server-Timing`` value; metrics without a numeric ``dur`` are left out."""
    phases: dict[str, float] = {}
    for entry in value.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        for param in params:
            key, _, number = param.partition("=")
            if key.strip().lower() != "dur" or not name:
                continue
            try:
                milliseconds = float(number.strip().strip('"'))
            except ValueError:
                continue
            if math.isfinite(milliseconds):
                phases[name] = milliseconds / 1000
    return phases


_current: ContextVar[PhaseLog | None] = ContextVar("reid_phase_log", default=None)


def open_log() -> PhaseLog:
    """Open a log for the request served in the current context (and the threads it hands work to)."""
    log = PhaseLog()
    _current.set(log)
    return log


def record_phase(name: str, seconds: float) -> None:
    """Add ``seconds`` to phase ``name`` of the open log, if any."""
    log = _current.get()
    if log is not None:
        log.add(name, seconds)


def mark_since_start(name: str) -> None:
    """Record the time from the start of the request until now as phase ``name`` (e.g. reading the body)."""
    log = _current.get()
    if log is not None:
        log.add(name, log.elapsed())


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Record the block's wall time as phase ``name``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        record_phase(name, time.perf_counter() - started)


async def in_thread(
    name: str, function: Callable[P, T], *args: P.args, pool: BulkPool | None = None, **kwargs: P.kwargs
) -> T:
    """``function(*args, **kwargs)`` on the thread pool (or on ``pool``), timed as phase ``name`` (see the
    module doc)."""
    submitted = time.perf_counter()
    span: list[float] = []

    def timed() -> T:
        span.append(time.perf_counter())
        try:
            return function(*args, **kwargs)
        finally:
            span.append(time.perf_counter())

    try:
        return await (pool.run(timed) if pool is not None else run_in_threadpool(timed))
    finally:
        if len(span) == 2:
            record_phase(THREAD_WAIT, span[0] - submitted)
            record_phase(name, span[1] - span[0])
            record_phase(LOOP_WAIT, time.perf_counter() - span[1])
