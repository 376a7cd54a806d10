"""Per-key token buckets kept in the database, so every replica spends from the same bucket.

Each request is one conditional ``UPDATE`` (refill, then take a token only if one is there) after an
``INSERT`` that creates a full bucket the first time; both run in one short transaction, and the
database's row lock serialises concurrent takes of one key across replicas.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from sqlalchemy import case, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.models import RateBucket

SECONDS_PER_MINUTE = 60.0


class SharedRateLimiter:
    """Token buckets refilled at ``per_minute`` a minute, holding at most ``per_minute``, stored in SQL.

    Same contract as ``service.core.rate_limit.RateLimiter``; ``per_minute`` 0 turns limiting off.
    Replicas should keep their clocks in sync (NTP): the refill uses each replica's wall clock.
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
