"""Keeps the vector store in step with SQL (the source of truth) by a per-store sighting-id watermark.

At start each store's index is loaded from the index dir (if saved for this model version and every
saved file is well-formed), checked against SQL and caught up; otherwise rebuilt from SQL. Before every
search the store is caught up again, so replicas sharing one database see each other's sightings, and
erasures made on any replica (tombstones in ``deleted_sightings``, read by a second watermark) leave
every replica's index.

An index belongs to one database history. Restoring a backup sends ids back (SQLite's
``sqlite_sequence`` and PostgreSQL's sequences are restored with the rows), so an index made before the
restore may hold vectors under ids that now name other sightings, and its watermark may hide new ones.
Each store therefore keeps a few *anchors*: the last sightings it read, each with a fingerprint of its
capture time, zone, model and embedding. Every catch-up reads them again with the new rows (one query:
``id >= the first anchor``) and the tombstone at the tombstone watermark with the new tombstones. A
sighting below the watermark that is not an anchor, an anchor whose fingerprint changed, anchors gone
without a tombstone while SQL's id sequence is below the watermark, or a changed or vanished tombstone
with the sequence below its watermark: the store's index is rebuilt from SQL (always safe, just slower),
and the reason is logged at WARNING. At start the loaded index is also compared with the ids SQL holds.

Catch-up reads the sightings of every model version (embeddings only of the current one), so the sync
also knows how many sightings per store the current model cannot search (``coverage``,
``other_model_sightings``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shutil
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import case, func, null, select, text
from sqlalchemy.orm import Session, sessionmaker

from model.files import atomic_write_text
from service.common.phases import phase
from service.metrics import INDEX_REBUILDS, set_index_vectors
from service.storage.models import DeletedSighting, Sighting, Store
from service.vectors.base import Hit, VectorFilter, VectorStore

CATCH_UP_CHUNK = 5000
WATERMARK_FILE = "watermark.json"
META_FORMAT = 2
ANCHORS = 4
FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
SQLITE_HAS_SEQUENCES = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
PG_SEQUENCE_VALUE = "SELECT pg_sequence_last_value(CAST(pg_get_serial_sequence(:name, 'id') AS regclass))"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexStatus:
    """What the indexes hold and how they were opened at start (and rebuilt since)."""

    stores: int
    vectors: int
    loaded_from_disk: int
    rebuilt_from_sql: int
    rebuilt_while_running: int


@dataclass(frozen=True)
class ModelCoverage:
    """Sightings per model version; only the current model's can be searched and linked."""

    model_version: str
    by_model: dict[str, int]

    @property
    def searchable(self) -> int:
        """Sightings embedded by the current model (what the indexes hold)."""
        return self.by_model.get(self.model_version, 0)

    @property
    def unsearchable(self) -> int:
        """Sightings embedded by other model versions: in SQL (and density) but not searchable."""
        return sum(count for model, count in self.by_model.items() if model != self.model_version)


@dataclass(frozen=True)
class Anchor:
    """A sighting the index has read, and the fingerprint it had then."""

    sighting_id: int
    fingerprint: str


@dataclass
class _Span:
    """How many sightings of one other model a store holds, and their capture-time range."""

    count: int
    min_ms: int
    max_ms: int

    def add(self, ms: int, count: int = 1) -> None:
        self.count += count
        self.min_ms, self.max_ms = min(self.min_ms, ms), max(self.max_ms, ms)

    def meets(self, where: VectorFilter) -> bool:
        """Whether some of these sightings may pass the filter's time range."""
        return (where.min_ms is None or self.max_ms >= where.min_ms) and (
            where.max_ms is None or self.min_ms < where.max_ms
        )


@dataclass
class _Store:
    """The sync's state of one store (guarded by the store's index lock)."""

    watermark: int = 0
    anchors: list[Anchor] = field(default_factory=list)
    erased: int = 0
    erased_sighting: int | None = None
    generation: int = 0
    size: int = 0
    other: dict[str, _Span] = field(default_factory=dict)
    other_stale: bool = False
    counting: list[tuple[int, str, int]] | None = None


