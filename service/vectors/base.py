"""The vector-store interface every backend implements (FAISS in process, Milvus past one machine)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


class SavedStateError(ValueError):
    """Saved vectors exist but cannot be used (unreadable, ill-formed or inconsistent): rebuild from SQL."""


@dataclass(frozen=True)
class VectorFilter:
    """Which vectors a search may return: one store, a capture-time range (ms, half-open), a zone."""

    store_id: int
    min_ms: int | None = None
    max_ms: int | None = None
    zone_id: int | None = None

    def mask(self, captured_ms: np.ndarray, zone_ids: np.ndarray) -> np.ndarray:
        """Boolean mask of the vectors (given their capture times and zones) that pass the filter."""
        passed = np.ones(len(captured_ms), dtype=bool)
        if self.min_ms is not None:
            passed &= captured_ms >= self.min_ms
        if self.max_ms is not None:
            passed &= captured_ms < self.max_ms
        if self.zone_id is not None:
            passed &= zone_ids == self.zone_id
        return passed


@dataclass(frozen=True)
class Hit:
    """One search result: a sighting id and its inner-product similarity."""

    sighting_id: int
    similarity: float


class VectorStore(Protocol):
    """Add, remove, search (filtered), persist and drop whole retention shards."""

    def add(
        self,
        store_id: int,
        ids: np.ndarray,
        vectors: np.ndarray,
        captured_ms: np.ndarray,
        zone_ids: np.ndarray,
    ) -> int:
        """Add vectors in increasing id order, skipping ids already present; returns how many were added."""
        ...

    def remove(self, store_id: int, ids: np.ndarray) -> int:
        """Remove vectors by id; returns how many were removed."""
        ...

    def search(self, queries: np.ndarray, k: int, where: VectorFilter) -> list[list[Hit]]:
        """Best ``k`` hits per query among the vectors that pass ``where``, most similar first."""
        ...

    def drop_before(self, store_id: int, cutoff_ms: int) -> int:
        """Drop every shard that holds only vectors captured before ``cutoff_ms``; returns vectors dropped."""
        ...

    def clear(self, store_id: int) -> None:
        """Forget every vector of a store."""
        ...

    def ids(self, store_id: int) -> np.ndarray:
        """Every id held for a store."""
        ...

    def size(self, store_id: int | None = None) -> int:
        """Number of vectors held, for one store or all."""
        ...

    def save(self, store_id: int, directory: Path) -> None:
        """Persist a store's vectors under ``directory``."""
        ...

    def load(self, store_id: int, directory: Path) -> bool:
        """Replace a store's vectors with the saved ones; False when nothing (for this store) was saved.

        Raises ``SavedStateError`` naming the problem when saved files are there but unreadable or
        ill-formed; the store's vectors are left as they were either way.
        """
        ...
