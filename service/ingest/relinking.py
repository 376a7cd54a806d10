"""Re-linking: cluster a store's recent sightings with the whole window in view and move what moved.

Online linking decides each crop or track once, on what came before it. A pass over the window sees
every crop at once: tracks stay whole, the place rules forbid impossible pairs, and average-linkage
clustering groups the rest. Each new cluster keeps the visitor that held most of its sightings; a
cluster left without one gets a new visitor (a split). Every move is logged in ``link_events`` and
density, which reads each sighting's visitor, follows at once; who is staff is decided again for every
visitor whose sightings moved.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.ingest.clustering import cluster_units
from service.ingest.linking import LinkSettings, span_of
from service.ingest.places import hours_apart_matrix
from service.ingest.units import Crops, group_units
from service.storage.db import session_scope
from service.storage.locks import StoreWriteQueue, lock_store_row
from service.storage.models import LinkEvent, Sighting, Visitor
from service.storage.staff import decide_staff

RELINKED = "relinked"
MERGE = "merge"
SPLIT = "split"


@dataclass(frozen=True)
class RelinkResult:
    """What one pass looked at and changed."""

    sightings: int = 0
    units: int = 0
    moved: int = 0
    merges: int = 0
    splits: int = 0
    visitors_before: int = 0
    visitors_after: int = 0


@dataclass(frozen=True)
class _Row:
    id: int
    visitor_id: int
    camera_id: int
    zone_id: int
    track_id: str | None
    captured_ms: int
    embedding: bytes


def _read_window(
    session: Session, store_id: int, model_version: str, start_ms: int, end_ms: int, limit: int
) -> list[_Row]:
    """The window's sightings of the current model, the most recent ``limit`` of them, oldest first."""
    rows = session.execute(
        select(
            Sighting.id,
            Sighting.visitor_id,
            Sighting.camera_id,
            Sighting.zone_id,
            Sighting.track_id,
            Sighting.captured_ms,
            Sighting.embedding,
        )
        .where(
            Sighting.store_id == store_id,
            Sighting.model_version == model_version,
            Sighting.captured_ms >= start_ms,
            Sighting.captured_ms < end_ms,
        )
        .order_by(Sighting.captured_ms.desc(), Sighting.id.desc())
        .limit(limit)
    ).all()
    return [_Row(*row) for row in reversed(rows)]


def plan_visitors(clusters: np.ndarray, current: list[int]) -> list[int | None]:
    """Each cluster's visitor: the one holding most of its sightings, unless a bigger claim took it first.

    Returns one entry per cluster; None means a new visitor.
    """
    held: dict[int, Counter] = defaultdict(Counter)
    for cluster, visitor in zip(clusters.tolist(), current, strict=True):
        held[cluster][visitor] += 1
    claims = sorted(
        (
            (count, -visitor, cluster)
            for cluster, counter in held.items()
            for visitor, count in counter.items()
        ),
        reverse=True,
    )
    owner: list[int | None] = [None] * (int(clusters.max()) + 1 if len(clusters) else 0)
    taken: set[int] = set()
    for _, negative_visitor, cluster in claims:
        visitor = -negative_visitor
        if owner[cluster] is None and visitor not in taken:
            owner[cluster] = visitor
            taken.add(visitor)
    return owner


def cluster_window(rows: list[_Row], settings: LinkSettings) -> tuple[np.ndarray, int]:
    """Cluster label of every row (by its unit) and the number of units."""
    embeddings = np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows])
    crops = Crops(
        embeddings,
        [r.captured_ms for r in rows],
        [r.camera_id for r in rows],
        [r.zone_id for r in rows],
        [r.track_id for r in rows],
    )
    units = group_units(crops, settings.track_gap_ms)
    totals = np.stack([u.total for u in units])
    counts = np.array([u.count for u in units])
    spans = [span_of(u) for u in units]
    cannot = settings.places.conflict_matrix(spans)
    penalty = settings.time_cost(hours_apart_matrix(spans)) if settings.time_penalty else None
    unit_labels = cluster_units(totals, counts, settings.threshold, cannot, penalty)
    labels = np.empty(len(rows), dtype=np.int64)
    for unit, label in zip(units, unit_labels.tolist(), strict=True):
        labels[unit.members] = label
    return labels, len(units)