def fingerprint(captured_ms: int, zone_id: int, model_version: str, embedding: bytes | None) -> str:
    """What identifies a sighting row's content: capture time, zone, model and embedding."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(struct.pack("<qq", int(captured_ms), int(zone_id)))
    digest.update(model_version.encode() + b"\0")
    digest.update(bytes(embedding or b""))
    return digest.hexdigest()


def version_dir(index_dir: Path, model_version: str) -> Path:
    """The folder of one model version's saved indexes."""
    return index_dir / re.sub(r"[^A-Za-z0-9_.-]", "_", model_version)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_meta(raw: str, model_version: str, backend: str) -> tuple[int, list[Anchor]]:
    """The watermark and anchors of a saved ``watermark.json``; ValueError naming what is wrong."""
    meta = json.loads(raw)
    if not isinstance(meta, dict):
        raise ValueError(f"{WATERMARK_FILE} holds {type(meta).__name__}, not an object")
    if meta.get("format") != META_FORMAT or not _is_int(meta.get("format")):
        raise ValueError(f"{WATERMARK_FILE}: format {meta.get('format')!r}, expected {META_FORMAT}")
    saved_by = (meta.get("model_version"), meta.get("backend"))
    if saved_by != (model_version, backend):
        raise ValueError(f"saved by {saved_by}, this process runs {(model_version, backend)}")
    watermark, anchors = meta.get("watermark"), meta.get("anchors")
    if not _is_int(watermark) or watermark < 0:
        raise ValueError(f"{WATERMARK_FILE}: watermark {watermark!r} is not a count")
    if not isinstance(anchors, list) or len(anchors) > ANCHORS:
        raise ValueError(f"{WATERMARK_FILE}: anchors must be a list of at most {ANCHORS}")
    parsed = []
    for item in anchors:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and _is_int(item[0])
            and 0 < item[0] <= watermark
            and isinstance(item[1], str)
            and FINGERPRINT.match(item[1])
        ):
            raise ValueError(f"{WATERMARK_FILE}: ill-formed anchor {item!r:.80}")
        parsed.append(Anchor(item[0], item[1]))
    if any(b.sighting_id <= a.sighting_id for a, b in zip(parsed, parsed[1:], strict=False)):
        raise ValueError(f"{WATERMARK_FILE}: anchors are not in increasing id order")
    if watermark and not parsed:
        raise ValueError(f"{WATERMARK_FILE}: watermark {watermark} without anchors cannot be checked")
    return watermark, parsed


