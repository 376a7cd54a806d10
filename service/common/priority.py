"""Bulk work at lower operating-system priority, so that it yields the CPU to someone waiting."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def lower_thread_priority(nice: int) -> int | None:
    """Raise the calling thread's nice value by ``nice`` (Linux only, where nice is per thread); its new
    nice value, or None where threads have no priority of their own or the system refused.

    Threads this thread starts later (e.g. its OpenMP workers) inherit the value. Lowering needs no
    privilege; it cannot be undone without one, so call it only on threads kept for bulk work.
    """
    if sys.platform != "linux" or nice <= 0:
        return None
    thread = threading.get_native_id()
    try:
        target = min(os.getpriority(os.PRIO_PROCESS, thread) + nice, 19)
        os.setpriority(os.PRIO_PROCESS, thread, target)
    except OSError as exc:
        log.warning("could not lower the priority of thread %s: %s", threading.current_thread().name, exc)
        return None
    return target


def nicer_executor(threads: int, nice: int, name: str) -> ThreadPoolExecutor:
    """A thread pool whose threads lower their own priority by ``nice`` as they start (0: unchanged)."""
    return ThreadPoolExecutor(
        max_workers=threads, thread_name_prefix=name, initializer=lower_thread_priority, initargs=(nice,)
    )


class BulkPool:
    """Threads for bulk work (ingest's linking, background jobs) at lowered OS priority.

    ``run`` awaits a call on one of them with the caller's context (so its phases are recorded).
    """

    def __init__(self, threads: int, nice: int) -> None:
        self._executor = nicer_executor(threads, nice, "bulk")

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``function(*args, **kwargs)`` on a bulk thread."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def shutdown(self) -> None:
        """Wait for running work, then release the threads."""
        self._executor.shutdown(wait=True)
