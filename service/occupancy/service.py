"""The occupancy use case: who is in the store now, once or as a stream of changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool

from service.common.errors import RateLimitedError
from service.common.timeparse import to_ms
from service.occupancy.compute import Occupancy, current_occupancy
from service.occupancy.hub import FeedKey, OccupancyHub
from service.settings import Settings
from service.state import AppState
from service.storage.counting import for_reports
from service.storage.models import Store

FULL_RETRY_S = 5


async def occupancy_now(state: AppState, *, store: Store, include_staff: bool = False) -> Occupancy:
    """Visitors present per zone now."""
    gap_ms = int(round(state.settings.density_gap_s * 1000))

    def run() -> Occupancy:
        with state.sessions() as session:
            now = to_ms(datetime.now(UTC))
            return current_occupancy(for_reports(session), store.id, now, gap_ms, include_staff)

    return await run_in_threadpool(run)


def check_capacity(hub: OccupancyHub, settings: Settings) -> None:
    """Refuse a stream (429, retry shortly) when the process already serves its most."""
    if hub.streams >= settings.occupancy_max_streams:
        raise RateLimitedError(
            f"{hub.streams} live streams are open on this server (REID_OCCUPANCY_MAX_STREAMS); retry shortly",
            FULL_RETRY_S,
        )


async def live_updates(
    hub: OccupancyHub, settings: Settings, key: FeedKey, max_s: float | None = None
) -> AsyncIterator[Occupancy | None]:
    """The occupancy now, then each change (None: nothing changed for a heartbeat's time). Ends after
    ``max_s`` or ``REID_OCCUPANCY_STREAM_MAX_S``, or when the server shuts down; the client then
    reconnects."""
    loop = asyncio.get_running_loop()
    feed = await hub.open(key)
    try:
        version = feed.version
        yield feed.snapshot
        lasting = settings.occupancy_stream_max_s
        deadline = loop.time() + (lasting if max_s is None else min(max_s, lasting))
        while not hub.closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            if feed.version == version:
                try:
                    await asyncio.wait_for(
                        feed.changed.wait(), min(settings.occupancy_heartbeat_s, remaining)
                    )
                except TimeoutError:
                    yield None
                    continue
            if hub.closing:
                return
            version = feed.version
            yield feed.snapshot
    finally:
        hub.close(key)
