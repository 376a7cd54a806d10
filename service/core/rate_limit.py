"""Per-key request rate limiting: one token bucket per key, held in process memory."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SECONDS_PER_MINUTE = 60.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets refilled at ``per_minute`` tokens a minute, holding at most ``per_minute`` (the burst).

    ``per_minute`` 0 turns limiting off. Thread-safe: the auth dependency runs in a thread pool.
    """

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
