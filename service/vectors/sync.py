"""Keeps the vector store in step with SQL (the source of truth) by a per-store sighting-id watermark.

At start each store's index is loaded from the index dir (if saved for this model version), stripped of
sightings deleted meanwhile, and caught up; otherwise rebuilt from SQL. Before every search the store is
caught up again, so replicas sharing one database see each other's sightings, and erasures made on any
replica (tombstones in ``deleted_sightings``, read by a second watermark) leave every replica's index.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from model.files import atomic_write_text
from service.metrics import INDEX_VECTORS
from service.storage.models import DeletedSighting, Sighting, Store
from service.vectors.base import Hit, VectorFilter, VectorStore

CATCH_UP_CHUNK = 5000
WATERMARK_FILE = "watermark.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexStatus:
    """What the indexes hold and how they were opened at start."""

    stores: int
    vectors: int
    loaded_from_disk: int
    rebuilt_from_sql: int


def version_dir(index_dir: Path, model_version: str) -> Path:
    """The folder of one model version's saved indexes."""
    return index_dir / re.sub(r"[^A-Za-z0-9_.-]", "_", model_version)


class IndexSync:
    """Watermarks, loading, rebuilding, catching up and saving of every store's vectors."""

    def __init__(
        self, vectors: VectorStore, sessions: sessionmaker[Session], model_version: str, index_dir: Path
    ) -> None:
        self.vectors = vectors
        self.sessions = sessions
        self.model_version = model_version
        self.root = version_dir(index_dir, model_version)
        self.watermarks: dict[int, int] = {}
        self.erased: dict[int, int] = {}
        self.started: dict[str, int] = {"loaded": 0, "rebuilt": 0}
        self.backend = type(vectors).__name__
        self._index_locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def _index_lock(self, store_id: int) -> threading.Lock:
        """The lock of one store's in-memory index and watermarks (never held while waiting for SQL)."""
        with self._guard:
            return self._index_locks.setdefault(store_id, threading.Lock())

    def store_dir(self, store_id: int) -> Path:
        """Where a store's index is saved."""
        return self.root / f"store_{store_id}"

    def start(self) -> dict[str, int]:
        """Load or rebuild every store's index; returns counts of loaded and rebuilt stores."""
        with self.sessions() as session:
            store_ids = list(session.scalars(select(Store.id)))
        loaded = sum(self.open_store(store_id) for store_id in store_ids)
        self.started = {"loaded": loaded, "rebuilt": len(store_ids) - loaded}
        return self.started

    def open_store(self, store_id: int) -> bool:
        """Load a store from disk (True) or rebuild it from SQL (False), then catch up."""
        self._mark_erasures(store_id)
        with self._index_lock(store_id):
            loaded = self._load(store_id)
            if not loaded:
                self.vectors.clear(store_id)
                self.watermarks[store_id] = 0
        with self.sessions() as session:
            if loaded:
                self._forget_deleted(session, store_id)
            self.catch_up(session, store_id)
        return loaded

    def _mark_erasures(self, store_id: int) -> None:
        """Skip tombstones written so far: a rebuild or a check against SQL is about to cover them."""
        with self.sessions() as session:
            last = session.scalar(
                select(func.max(DeletedSighting.id)).where(DeletedSighting.store_id == store_id)
            )
        self.erased[store_id] = int(last or 0)

    def _apply_erasures(self, session: Session, store_id: int) -> int:
        """Remove sightings erased (on any replica) since the tombstone watermark; returns how many."""
        mark = self.erased.get(store_id, 0)
        rows = session.execute(
            select(DeletedSighting.id, DeletedSighting.sighting_id)
            .where(DeletedSighting.store_id == store_id, DeletedSighting.id > mark)
            .order_by(DeletedSighting.id)
        ).all()
        if not rows:
            return 0
        with self._index_lock(store_id):
            removed = self.vectors.remove(store_id, np.array([r.sighting_id for r in rows], dtype=np.int64))
            self.erased[store_id] = max(self.erased.get(store_id, 0), int(rows[-1].id))
        return removed

    def _load(self, store_id: int) -> bool:
        meta_path = self.store_dir(store_id) / WATERMARK_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return False
        saved_by = (meta.get("model_version"), meta.get("backend"))
        if saved_by != (self.model_version, self.backend) or not self.vectors.load(
            store_id, self.store_dir(store_id)
        ):
            return False
        self.watermarks[store_id] = int(meta["watermark"])
        return True

    def _forget_deleted(self, session: Session, store_id: int) -> None:
        held = self.vectors.ids(store_id)
        if not len(held):
            return
        alive = np.fromiter(
            session.scalars(
                select(Sighting.id).where(Sighting.store_id == store_id, Sighting.id <= int(held.max()))
            ),
            dtype=np.int64,
        )
        gone = held[~np.isin(held, alive)]
        if len(gone):
            self.vectors.remove(store_id, gone)

    def catch_up(self, session: Session, store_id: int) -> int:
        """Add the store's sightings above the watermark (this model version), then drop erased ones.

        Returns how many were added. SQL is read without holding the index lock (so no thread ever waits
        for a database connection while holding it); adding and removing are idempotent, so racing
        catch-ups are harmless. Tombstones are read after the sightings, so an erasure that committed
        between the two reads is still applied.
        """
        added = 0
        while True:
            mark = self.watermarks.get(store_id, 0)
            rows = session.execute(
                select(Sighting.id, Sighting.captured_ms, Sighting.zone_id, Sighting.embedding)
                .where(
                    Sighting.store_id == store_id,
                    Sighting.id > mark,
                    Sighting.model_version == self.model_version,
                )
                .order_by(Sighting.id)
                .limit(CATCH_UP_CHUNK)
            ).all()
            if not rows:
                break
            ids = np.array([r.id for r in rows], dtype=np.int64)
            vectors = np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows])
            ms = np.array([r.captured_ms for r in rows], dtype=np.int64)
            zones = np.array([r.zone_id for r in rows], dtype=np.int64)
            with self._index_lock(store_id):
                added += self.vectors.add(store_id, ids, vectors, ms, zones)
                self.watermarks[store_id] = max(self.watermarks.get(store_id, 0), int(ids[-1]))
            if len(rows) < CATCH_UP_CHUNK:
                break
        self._apply_erasures(session, store_id)
        INDEX_VECTORS.labels(store=str(store_id)).set(self.vectors.size(store_id))
        return added

    def search(self, store_id: int, queries: np.ndarray, k: int, where: VectorFilter) -> list[list[Hit]]:
        """Best ``k`` hits per query among what is indexed now (call ``catch_up`` first for the latest)."""
        if where.store_id != store_id:
            raise ValueError(f"a search of store {store_id} must filter on that store")
        return self.vectors.search(queries, k, where)

    def search_caught_up(
        self, session: Session, store_id: int, queries: np.ndarray, k: int, where: VectorFilter
    ) -> list[list[Hit]]:
        """Catch the store up with SQL (sightings and erasures), then search it."""
        self.catch_up(session, store_id)
        return self.search(store_id, queries, k, where)

    def indexed_ids(self, store_id: int) -> np.ndarray:
        """The sighting ids the store's index holds now."""
        return self.vectors.ids(store_id)

    def status(self) -> IndexStatus:
        """Stores and vectors held, and how the indexes were opened at start."""
        return IndexStatus(
            stores=len(self.watermarks),
            vectors=self.vectors.size(),
            loaded_from_disk=self.started["loaded"],
            rebuilt_from_sql=self.started["rebuilt"],
        )

    def remove(self, store_id: int, ids: list[int]) -> None:
        """Drop deleted sightings from the index."""
        with self._index_lock(store_id):
            self.vectors.remove(store_id, np.asarray(ids, dtype=np.int64))
        INDEX_VECTORS.labels(store=str(store_id)).set(self.vectors.size(store_id))

    def rebuild(self, store_id: int) -> int:
        """Forget a store's vectors and re-read them all from SQL."""
        self._mark_erasures(store_id)
        with self._index_lock(store_id):
            self.vectors.clear(store_id)
            self.watermarks[store_id] = 0
        with self.sessions() as session:
            return self.catch_up(session, store_id)

    def drop_before(self, cutoff_ms: int) -> int:
        """Retention: drop the day shards that end by the cutoff (a UTC midnight) in every store."""
        dropped = 0
        for store_id in list(self.watermarks):
            with self._index_lock(store_id):
                dropped += self.vectors.drop_before(store_id, cutoff_ms)
        return dropped

    def refresh_all(self) -> int:
        """Catch every known store up with SQL (new sightings and erasures); returns vectors added."""
        added = 0
        with self.sessions() as session:
            for store_id in session.scalars(select(Store.id)):
                added += self.catch_up(session, store_id)
        return added

    def save(self) -> None:
        """Save every store's shards, then its watermark (written last, atomically)."""
        for store_id in list(self.watermarks):
            directory = self.store_dir(store_id)
            with self._index_lock(store_id):
                self.vectors.save(store_id, directory)
                meta = {
                    "model_version": self.model_version,
                    "backend": self.backend,
                    "watermark": self.watermarks[store_id],
                }
            atomic_write_text(directory / WATERMARK_FILE, json.dumps(meta))
        log.info("saved indexes of %d stores to %s", len(self.watermarks), self.root)
