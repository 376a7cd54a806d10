"""Visitor linking: a new sighting joins the most similar recent sighting's visitor, or starts a new one.

Everything happens in the caller's transaction, which first takes the store's row lock
(``storage.locks.lock_store_row``) so that concurrent ingests of one store, on any replica, link one
after another and always see each other's committed sightings after the catch-up that follows the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.common.timeparse import to_ms
from service.storage.locks import lock_store_row
from service.storage.models import Camera, Sighting, Visitor
from service.vectors.base import VectorFilter
from service.vectors.sync import IndexSync

CANDIDATES = 10


@dataclass(frozen=True)
class Linked:
    """The stored sighting and the visitor it was linked to."""

    sighting_id: int
    visitor_id: int
    new_visitor: bool
    similarity: float | None
    captured_at: datetime


@dataclass(frozen=True)
class _Pending:
    sighting_id: int
    visitor_id: int
    embedding: np.ndarray
    ms: int


def _best_indexed(
    session: Session,
    sync: IndexSync,
    store_id: int,
    embedding: np.ndarray,
    ms: int,
    window_ms: int,
    threshold: float,
) -> tuple[int, float] | None:
    where = VectorFilter(store_id, min_ms=ms - window_ms, max_ms=ms + window_ms + 1)
    hits = [
        h for h in sync.search(store_id, embedding[None], CANDIDATES, where)[0] if h.similarity >= threshold
    ]
    if not hits:
        return None
    ids = [h.sighting_id for h in hits]
    rows = session.execute(select(Sighting.id, Sighting.visitor_id).where(Sighting.id.in_(ids)))
    owners = {row.id: row.visitor_id for row in rows}
    for hit in hits:
        if hit.sighting_id in owners:
            return owners[hit.sighting_id], hit.similarity
    return None


def link_sightings(
    session: Session,
    sync: IndexSync,
    camera: Camera,
    embeddings: np.ndarray,
    captured: list[datetime],
    threshold: float,
    window_s: float,
) -> list[Linked]:
    """Store one sighting per embedding, linked to visitors; the caller commits."""
    lock_store_row(session, camera.store_id)
    sync.catch_up(session, camera.store_id)
    window_ms = int(window_s * 1000)
    received = datetime.now(UTC)
    pending: list[_Pending] = []
    results = []
    for embedding, when in zip(embeddings, captured, strict=True):
        ms = to_ms(when)
        best = _best_indexed(session, sync, camera.store_id, embedding, ms, window_ms, threshold)
        for item in pending:
            similarity = float(item.embedding @ embedding)
            if (
                abs(item.ms - ms) <= window_ms
                and similarity >= threshold
                and (best is None or similarity > best[1])
            ):
                best = (item.visitor_id, similarity)
        if best is None:
            visitor = Visitor(store_id=camera.store_id, created_at=received)
            session.add(visitor)
            session.flush()
            visitor_id, similarity = visitor.id, None
        else:
            visitor_id, similarity = best
        sighting = Sighting(
            store_id=camera.store_id,
            zone_id=camera.zone_id,
            camera_id=camera.id,
            visitor_id=visitor_id,
            captured_at=when,
            captured_ms=ms,
            received_at=received,
            similarity=similarity,
            model_version=sync.model_version,
            embedding=np.ascontiguousarray(embedding, dtype=np.float32).tobytes(),
        )
        session.add(sighting)
        session.flush()
        pending.append(_Pending(sighting.id, visitor_id, embedding, ms))
        results.append(Linked(sighting.id, visitor_id, best is None, similarity, when))
    return results