class IndexSync:
    """Watermarks, loading, checking, rebuilding, catching up and saving of every store's vectors."""

    def __init__(
        self, vectors: VectorStore, sessions: sessionmaker[Session], model_version: str, index_dir: Path
    ) -> None:
        self.vectors = vectors
        self.sessions = sessions
        self.model_version = model_version
        self.root = version_dir(index_dir, model_version)
        self.started: dict[str, int] = {"loaded": 0, "rebuilt": 0}
        self.rebuilt_while_running = 0
        self.backend = type(vectors).__name__
        self._stores: dict[int, _Store] = {}
        self._index_locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    # ---- per-store state ------------------------------------------------------------------------

    def _index_lock(self, store_id: int) -> threading.Lock:
        """The lock of one store's in-memory index and state (never held while waiting for SQL)."""
        with self._guard:
            return self._index_locks.setdefault(store_id, threading.Lock())

    def _state(self, store_id: int) -> _Store:
        """The store's sync state (call with its index lock held)."""
        with self._guard:
            return self._stores.setdefault(store_id, _Store())

    @property
    def watermarks(self) -> dict[int, int]:
        """Each known store's sighting watermark (a copy)."""
        with self._guard:
            return {store_id: state.watermark for store_id, state in self._stores.items()}

    def store_dir(self, store_id: int) -> Path:
        """Where a store's index is saved."""
        return self.root / f"store_{store_id}"

    # ---- start -------------------------------------------------------------------------------------

    def start(self) -> dict[str, int]:
        """Load or rebuild every store's index; returns counts of loaded and rebuilt stores."""
        with self.sessions() as session:
            store_ids = list(session.scalars(select(Store.id)))
        loaded = sum(self.open_store(store_id) for store_id in store_ids)
        self.started = {"loaded": loaded, "rebuilt": len(store_ids) - loaded}
        self.rebuilt_while_running = 0
        self._log_coverage()
        return self.started

    def open_store(self, store_id: int) -> bool:
        """Load a store from disk and check it against SQL (True), or rebuild it from SQL (False)."""
        with self.sessions() as session:
            self._mark_erasures(session, store_id)
            loaded, problem = self._load(store_id)
            if loaded:
                problem = self._reconcile(session, store_id)
            if problem is not None:
                log.warning("store %d: %s; rebuilding its index from SQL", store_id, problem)
                INDEX_REBUILDS.labels(reason="saved index unusable").inc()
            if not loaded or problem is not None:
                self._clear(store_id)
                loaded = False
            with self._index_lock(store_id):
                generation = self._state(store_id).generation
            self.catch_up(session, store_id)
            with self._index_lock(store_id):
                return loaded and self._state(store_id).generation == generation

    def _load(self, store_id: int) -> tuple[bool, str | None]:
        """Read the saved watermark, anchors and vectors; (False, why) when they cannot be used."""
        directory = self.store_dir(store_id)
        meta_path = directory / WATERMARK_FILE
        if not meta_path.exists():
            return False, (f"{directory} holds no {WATERMARK_FILE}" if directory.exists() else None)
        try:
            watermark, anchors = parse_meta(
                meta_path.read_text(encoding="utf-8"), self.model_version, self.backend
            )
            with self._index_lock(store_id):
                if not self.vectors.load(store_id, directory):
                    return False, f"the vectors saved in {directory} are gone (rebuilt elsewhere?)"
                state = self._state(store_id)
                state.watermark, state.anchors = watermark, anchors
        except Exception as exc:  # any unreadable or ill-formed saved file means: rebuild from SQL
            return False, f"saved index in {directory} is unusable ({type(exc).__name__}: {exc})"
        return True, None

    def _reconcile(self, session: Session, store_id: int) -> str | None:
        """Drop vectors of sightings deleted while stopped; count other models; why not, if SQL disagrees.

        The saved index must hold every sighting of this model up to its watermark that SQL holds: the
        ids (an index-only read) less other models' sightings (one count) must be what is left loaded.
        """
        with self._index_lock(store_id):
            mark = self._state(store_id).watermark
        alive = np.fromiter(
            session.scalars(select(Sighting.id).where(Sighting.store_id == store_id, Sighting.id <= mark)),
            dtype=np.int64,
        )
        spans = self._count_other(session, store_id, mark)
        held = self.vectors.ids(store_id)
        gone = held[~np.isin(held, alive)]
        expected = len(alive) - sum(span.count for span in spans.values())
        if len(held) - len(gone) != expected:
            return (
                f"SQL holds {expected} sightings of this model up to the watermark {mark}, "
                f"the saved index {len(held) - len(gone)}"
            )
        with self._index_lock(store_id):
            if len(gone):
                self.vectors.remove(store_id, gone)
            self._state(store_id).other = spans
        return None

    def _count_other(self, session: Session, store_id: int, mark: int) -> dict[str, _Span]:
        """The store's sightings up to ``mark`` embedded by other model versions, per version."""
        rows = session.execute(
            select(
                Sighting.model_version,
                func.count(),
                func.min(Sighting.captured_ms),
                func.max(Sighting.captured_ms),
            )
            .where(
                Sighting.store_id == store_id,
                Sighting.id <= mark,
                Sighting.model_version != self.model_version,
            )
            .group_by(Sighting.model_version)
        ).all()
        return {row[0]: _Span(int(row[1]), int(row[2]), int(row[3])) for row in rows}

    # ---- erasures ------------------------------------------------------------------------------------

    def _mark_erasures(self, session: Session, store_id: int) -> None:
        """Skip tombstones written so far: a rebuild or a check against SQL is about to cover them."""
        last = session.execute(
            select(DeletedSighting.id, DeletedSighting.sighting_id)
            .where(DeletedSighting.store_id == store_id)
            .order_by(DeletedSighting.id.desc())
            .limit(1)
        ).first()
        with self._index_lock(store_id):
            state = self._state(store_id)
            state.erased, state.erased_sighting = (int(last[0]), int(last[1])) if last else (0, None)

    def _apply_erasures(self, session: Session, store_id: int, check: bool) -> str | None:
        """Remove sightings erased (on any replica) since the tombstone watermark; why not, if SQL changed.

        With ``check``, the tombstone at the watermark is read too: gone while SQL's tombstone ids end
        below it, or naming another sighting, means the database is not the one this index followed.
        """
        with self._index_lock(store_id):
            state = self._state(store_id)
            mark, anchor, generation = state.erased, state.erased_sighting, state.generation
        check = check and mark > 0 and anchor is not None
        rows = session.execute(
            select(DeletedSighting.id, DeletedSighting.sighting_id)
            .where(DeletedSighting.store_id == store_id, DeletedSighting.id >= (mark if check else mark + 1))
            .order_by(DeletedSighting.id)
        ).all()
        if check:
            if rows and rows[0].id == mark:
                if rows[0].sighting_id != anchor:
                    return f"tombstone {mark} now names sighting {rows[0].sighting_id}, not {anchor}"
                rows = rows[1:]
            else:
                high = self._highest_id(session, DeletedSighting)
                if high < mark:
                    return f"tombstone ids in SQL end at {high}, below the index's tombstone watermark {mark}"
                with self._index_lock(store_id):
                    if self._state(store_id).erased == mark:
                        self._state(store_id).erased_sighting = None  # aged out (kept 7 days)
        if not rows:
            return None
        erased = np.array([r.sighting_id for r in rows], dtype=np.int64)
        with self._index_lock(store_id):
            state = self._state(store_id)
            if state.generation != generation:
                return None
            self.vectors.remove(store_id, erased)
            if rows[-1].id > state.erased:
                state.erased, state.erased_sighting = int(rows[-1].id), int(rows[-1].sighting_id)
            gone = set(erased.tolist())
            state.anchors = [a for a in state.anchors if a.sighting_id not in gone]
            state.other_stale = state.other_stale or bool(state.other)
        return None

    def _highest_id(self, session: Session, table: type[Sighting] | type[DeletedSighting]) -> int:
        """The highest id SQL has handed out for a table (its sequence), or its highest id when unknown."""
        name = table.__tablename__
        dialect = session.get_bind().dialect.name
        value: Any = None
        if dialect == "sqlite" and session.scalar(text(SQLITE_HAS_SEQUENCES)):
            value = session.scalar(text("SELECT seq FROM sqlite_sequence WHERE name = :name"), {"name": name})
        elif dialect == "postgresql":
            value = session.scalar(text(PG_SEQUENCE_VALUE), {"name": name})
        if value is None:
            value = session.scalar(select(func.max(table.id)))
        return int(value or 0)

    # ---- catching up ---------------------------------------------------------------------------------

    def _rows_from(self, session: Session, store_id: int, low: int) -> list[Any]:
        """The store's sightings from id ``low`` on, every model (embeddings only of the current one)."""
        current = Sighting.model_version == self.model_version
        return list(
            session.execute(
                select(
                    Sighting.id,
                    Sighting.captured_ms,
                    Sighting.zone_id,
                    Sighting.model_version,
                    case((current, Sighting.embedding), else_=null()).label("embedding"),
                )
                .where(Sighting.store_id == store_id, Sighting.id >= low)
                .order_by(Sighting.id)
                .limit(CATCH_UP_CHUNK)
            ).all()
        )

    def _check_anchors(
        self, session: Session, store_id: int, rows: list[Any], anchors: list[Anchor], mark: int
    ) -> str | None:
        """Why the store's index does not belong to this database, or None when the anchors hold."""
        if not anchors:
            high = self._highest_id(session, Sighting) if mark else mark
            return None if high >= mark else f"sighting ids in SQL end at {high}, below the watermark {mark}"
        expected = {a.sighting_id: a.fingerprint for a in anchors}
        present = set()
        for row in rows:
            if row.id > mark:
                break
            if expected.get(row.id) is None:
                return f"sighting {row.id} appeared below the watermark {mark}"
            if expected[row.id] != fingerprint(
                row.captured_ms, row.zone_id, row.model_version, row.embedding
            ):
                return f"sighting {row.id} in SQL is not the sighting the index read under that id"
            present.add(row.id)
        missing = [a.sighting_id for a in anchors if a.sighting_id not in present]
        if not missing:
            if anchors[-1].sighting_id < mark and self._highest_id(session, Sighting) < mark:
                return f"sighting ids in SQL end below the watermark {mark}"
            return None
        tombstoned = set(
            session.scalars(
                select(DeletedSighting.sighting_id).where(
                    DeletedSighting.store_id == store_id, DeletedSighting.sighting_id.in_(missing)
                )
            )
        )
        unexplained = [i for i in missing if i not in tombstoned]
        if unexplained:
            high = self._highest_id(session, Sighting)
            if high < mark:
                return f"sighting ids in SQL end at {high}, below the watermark {mark} (an older backup?)"
            if not present:
                return f"none of the last sightings the index read ({unexplained}) is in SQL"
        with self._index_lock(store_id):
            state = self._state(store_id)
            state.anchors = [a for a in state.anchors if a.sighting_id not in set(missing)]
            state.other_stale = state.other_stale or bool(state.other)
        return None

    def _index_rows(self, store_id: int, rows: list[Any], generation: int) -> int:
        """Add the current model's rows above the watermark, count the other models', move the anchors."""
        if not rows:
            return 0
        current = [r for r in rows if r.model_version == self.model_version]
        ids = np.array([r.id for r in current], dtype=np.int64)
        vectors = (
            np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in current]) if current else None
        )
        ms = np.array([r.captured_ms for r in current], dtype=np.int64)
        zones = np.array([r.zone_id for r in current], dtype=np.int64)
        with self._index_lock(store_id):
            state = self._state(store_id)
            if state.generation != generation or rows[-1].id <= state.watermark:
                return 0
            fresh = ids > state.watermark
            added = (
                self.vectors.add(store_id, ids[fresh], vectors[fresh], ms[fresh], zones[fresh])
                if fresh.any()
                else 0
            )
            others = [r for r in rows if r.id > state.watermark and r.model_version != self.model_version]
            for row in others:
                state.other.setdefault(row.model_version, _Span(0, row.captured_ms, row.captured_ms)).add(
                    row.captured_ms
                )
                if state.counting is not None:
                    state.counting.append((row.id, row.model_version, row.captured_ms))
            news = [
                Anchor(r.id, fingerprint(r.captured_ms, r.zone_id, r.model_version, r.embedding))
                for r in rows[-ANCHORS:]
                if r.id > state.watermark
            ]
            state.anchors = (state.anchors + news)[-ANCHORS:]
            state.watermark = int(rows[-1].id)
        return added

    def _top_up_anchors(self, session: Session, store_id: int) -> None:
        """Anchor a store whose anchors were all deleted on its newest sightings still in SQL."""
        with self._index_lock(store_id):
            state = self._state(store_id)
            if state.anchors or not state.watermark:
                return
            mark, generation = state.watermark, state.generation
        current = Sighting.model_version == self.model_version
        rows = session.execute(
            select(
                Sighting.id,
                Sighting.captured_ms,
                Sighting.zone_id,
                Sighting.model_version,
                case((current, Sighting.embedding), else_=null()).label("embedding"),
            )
            .where(Sighting.store_id == store_id, Sighting.id <= mark)
            .order_by(Sighting.id.desc())
            .limit(ANCHORS)
        ).all()
        with self._index_lock(store_id):
            state = self._state(store_id)
            if state.generation == generation and not state.anchors and state.watermark == mark:
                state.anchors = [
                    Anchor(r.id, fingerprint(r.captured_ms, r.zone_id, r.model_version, r.embedding))
                    for r in reversed(rows)
                ]

    def catch_up(self, session: Session, store_id: int) -> int:
        """Check the store's index still belongs to this database, add its new sightings, drop erased ones.

        Returns how many vectors were added. A failed check rebuilds the store from SQL (logged at
        WARNING). SQL is read without holding the index lock (so no thread ever waits for a database
        connection while holding it); adding and removing are idempotent and a rebuild starts a new
        generation that racing catch-ups cannot write into. Tombstones are read after the sightings, so
        an erasure that committed between the two reads is still applied.
        """
        added, problem = self._catch_up_once(session, store_id, check=True)
        if problem is not None:
            self._reset(session, store_id, problem)
            added, _ = self._catch_up_once(session, store_id, check=False)
        self._top_up_anchors(session, store_id)
        self._publish_size(store_id)
        return added

    def _catch_up_once(self, session: Session, store_id: int, check: bool) -> tuple[int, str | None]:
        """One pass: (with ``check``) test the anchors, add the new sightings, apply the new tombstones."""
        added, first = 0, True
        while True:
            with self._index_lock(store_id):
                state = self._state(store_id)
                mark, anchors, generation = state.watermark, list(state.anchors), state.generation
            verify = check and first
            rows = self._rows_from(
                session, store_id, anchors[0].sighting_id if verify and anchors else mark + 1
            )
            if verify:
                problem = self._check_anchors(session, store_id, rows, anchors, mark)
                if problem is not None:
                    return added, problem
            first = False
            added += self._index_rows(store_id, rows, generation)
            if len(rows) < CATCH_UP_CHUNK:
                break
        return added, self._apply_erasures(session, store_id, check=check)

    def _clear(self, store_id: int) -> None:
        """Forget a store's vectors and state; a new generation, so racing catch-ups write nothing."""
        with self._index_lock(store_id):
            state = self._state(store_id)
            self.vectors.clear(store_id)
            state.watermark, state.anchors, state.other, state.other_stale = 0, [], {}, False
            state.counting = None
            state.generation += 1

    def _reset(self, session: Session, store_id: int, problem: str) -> None:
        """Rebuild a store whose index does not belong to this database (the caller catches up)."""
        log.warning("store %d: %s; rebuilding its index from SQL", store_id, problem)
        INDEX_REBUILDS.labels(reason="database changed").inc()
        self.rebuilt_while_running += 1
        self._mark_erasures(session, store_id)
        self._clear(store_id)

    def _publish_size(self, store_id: int) -> None:
        size = self.vectors.size(store_id)
        with self._index_lock(store_id):
            self._state(store_id).size = size
        with self._guard:
            sizes = {sid: state.size for sid, state in self._stores.items()}
        set_index_vectors(store_id, size, sum(sizes.values()))

    # ---- searching -----------------------------------------------------------------------------------

    def search(self, store_id: int, queries: np.ndarray, k: int, where: VectorFilter) -> list[list[Hit]]:
        """Best ``k`` hits per query among what is indexed now (call ``catch_up`` first for the latest)."""
        if where.store_id != store_id:
            raise ValueError(f"a search of store {store_id} must filter on that store")
        return self.vectors.search(queries, k, where)

    def search_caught_up(
        self, session: Session, store_id: int, queries: np.ndarray, k: int, where: VectorFilter
    ) -> list[list[Hit]]:
        """Catch the store up with SQL (sightings and erasures), then search it (phases ``search.catch-up``
        and ``search.index``, parts of the caller's ``search``)."""
        with phase("search.catch-up"):
            self.catch_up(session, store_id)
        with phase("search.index"):
            return self.search(store_id, queries, k, where)

    def other_model_sightings(self, session: Session, where: VectorFilter) -> int:
        """Sightings that pass ``where`` in SQL but were embedded by another model (so no search finds them).

        Exact; SQL is asked only when the store holds sightings of another model in the time range.
        """
        store_id = where.store_id
        with self._index_lock(store_id):
            spans = list(self._state(store_id).other.values())
        if not any(span.meets(where) for span in spans):
            return 0
        query = select(func.count()).where(
            Sighting.store_id == store_id, Sighting.model_version != self.model_version
        )
        if where.min_ms is not None:
            query = query.where(Sighting.captured_ms >= where.min_ms)
        if where.max_ms is not None:
            query = query.where(Sighting.captured_ms < where.max_ms)
        if where.zone_id is not None:
            query = query.where(Sighting.zone_id == where.zone_id)
        return int(session.scalar(query) or 0)

    def coverage(self) -> ModelCoverage:
        """Sightings per model version: the current one's are the vectors held, others' counted from SQL.

        Others' counts grow as catch-ups read new sightings; after deletions (erasure, retention,
        re-embedding) the store's count is taken again from SQL here.
        """
        with self._guard:
            stale = [sid for sid, state in self._stores.items() if state.other_stale]
        for store_id in stale:
            self._recount(store_id)
        by_model: dict[str, int] = {self.model_version: 0}
        with self._guard:
            states = list(self._stores.values())
        for state in states:
            by_model[self.model_version] += state.size
            for model, span in list(state.other.items()):
                by_model[model] = by_model.get(model, 0) + span.count
        return ModelCoverage(self.model_version, by_model)

    def _recount(self, store_id: int) -> None:
        with self._index_lock(store_id):
            state = self._state(store_id)
            mark, generation = state.watermark, state.generation
            state.counting, state.other_stale = [], False
        try:
            with self.sessions() as session:
                spans = self._count_other(session, store_id, mark)
        except Exception:
            with self._index_lock(store_id):
                self._state(store_id).counting, self._state(store_id).other_stale = None, True
            raise
        with self._index_lock(store_id):
            state = self._state(store_id)
            if state.generation == generation and state.counting is not None:
                for sighting_id, model, ms in state.counting:
                    if sighting_id > mark:
                        spans.setdefault(model, _Span(0, ms, ms)).add(ms)
                state.other = spans
            state.counting = None

    def _log_coverage(self) -> None:
        coverage = self.coverage()
        log.info("sightings by model version: %s (current: %s)", coverage.by_model, self.model_version)
        if coverage.unsearchable:
            log.warning(
                "%d sightings were embedded by other model versions (%s) and cannot be searched or linked "
                "by model %s; re-embed them from kept crops with `reid-admin reembed`, or let retention "
                "age them out (README: Changing the model)",
                coverage.unsearchable,
                ", ".join(m for m in coverage.by_model if m != self.model_version),
                self.model_version,
            )

    # ---- status and upkeep ---------------------------------------------------------------------------

    def indexed_ids(self, store_id: int) -> np.ndarray:
        """The sighting ids the store's index holds now."""
        return self.vectors.ids(store_id)

    def status(self) -> IndexStatus:
        """Stores and vectors held, how the indexes were opened at start, and rebuilds since."""
        return IndexStatus(
            stores=len(self.watermarks),
            vectors=self.vectors.size(),
            loaded_from_disk=self.started["loaded"],
            rebuilt_from_sql=self.started["rebuilt"],
            rebuilt_while_running=self.rebuilt_while_running,
        )

    def remove(self, store_id: int, ids: list[int]) -> None:
        """Drop deleted sightings from the index."""
        gone = set(ids)
        with self._index_lock(store_id):
            self.vectors.remove(store_id, np.asarray(ids, dtype=np.int64))
            state = self._state(store_id)
            state.anchors = [a for a in state.anchors if a.sighting_id not in gone]
            state.other_stale = state.other_stale or bool(state.other)
        self._publish_size(store_id)

    def rebuild(self, store_id: int) -> int:
        """Forget a store's vectors and re-read them all from SQL."""
        with self.sessions() as session:
            self._mark_erasures(session, store_id)
            self._clear(store_id)
            return self.catch_up(session, store_id)

    def drop_before(self, cutoff_ms: int) -> int:
        """Retention: drop the day shards that end by the cutoff (a UTC midnight) in every store."""
        dropped = 0
        for store_id in list(self.watermarks):
            with self._index_lock(store_id):
                dropped += self.vectors.drop_before(store_id, cutoff_ms)
                state = self._state(store_id)
                state.other_stale = state.other_stale or bool(state.other)
            self._publish_size(store_id)
        return dropped

    def refresh_all(self) -> int:
        """Catch every known store up with SQL (new sightings and erasures); returns vectors added."""
        added = 0
        with self.sessions() as session:
            for store_id in session.scalars(select(Store.id)).all():
                added += self.catch_up(session, store_id)
        return added

    def save(self) -> None:
        """Save every store's shards, then its watermark and anchors (written last, atomically).

        A store that cannot be saved (a full disk, a file in the way) is logged and its watermark file
        removed, so the next start rebuilds it from SQL; the others are saved all the same.
        """
        saved = 0
        for store_id in list(self.watermarks):
            directory = self.store_dir(store_id)
            meta_path = directory / WATERMARK_FILE
            try:
                if meta_path.is_dir():
                    shutil.rmtree(meta_path)
                with self._index_lock(store_id):
                    self.vectors.save(store_id, directory)
                    state = self._state(store_id)
                    meta = {
                        "format": META_FORMAT,
                        "model_version": self.model_version,
                        "backend": self.backend,
                        "watermark": state.watermark,
                        "anchors": [[a.sighting_id, a.fingerprint] for a in state.anchors],
                    }
                atomic_write_text(meta_path, json.dumps(meta))
                saved += 1
            except OSError as exc:
                log.warning(
                    "store %d: index not saved (%s); the next start rebuilds it from SQL", store_id, exc
                )
                with contextlib.suppress(OSError):
                    meta_path.unlink()
        log.info("saved indexes of %d stores to %s", saved, self.root)
