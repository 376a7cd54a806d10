"""The process's one embedding model and the asyncio queue that batches concurrent requests for it."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from model import Embedder, ExportError, build_model, load_embedder
from model.preprocess import normalize_batch, resize_rgb
from service.core.config import Settings
from service.metrics import EMBED_BATCH, EMBED_SECONDS

UNTRAINED_INPUT = (256, 128)
UNTRAINED_WARNING = (
    "no exported model found; embeddings come from an UNTRAINED network and matches are meaningless. "
    "Train one (reid-train train --config ...) and export it with "
    "`reid-train export --checkpoint <ckpt> --out <REID_MODEL_DIR>` (default ./exports/current)."
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """The embedder and whether it came from a trained export."""

    embedder: Embedder
    trained: bool
    warning: str | None = None


def load_model(settings: Settings) -> LoadedModel:
    """Load the export in ``settings.model_dir``, or fall back to a seeded untrained network (loudly)."""
    try:
        return LoadedModel(load_embedder(settings.model_dir, settings.device, settings.runtime), True)
    except ExportError as exc:
        log.warning("!!! %s (%s)", UNTRAINED_WARNING, exc)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_model(settings.untrained_backbone, "rgasc", UNTRAINED_INPUT)
    embedder = Embedder.from_network(net, settings.device, version=f"untrained-{settings.untrained_backbone}")
    return LoadedModel(embedder, False, UNTRAINED_WARNING)


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

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Resize a decoded RGB image to the model's input size (call off the event loop)."""
        return resize_rgb(image, self.embedder.input_size)

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
