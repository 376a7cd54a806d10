"""One hub per app feeds every live occupancy stream: a stream never touches the database.

While streams are open, the hub reads the watched stores' change counters (``stores.ingest_seq``, moved
by every ingest, erasure, retention pass, re-linking pass and staff change, on any replica) every
``REID_OCCUPANCY_POLL_S``: one small query, whatever the number of streams. A store whose counter moved,
or whose earliest present visitor is due to stop counting, is read again (one query for all its
streams), and its streams are woken when a zone's count or the counter changed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service.common.timeparse import to_ms
from service.http.server import on_server_shutdown
from service.occupancy.compute import Occupancy, current_occupancy
from service.settings import Settings
from service.storage.counting import for_reports
from service.storage.models import Store

MAX_REFRESH_S = 60.0
HUB = "occupancy_hub"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedKey:
    """What a stream follows: one store, with or without its staff."""

    store_id: int
    include_staff: bool


@dataclass
class Feed:
    """The latest occupancy of one store and the streams following it."""

    streams: int = 0
    snapshot: Occupancy | None = None
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    refresh_at: float = 0.0
    first: asyncio.Lock = field(default_factory=asyncio.Lock)

    def publish(self, snapshot: Occupancy) -> None:
        """Keep ``snapshot``; wake the streams when a count or the store's data changed (a dashboard
        refreshes its other figures on the latter)."""
        before = self.snapshot
        self.snapshot = snapshot
        if before is None or (before.counts, before.seq) != (snapshot.counts, snapshot.seq):
            self.wake()

    def wake(self) -> None:
        """Wake every stream waiting on this feed."""
        self.version += 1
        woken, self.changed = self.changed, asyncio.Event()
        woken.set()


class OccupancyHub:
    """The live occupancy feeds of one app."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.feeds: dict[FeedKey, Feed] = {}
        self.streams = 0
        self.closing = False
        self._task: asyncio.Task | None = None

    def _read(self, key: FeedKey) -> Occupancy:
        gap_ms = int(round(self.settings.density_gap_s * 1000))
        with self.sessions() as session:
            now = to_ms(datetime.now(UTC))
            return current_occupancy(for_reports(session), key.store_id, now, gap_ms, key.include_staff)

    def _counters(self, store_ids: set[int]) -> dict[int, int]:
        with self.sessions() as session:
            rows = session.execute(select(Store.id, Store.ingest_seq).where(Store.id.in_(sorted(store_ids))))
            return {int(i): int(seq or 0) for i, seq in rows}

    def _schedule(self, feed: Feed) -> None:
        loop_now = asyncio.get_running_loop().time()
        wait = MAX_REFRESH_S
        snapshot = feed.snapshot
        if snapshot is not None and snapshot.next_change_ms is not None:
            wait = (snapshot.next_change_ms - to_ms(datetime.now(UTC))) / 1000.0 + 0.05
        feed.refresh_at = loop_now + min(max(wait, self.settings.occupancy_poll_s), MAX_REFRESH_S)

    async def open(self, key: FeedKey) -> Feed:
        """Follow a store: the feed, with a snapshot read now if it is the first stream."""
        feed = self.feeds.setdefault(key, Feed())
        feed.streams += 1
        self.streams += 1
        try:
            async with feed.first:
                if feed.snapshot is None:
                    feed.publish(await run_in_threadpool(self._read, key))
                    self._schedule(feed)
        except BaseException:
            self.close(key)
            raise
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return feed

    def close(self, key: FeedKey) -> None:
        """Stop following a store; the last stream's leaving stops the polling."""
        self.streams -= 1
        feed = self.feeds.get(key)
        if feed is not None:
            feed.streams -= 1
            if feed.streams <= 0:
                del self.feeds[key]
        if not self.feeds and self._task is not None:
            self._task.cancel()
            self._task = None

    def shutdown(self) -> None:
        """The server is shutting down: end every stream now."""
        self.closing = True
        for feed in self.feeds.values():
            feed.wake()

    async def _run(self) -> None:
        while not self.closing:
            await asyncio.sleep(self.settings.occupancy_poll_s)
            keys = list(self.feeds)
            if not keys:
                continue
            try:
                counters = await run_in_threadpool(self._counters, {k.store_id for k in keys})
                for key in keys:
                    feed = self.feeds.get(key)
                    if feed is None:
                        continue
                    stale = feed.snapshot is None or counters.get(key.store_id) != feed.snapshot.seq
                    if stale or asyncio.get_running_loop().time() >= feed.refresh_at:
                        feed.publish(await run_in_threadpool(self._read, key))
                        self._schedule(feed)
            except Exception:  # the database may be away for a while: streams keep their heartbeat
                log.warning("live occupancy: reading the database failed; retrying", exc_info=True)


def hub_for(app, sessions: sessionmaker[Session], settings: Settings) -> OccupancyHub:
    """The app's hub, made on first use (and told when the server shuts down)."""
    hub = getattr(app.state, HUB, None)
    if hub is None:
        hub = OccupancyHub(sessions, settings)
        setattr(app.state, HUB, hub)
        on_server_shutdown(app, hub.shutdown)
    return hub
