"""The asyncio queue that groups concurrent requests' images into batches for the one model.

Two classes of work share the model. Interactive work (a ``/match`` query photo, a single-image
``/embed``) has someone waiting on the answer; bulk work (ingest) is throughput. With ``priority`` on
they run in two lanes, each with its own queue and inference thread: the interactive lane starts a
batch as soon as an image arrives (taking whatever other interactive images wait, never bulk ones), so
a search never waits behind ingest's batches; the bulk lane gives its batches ``max_wait_s`` to fill
and runs on a thread at lower OS priority (``bulk_nice``, Linux), so that when both lanes want the
CPU, the search gets it. Neither lane waits for the other, so searches cannot starve ingest: it gets
every CPU cycle they leave. With ``priority`` off there is one lane in arrival order.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from model import Embedder
from model.preprocess import normalize_batch
from service.common.phases import LOOP_WAIT, record_phase
from service.common.priority import nicer_executor
from service.metrics import EMBED_BATCH, EMBED_SECONDS

BULK_NICE = 10


@dataclass
class _Job:
    image: np.ndarray
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)
    ran: tuple[float, float] = (0.0, 0.0)


class _Lane:
    """One queue of images, the task that batches them and the thread that runs the model on them."""

    def __init__(self, name: str, max_batch: int, fill_wait_s: float, nice: int) -> None:
        self.name = name
        self.max_batch = max_batch
        self.fill_wait_s = fill_wait_s
        self.jobs: deque[_Job] = deque()
        self.arrived = asyncio.Event()
        self.executor = nicer_executor(1, nice, f"embed-{name}")
        self.task: asyncio.Task | None = None

    def put(self, jobs: list[_Job]) -> None:
        self.jobs.extend(jobs)
        self.arrived.set()

    async def next_batch(self) -> list[_Job]:
        """Wait for work, give the batch up to ``fill_wait_s`` to fill, then take up to ``max_batch``."""
        while not self.jobs:
            self.arrived.clear()
            await self.arrived.wait()
        deadline = time.monotonic() + self.fill_wait_s
        while len(self.jobs) < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                break
        return [self.jobs.popleft() for _ in range(min(self.max_batch, len(self.jobs)))]


class BatchingEmbedder:
    """Groups images from concurrent requests into model batches (up to ``max_batch``; bulk ones wait up to
    ``max_wait_s`` for a batch to fill); interactive images in their own lane (see the module doc)."""

    def __init__(
        self,
        embedder: Embedder,
        max_batch: int,
        max_wait_s: float,
        *,
        priority: bool = True,
        bulk_nice: int = BULK_NICE,
    ) -> None:
        if bulk_nice < 0:
            raise ValueError("bulk_nice must be >= 0 (a thread may only lower its own priority)")
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.priority = priority
        self.bulk_nice = bulk_nice
        self._lanes: dict[str, _Lane] = {}

    async def start(self) -> None:
        """Start the lanes' batching tasks on the running loop."""
        if self.priority:
            self._lanes = {
                "interactive": _Lane("interactive", self.max_batch, 0.0, 0),
                "bulk": _Lane("bulk", self.max_batch, self.max_wait_s, self.bulk_nice),
            }
        else:
            self._lanes = {"all": _Lane("all", self.max_batch, self.max_wait_s, 0)}
        for lane in self._lanes.values():
            lane.task = asyncio.create_task(self._run(lane), name=f"embed-{lane.name}")

    async def stop(self) -> None:
        """Stop the lanes and release their inference threads."""
        for lane in self._lanes.values():
            if lane.task is not None:
                lane.task.cancel()
                await asyncio.gather(lane.task, return_exceptions=True)
            lane.executor.shutdown(wait=True)

    def _lane(self, interactive: bool) -> _Lane:
        if not self._lanes:
            raise RuntimeError("BatchingEmbedder.start() was not called")
        if not self.priority:
            return self._lanes["all"]
        return self._lanes["interactive" if interactive else "bulk"]

    async def embed(self, images: list[np.ndarray], *, interactive: bool = False) -> np.ndarray:
        """Embed resized images; returns (N, D) float32, L2-normalised.

        ``interactive``: someone is waiting on this answer (a search photo), so it takes the interactive
        lane. Records the request's phases ``embed-queue`` (waiting for a batch), ``embed`` (the model
        call of the last batch it was in) and ``loop-wait``.
        """
        lane = self._lane(interactive)
        loop = asyncio.get_running_loop()
        jobs = [_Job(image, loop.create_future()) for image in images]
        lane.put(jobs)
        rows = await asyncio.gather(*(job.future for job in jobs))
        resumed = time.perf_counter()
        started, finished = max(job.ran for job in jobs)
        record_phase("embed-queue", started - min(job.queued for job in jobs))
        record_phase("embed", finished - started)
        record_phase(LOOP_WAIT, resumed - finished)
        return np.stack(rows)

    def pending(self) -> tuple[int, int]:
        """Images waiting for a batch: (interactive, bulk); with priority off, all count as bulk."""
        if not self.priority:
            return 0, len(self._lane(False).jobs)
        return len(self._lane(True).jobs), len(self._lane(False).jobs)

    def _infer(self, jobs: list[_Job]) -> np.ndarray:
        started = time.perf_counter()
        output = self.embedder.embed_tensor(normalize_batch(np.stack([job.image for job in jobs])))
        finished = time.perf_counter()
        for job in jobs:
            job.ran = (started, finished)
        EMBED_SECONDS.observe(finished - started)
        EMBED_BATCH.observe(len(jobs))
        return output

    async def _run(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        while True:
            live = [job for job in await lane.next_batch() if not job.future.done()]
            if not live:
                continue
            try:
                output = await loop.run_in_executor(lane.executor, self._infer, live)
            except Exception as exc:
                for job in live:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, row in zip(live, output, strict=True):
                if not job.future.done():
                    job.future.set_result(row)
