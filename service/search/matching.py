"""Finding a person across a store from one embedding: ranked sightings and each visitor's last sighting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Row, select
from sqlalchemy.orm import Session, aliased

from service.common.timeparse import from_ms
from service.storage.models import Camera, Sighting, Zone
from service.vectors.base import VectorFilter
from service.vectors.sync import IndexSync


@dataclass(frozen=True)
class MatchQuery:
    """What to look for and where."""

    store_id: int
    embedding: np.ndarray
    top_k: int
    since_ms: int | None = None
    until_ms: int | None = None
    zone_id: int | None = None
    min_similarity: float = -1.0


@dataclass(frozen=True)
class Match:
    """One sighting similar to the query."""

    sighting_id: int
    visitor_id: int
    zone_id: int
    camera_id: int
    camera_name: str
    captured_at: datetime
    similarity: float
    track_id: str | None = None


@dataclass(frozen=True)
class LastSeen:
    """Where and when a matched visitor was last seen, and their best similarity to the query."""

    visitor_id: int
    zone_id: int
    zone_name: str
    camera_id: int
    camera_name: str
    captured_at: datetime
    best_similarity: float


@dataclass(frozen=True)
class Matches:
    """Ranked matches, per matched visitor the last sighting, and what no search could find."""

    matches: list[Match]
    visitors: list[LastSeen]
    other_model_sightings: int = 0


def find_matches(session: Session, sync: IndexSync, query: MatchQuery) -> Matches:
    """Ranked matching sightings (still present in SQL) and the last sighting of each matched visitor."""
    where = VectorFilter(query.store_id, query.since_ms, query.until_ms, query.zone_id)
    hits = sync.search_caught_up(session, query.store_id, query.embedding[None], query.top_k * 2, where)[0]
    hits = [h for h in hits if h.similarity >= query.min_similarity]
    rows = _hit_rows(session, [h.sighting_id for h in hits])
    found = [(h, rows[h.sighting_id]) for h in hits if h.sighting_id in rows][: query.top_k]
    matches = [
        Match(
            sighting_id=hit.sighting_id,
            visitor_id=row.visitor_id,
            zone_id=row.zone_id,
            camera_id=row.camera_id,
            camera_name=row.camera_name,
            captured_at=from_ms(row.captured_ms),
            similarity=hit.similarity,
            track_id=row.track_id,
        )
        for hit, row in found
    ]
    visitors: dict[int, LastSeen] = {}
    for hit, row in found:
        if row.visitor_id not in visitors:
            visitors[row.visitor_id] = LastSeen(
                visitor_id=row.visitor_id,
                zone_id=row.last_zone_id,
                zone_name=row.last_zone_name,
                camera_id=row.last_camera_id,
                camera_name=row.last_camera_name,
                captured_at=from_ms(row.last_captured_ms),
                best_similarity=hit.similarity,
            )
    return Matches(matches, list(visitors.values()), sync.other_model_sightings(session, where))


def _hit_rows(session: Session, sighting_ids: list[int]) -> dict[int, Row]:
    """Per hit, in one query: the sighting, its camera's name, its visitor's latest sighting (any zone)."""
    if not sighting_ids:
        return {}
    hit, last, other, last_camera = aliased(Sighting), aliased(Sighting), aliased(Sighting), aliased(Camera)
    latest_of_visitor = (
        select(other.id)
        .where(other.visitor_id == hit.visitor_id)
        .order_by(other.captured_ms.desc(), other.id.desc())
        .limit(1)
        .correlate(hit)
        .scalar_subquery()
    )
    statement = (
        select(
            hit.id,
            hit.visitor_id,
            hit.zone_id,
            hit.camera_id,
            hit.captured_ms,
            hit.track_id,
            Camera.name.label("camera_name"),
            last.zone_id.label("last_zone_id"),
            last.camera_id.label("last_camera_id"),
            last.captured_ms.label("last_captured_ms"),
            Zone.name.label("last_zone_name"),
            last_camera.name.label("last_camera_name"),
        )
        .join(Camera, Camera.id == hit.camera_id)
        .join(last, last.id == latest_of_visitor)
        .join(Zone, Zone.id == last.zone_id)
        .join(last_camera, last_camera.id == last.camera_id)
        .where(hit.id.in_(sighting_ids))
    )
    return {row.id: row for row in session.execute(statement)}
