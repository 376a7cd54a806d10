"""Per-key request rate limits: token buckets in process memory or, shared by replicas, in the database.

Both limiters refill ``per_minute`` tokens a minute and hold at most ``per_minute`` (the burst);
``per_minute`` 0 turns limiting off. ``take`` answers 0 when the request may go ahead, else the whole
seconds until the bucket holds a token again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import case, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from service.storage.db import session_scope
from service.storage.models import RateBucket

SECONDS_PER_MINUTE = 60.0


class RateLimiter(Protocol):
    """What the API's authentication asks of a limiter."""

    @property
    def enabled(self) -> bool:
        """Whether any limit applies."""
        ...

    def take(self, key: str) -> int:
        """Spend one token of ``key``'s bucket; 0 when allowed, else whole seconds until the next token."""
        ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class MemoryRateLimiter:
    """Token buckets in this process's memory (one replica; a restart refills them). Thread-safe."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / SECONDS_PER_MINUTE
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether any limit applies."""
        return self.capacity > 0

    def take(self, key: str) -> int:
        """Spend one token of ``key``'s bucket; 0 when allowed, else whole seconds until the next token."""
        if not self.enabled:
            return 0
        with self._lock:
            now = self.clock()
            bucket = self._buckets.setdefault(key, _Bucket(self.capacity, now))
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0
            return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))


class DatabaseRateLimiter:
    """Token buckets in the ``rate_buckets`` table, so every replica spends from the same bucket.

    Each take is an INSERT of a full bucket the first time and one conditional UPDATE (refill, then take
    a token only if one is there) in one short transaction; the row lock serialises one key's takes
    across replicas. Refills use each replica's wall clock, so keep clocks in sync (NTP).
    """

    def __init__(
        self, sessions: sessionmaker[Session], per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.sessions = sessions
        self.capacity = float(per_minute)
        self.rate_per_ms = per_minute / SECONDS_PER_MINUTE / 1000.0
        self.clock = clock

    @property
    def enabled(self) -> bool:
        """Whether any limit applies."""
        return self.capacity > 0

    def _create_if_missing(self, session: Session, key: str, now_ms: int) -> None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        row = {"bucket": key, "tokens": self.capacity, "updated_ms": now_ms}
        session.execute(insert(RateBucket).values(**row).on_conflict_do_nothing(index_elements=["bucket"]))

    def take(self, key: str) -> int:
        """Spend one token of ``key``'s bucket; 0 when allowed, else whole seconds until the next token."""
        if not self.enabled:
            return 0
        now_ms = int(self.clock() * 1000)
        elapsed = case((RateBucket.updated_ms < now_ms, now_ms - RateBucket.updated_ms), else_=0)
        refilled = RateBucket.tokens + elapsed * literal(self.rate_per_ms)
        available = case((refilled > self.capacity, literal(self.capacity)), else_=refilled)
        with session_scope(self.sessions) as session:
            self._create_if_missing(session, key, now_ms)
            taken = session.execute(
                update(RateBucket)
                .where(RateBucket.bucket == key, available >= 1.0)
                .values(
                    tokens=available - 1.0,
                    updated_ms=case((elapsed > 0, now_ms), else_=RateBucket.updated_ms),
                )
            ).rowcount
            if taken:
                return 0
            left = session.execute(select(available).where(RateBucket.bucket == key)).scalar_one()
        return max(1, math.ceil((1.0 - left) / (self.rate_per_ms * 1000.0)))


def build_rate_limiter(backend: str, per_minute: int, sessions: sessionmaker[Session]) -> RateLimiter:
    """The limiter a setting names: ``memory`` (one process) or ``database`` (shared by replicas)."""
    if backend == "database":
        return DatabaseRateLimiter(sessions, per_minute)
    return MemoryRateLimiter(per_minute)
