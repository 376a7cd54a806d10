"""The asyncio queue that groups concurrent requests' images into batches for the one model."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from model import Embedder
from model.preprocess import normalize_batch
from service.metrics import EMBED_BATCH, EMBED_SECONDS


@dataclass
class _Job:
    image: np.ndarray
    future: asyncio.Future


class BatchingEmbedder:
    """Groups images from concurrent requests into model batches (up to ``max_batch``, ``max_wait`` s)."""

    def __init__(self, embedder: Embedder, max_batch: int, max_wait_s: float) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    async def start(self) -> None:
        """Start the batching worker on the running loop."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="embed-batcher")

    async def stop(self) -> None:
        """Stop the worker and release the inference thread."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """Embed resized images; returns (N, D) float32, L2-normalised."""
        if self._queue is None:
            raise RuntimeError("BatchingEmbedder.start() was not called")
        loop = asyncio.get_running_loop()
        jobs = [_Job(image, loop.create_future()) for image in images]
        for job in jobs:
            self._queue.put_nowait(job)
        return np.stack(await asyncio.gather(*(job.future for job in jobs)))

    async def _collect(self) -> list[_Job]:
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
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