def _apply(
    session: Session, store_id: int, rows: list[_Row], labels: np.ndarray, owners: list[int | None]
) -> tuple[int, int, int]:
    """Move sightings to their cluster's visitor (new ones created); returns moved, merges and splits."""
    now = datetime.now(UTC)
    created: dict[int, int] = {}
    moves: Counter = Counter()
    moved_ids: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row, cluster in zip(rows, labels.tolist(), strict=True):
        target = owners[cluster]
        if target is None:
            if cluster not in created:
                visitor = Visitor(store_id=store_id, created_at=now)
                session.add(visitor)
                session.flush()
                created[cluster] = visitor.id
            target = created[cluster]
        if target != row.visitor_id:
            moved_ids[(row.visitor_id, target)].append(row.id)
    moved = 0
    for (source, target), ids in moved_ids.items():
        changed = session.execute(
            update(Sighting)
            .where(Sighting.id.in_(ids), Sighting.visitor_id == source)
            .values(visitor_id=target, link_rule=RELINKED)
        ).rowcount
        if not changed:
            continue
        moved += changed
        kind = SPLIT if target in created.values() else MERGE
        moves[kind] += 1
        session.add(
            LinkEvent(
                store_id=store_id,
                kind=kind,
                visitor_id=target,
                from_visitor_id=source,
                sightings=changed,
                created_at=now,
            )
        )
    sources = {source for source, _ in moved_ids}
    if sources:
        empty = ~exists().where(Sighting.visitor_id == Visitor.id)
        session.execute(delete(Visitor).where(Visitor.id.in_(sources), empty))
    unused = [v for v in created.values() if v not in {t for _, t in moved_ids}]
    if unused:
        session.execute(delete(Visitor).where(Visitor.id.in_(unused)))
    return moved, moves[MERGE], moves[SPLIT]


def _restaff(session: Session, store_id: int, rows: list[_Row], threshold: float, model_version: str) -> None:
    """Decide again who is staff among the visitors whose sightings moved (a merge may join a staff
    member's sightings to another visitor, a split may part them)."""
    now = dict(
        session.execute(
            select(Sighting.id, Sighting.visitor_id).where(
                Sighting.store_id == store_id,
                Sighting.captured_ms >= rows[0].captured_ms,
                Sighting.captured_ms <= rows[-1].captured_ms,
            )
        ).all()
    )
    moved = [r for r in rows if now.get(r.id, r.visitor_id) != r.visitor_id]
    touched = {r.visitor_id for r in moved} | {now[r.id] for r in moved}
    crops: dict[int, list[np.ndarray]] = defaultdict(list)
    for row in rows:
        if now.get(row.id) in touched:
            crops[now[row.id]].append(np.frombuffer(row.embedding, dtype=np.float32))
    means = {visitor: np.mean(vectors, axis=0) for visitor, vectors in crops.items()}
    decide_staff(session, store_id, means, threshold, model_version)


def relink_store(
    sessions: sessionmaker[Session],
    writers: StoreWriteQueue,
    store_id: int,
    settings: LinkSettings,
    model_version: str,
    window: tuple[int, int],
    max_sightings: int,
) -> RelinkResult:
    """One re-linking pass over the store's sightings captured in ``window`` (epoch ms, half-open)."""
    with sessions() as session:
        rows = _read_window(session, store_id, model_version, window[0], window[1], max_sightings)
    if not rows:
        return RelinkResult()
    labels, units = cluster_window(rows, settings)
    current = [r.visitor_id for r in rows]
    owners = plan_visitors(labels, current)
    with writers.turn(store_id), session_scope(sessions) as session:
        lock_store_row(session, store_id)
        moved, merges, splits = _apply(session, store_id, rows, labels, owners)
        if moved:
            _restaff(session, store_id, rows, settings.threshold, model_version)
    return RelinkResult(
        sightings=len(rows),
        units=units,
        moved=moved,
        merges=merges,
        splits=splits,
        visitors_before=len(set(current)),
        visitors_after=len(owners),
    )
