"""The embedding queue: searches never wait behind ingest's batches, ingest is never held up by searches,
and bulk work runs at lower OS priority.

A fake model holds each batch until the test lets it go, so which images share a batch, and which batch
runs while another is held, is fixed by the test (no timing involved).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sys
import threading
from collections.abc import AsyncIterator

import numpy as np
import pytest

from model.preprocess import IMAGENET_MEAN, IMAGENET_STD
from service.common.phases import open_log, phase
from service.common.priority import BulkPool, lower_thread_priority
from service.embedding.batcher import BatchingEmbedder

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="threads have their own nice value on Linux")


def nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class GatedModel:
    """Embeds an image as its id (the image's pixel value); holds each batch until its first id is let go."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.nice: dict[int, int] = {}
        self.entered: queue.Queue[list[int]] = queue.Queue()
        self._gates: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def gate(self, first: int) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(first, threading.Event())

    def let_go(self, *firsts: int) -> None:
        for first in firsts:
            self.gate(first).set()

    def embed_tensor(self, batch) -> np.ndarray:
        ids = np.rint((batch[:, 0, 0, 0].numpy() * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255).astype(int)
        ids = ids.tolist()
        self.batches.append(ids)
        self.nice[ids[0]] = nice_of_this_thread()
        self.entered.put(ids)
        assert self.gate(ids[0]).wait(10), f"the test never let batch {ids} go"
        return np.stack([np.full(4, i, dtype=np.float32) for i in ids])


@contextlib.asynccontextmanager
async def started(batcher: BatchingEmbedder) -> AsyncIterator[BatchingEmbedder]:
    """The batcher, started for the block and stopped after it."""
    await batcher.start()
    try:
        yield batcher
    finally:
        await batcher.stop()


def image(identity: int) -> np.ndarray:
    return np.full((2, 2, 3), identity, dtype=np.uint8)


async def entered(model: GatedModel) -> list[int]:
    """The next batch that entered the model."""
    return await asyncio.get_running_loop().run_in_executor(None, model.entered.get, True, 10)


def requests(batcher: BatchingEmbedder, ids: list[int], interactive: bool) -> dict[int, asyncio.Task]:
    return {i: asyncio.create_task(batcher.embed([image(i)], interactive=interactive)) for i in ids}


async def answers(tasks: dict[int, asyncio.Task]) -> dict[int, float]:
    return {i: float((await task)[0, 0]) for i, task in tasks.items()}


BULK = [10, 11, 12, 13, 14, 15]


def test_a_search_is_embedded_while_an_ingest_batch_is_still_running():
    async def scenario() -> list[list[int]]:
        model = GatedModel()
        async with started(BatchingEmbedder(model, 4, 0.0, priority=True)) as batcher:
            running = requests(batcher, [1], interactive=False)
            assert await entered(model) == [1]
            queued = requests(batcher, BULK, interactive=False)
            search = requests(batcher, [50], interactive=True)
            assert await entered(model) == [50], "the search did not wait for the ingest batch"
            model.let_go(50)
            assert await answers(search) == {50: 50.0}
            assert not running[1].done() and batcher.pending() == (0, len(BULK))
            model.let_go(1, 10, 14)
            assert await answers(running | queued) == {i: float(i) for i in [1, *BULK]}
        return model.batches

    assert asyncio.run(scenario()) == [[1], [50], [10, 11, 12, 13], [14, 15]]


def test_without_priority_the_queue_is_first_come_first_served():
    async def scenario() -> list[list[int]]:
        model = GatedModel()
        async with started(BatchingEmbedder(model, 4, 0.0, priority=False)) as batcher:
            running = requests(batcher, [1], interactive=False)
            assert await entered(model) == [1]
            tasks = requests(batcher, BULK, interactive=False) | requests(batcher, [50], interactive=True)
            await asyncio.sleep(0)
            assert batcher.pending() == (0, len(BULK) + 1)
            model.let_go(1, 10, 14)
            assert await answers(running | tasks) == {i: float(i) for i in [1, *BULK, 50]}
        return model.batches

    assert asyncio.run(scenario()) == [[1], [10, 11, 12, 13], [14, 15, 50]]


def test_searches_never_hold_up_ingest_and_are_batched_together():
    async def scenario() -> list[list[int]]:
        model = GatedModel()
        async with started(BatchingEmbedder(model, 4, 0.0, priority=True)) as batcher:
            first_search = requests(batcher, [49], interactive=True)
            assert await entered(model) == [49]
            more_searches = requests(batcher, [50, 51], interactive=True)
            ingest = requests(batcher, [10, 11], interactive=False)
            assert await entered(model) == [10, 11], "ingest waited for a search batch"
            model.let_go(10)
            assert await answers(ingest) == {10: 10.0, 11: 11.0}
            assert not first_search[49].done()
            model.let_go(49, 50)
            assert await answers(first_search | more_searches) == {49: 49.0, 50: 50.0, 51: 51.0}
        return model.batches

    assert asyncio.run(scenario()) == [[49], [10, 11], [50, 51]]


@linux_only
def test_ingest_batches_run_at_lower_os_priority_than_searches():
    async def scenario() -> dict[int, int]:
        model = GatedModel()
        model.let_go(10, 50)
        async with started(BatchingEmbedder(model, 4, 0.0, priority=True, bulk_nice=7)) as batcher:
            await answers(requests(batcher, [10], interactive=False) | requests(batcher, [50], True))
        return model.nice

    base = nice_of_this_thread()
    nice = asyncio.run(scenario())
    assert nice[50] == base and nice[10] == min(base + 7, 19)


@linux_only
def test_bulk_pool_threads_are_nicer_and_keep_the_callers_phases():
    async def scenario(pool: BulkPool) -> tuple[int, dict[str, float]]:
        log = open_log()

        def work() -> int:
            with phase("bulk-work"):
                return nice_of_this_thread()

        return await pool.run(work), log.phases()

    pool = BulkPool(threads=2, nice=5)
    try:
        nice, phases = asyncio.run(scenario(pool))
    finally:
        pool.shutdown()
    assert nice == min(nice_of_this_thread() + 5, 19)
    assert "bulk-work" in phases


@linux_only
def test_only_the_calling_thread_is_lowered():
    result: list[int | None] = []
    thread = threading.Thread(target=lambda: result.append(lower_thread_priority(3)))
    before = nice_of_this_thread()
    thread.start()
    thread.join()
    assert result == [min(before + 3, 19)] and nice_of_this_thread() == before
    assert lower_thread_priority(0) is None
