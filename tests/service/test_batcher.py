"""The embedding queue: interactive images go ahead of bulk ones, and bulk ones are never starved.

A fake model blocks each batch until the test lets it go, so which images share a batch, and in which
order batches run, is fixed by the test (no timing involved).
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from model.preprocess import IMAGENET_MEAN, IMAGENET_STD
from service.embedding.batcher import BatchingEmbedder


class GatedModel:
    """Embeds an image as its id (the image's pixel value) and holds each batch until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Semaphore(0)
        self.release = threading.Semaphore(0)

    def embed_tensor(self, batch) -> np.ndarray:
        ids = np.rint((batch[:, 0, 0, 0].numpy() * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255).astype(int)
        self.batches.append(ids.tolist())
        self.entered.release()
        assert self.release.acquire(timeout=10), "the test never released the batch"
        return np.stack([np.full(4, i, dtype=np.float32) for i in ids])


def image(identity: int) -> np.ndarray:
    return np.full((2, 2, 3), identity, dtype=np.uint8)


async def until_running(model: GatedModel) -> None:
    """Wait until the worker is inside the model with a batch."""
    assert await asyncio.get_running_loop().run_in_executor(None, model.entered.acquire, True, 10)


async def run_queue(
    priority: bool, max_batch: int, interactive: list[int], bulk: list[int], max_bulk_skips: int = 1
) -> tuple[list[list[int]], dict[int, float]]:
    """Block the model on a first bulk image (id 1), queue bulk then interactive images one request
    each, let every batch go; returns the batches after the first and what each request got back."""
    model = GatedModel()
    batcher = BatchingEmbedder(model, max_batch, 0.0, priority=priority, max_bulk_skips=max_bulk_skips)
    await batcher.start()
    try:
        first = asyncio.create_task(batcher.embed([image(1)]))
        await until_running(model)
        requests = {i: asyncio.create_task(batcher.embed([image(i)])) for i in bulk}
        requests |= {i: asyncio.create_task(batcher.embed([image(i)], interactive=True)) for i in interactive}
        await asyncio.sleep(0)
        waiting = len(interactive) + len(bulk)
        assert sum(batcher.pending()) == waiting
        for _ in range(1 + waiting):  # at least one batch per image
            model.release.release()
        await first
        answers = {i: float((await task)[0, 0]) for i, task in requests.items()}
    finally:
        await batcher.stop()
    return model.batches[1:], answers


BULK = [10, 11, 12, 13, 14, 15]
SEARCH = [50]


def test_a_search_goes_ahead_of_queued_ingest():
    batches, answers = asyncio.run(run_queue(True, 4, SEARCH, BULK))
    assert batches == [[50, 10, 11, 12], [13, 14, 15]]
    assert answers == {i: float(i) for i in SEARCH + BULK}


def test_without_priority_the_queue_is_first_come_first_served():
    batches, answers = asyncio.run(run_queue(False, 4, SEARCH, BULK))
    assert batches == [[10, 11, 12, 13], [14, 15, 50]]
    assert answers == {i: float(i) for i in SEARCH + BULK}


def test_a_stream_of_searches_never_starves_ingest():
    searches = [50, 51, 52, 53, 54, 55]
    batches, answers = asyncio.run(run_queue(True, 2, searches, [10, 11, 12]))
    # searches first, but a batch that leaves ingest waiting is followed by one that serves it first
    assert batches == [[50, 51], [10, 11], [52, 53], [12, 54], [55]]
    assert answers == {i: float(i) for i in searches + [10, 11, 12]}


@pytest.mark.parametrize("skips", [0, 1, 3])
def test_ingest_waits_at_most_max_bulk_skips_batches(skips):
    searches = list(range(50, 70))
    batches, _ = asyncio.run(run_queue(True, 2, searches, [10, 11, 12, 13], max_bulk_skips=skips))
    bulk_served = [i for i, batch in enumerate(batches) if any(x < 50 for x in batch)]
    gaps = np.diff([-1, *bulk_served]) - 1
    assert gaps.max() == skips  # batches in a row that served only searches while ingest waited
    assert sorted(x for batch in batches for x in batch) == sorted(searches + [10, 11, 12, 13])
