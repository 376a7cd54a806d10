"""The asyncio queue that groups concurrent requests' images into batches for the one model.

Two classes of work share the model. Interactive work (a ``/match`` query photo, a single-image
``/embed``) has someone waiting on the answer; bulk work (ingest) is throughput. With ``priority`` on,
each batch takes the waiting interactive images first and fills up with bulk ones, so a search waits
at most for the batch already running, not behind every crop queued before it. So that a steady stream
of searches cannot starve ingest, a batch that leaves waiting bulk images out is followed, at most
``max_bulk_skips`` batches later, by one that takes bulk images first. With ``priority`` off every
image is served in arrival order.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from model import Embedder
from model.preprocess import normalize_batch
from service.metrics import EMBED_BATCH, EMBED_SECONDS

MAX_BULK_SKIPS = 1


@dataclass
class _Job:
    image: np.ndarray
    future: asyncio.Future
    interactive: bool


class BatchingEmbedder:
    """Groups images from concurrent requests into model batches (up to ``max_batch``, ``max_wait`` s)."""

    def __init__(
        self,
        embedder: Embedder,
        max_batch: int,
        max_wait_s: float,
        *,
        priority: bool = True,
        max_bulk_skips: int = MAX_BULK_SKIPS,
    ) -> None:
        if max_bulk_skips < 0:
            raise ValueError("max_bulk_skips must be >= 0")
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.priority = priority
        self.max_bulk_skips = max_bulk_skips
        self._interactive: deque[_Job] = deque()
        self._bulk: deque[_Job] = deque()
        self._bulk_skipped = 0
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    async def start(self) -> None:
        """Start the batching worker on the running loop."""
        self._arrived = asyncio.Event()
        self._worker = asyncio.create_task(self._run(), name="embed-batcher")

    async def stop(self) -> None:
        """Stop the worker and release the inference thread."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def embed(self, images: list[np.ndarray], *, interactive: bool = False) -> np.ndarray:
        """Embed resized images; returns (N, D) float32, L2-normalised.

        ``interactive``: someone is waiting on this answer (a search photo), so it goes ahead of bulk work.
        """
        if self._arrived is None:
            raise RuntimeError("BatchingEmbedder.start() was not called")
        loop = asyncio.get_running_loop()
        ahead = interactive and self.priority
        jobs = [_Job(image, loop.create_future(), ahead) for image in images]
        (self._interactive if ahead else self._bulk).extend(jobs)
        self._arrived.set()
        return np.stack(await asyncio.gather(*(job.future for job in jobs)))

    def pending(self) -> tuple[int, int]:
        """Images waiting for a batch: (interactive, bulk)."""
        return len(self._interactive), len(self._bulk)

    def _waiting(self) -> int:
        return len(self._interactive) + len(self._bulk)

    async def _collect(self) -> list[_Job]:
        """Wait for work, give a batch up to ``max_wait_s`` to fill, then take it (see the module doc)."""
        assert self._arrived is not None
        while not self._waiting():
            self._arrived.clear()
            await self._arrived.wait()
        deadline = time.monotonic() + self.max_wait_s
        while self._waiting() < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
        return self._take()

    def _take(self) -> list[_Job]:
        """The next batch: interactive images first, unless bulk ones were passed over too often."""
        bulk_first = self._bulk_skipped >= self.max_bulk_skips
        queues = (self._bulk, self._interactive) if bulk_first else (self._interactive, self._bulk)
        batch: list[_Job] = []
        for queue in queues:
            while queue and len(batch) < self.max_batch:
                batch.append(queue.popleft())
        took_bulk = any(not job.interactive for job in batch)
        self._bulk_skipped = self._bulk_skipped + 1 if self._bulk and not took_bulk else 0
        return batch

    def _infer(self, images: list[np.ndarray]) -> np.ndarray:
        started = time.perf_counter()
        output = self.embedder.embed_tensor(normalize_batch(np.stack(images)))
        EMBED_SECONDS.observe(time.perf_counter() - started)
        EMBED_BATCH.observe(len(images))
        return output

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [job for job in batch if not job.future.done()]
            if not live:
                continue
            try:
                output = await loop.run_in_executor(self._executor, self._infer, [job.image for job in live])
            except Exception as exc:
                for job in live:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, row in zip(live, output, strict=True):
                if not job.future.done():
                    job.future.set_result(row)
