"""Finding a person across a store from one embedding: ranked sightings and each visitor's last sighting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

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
    rows = {
        r.id: r
        for r in session.execute(
            select(
                Sighting.id,
                Sighting.visitor_id,
                Sighting.zone_id,
                Sighting.camera_id,
                Sighting.captured_ms,
                Sighting.track_id,
                Camera.name.label("camera_name"),
            )
            .join(Camera, Camera.id == Sighting.camera_id)
            .where(Sighting.id.in_([h.sighting_id for h in hits]))
        )
    }
    matches = [
        Match(
            sighting_id=h.sighting_id,
            visitor_id=rows[h.sighting_id].visitor_id,
            zone_id=rows[h.sighting_id].zone_id,
            camera_id=rows[h.sighting_id].camera_id,
            camera_name=rows[h.sighting_id].camera_name,
            captured_at=from_ms(rows[h.sighting_id].captured_ms),
            similarity=h.similarity,
            track_id=rows[h.sighting_id].track_id,
        )
        for h in hits
        if h.sighting_id in rows
    ][: query.top_k]
    best: dict[int, float] = {}
    for match in matches:
        best.setdefault(match.visitor_id, match.similarity)
    return Matches(matches, last_seen(session, best), sync.other_model_sightings(session, where))


def last_seen(session: Session, best: dict[int, float]) -> list[LastSeen]:
    """The latest sighting of each visitor (any zone), ordered like ``best``."""
    if not best:
        return []
    ranked = (
        select(
            Sighting.visitor_id,
            Sighting.zone_id,
            Sighting.camera_id,
            Sighting.captured_ms,
            func.row_number()
            .over(
                partition_by=Sighting.visitor_id, order_by=(Sighting.captured_ms.desc(), Sighting.id.desc())
            )
            .label("rank"),
        )
        .where(Sighting.visitor_id.in_(list(best)))
        .subquery()
    )
    rows = session.execute(
        select(ranked, Zone.name, Camera.name.label("camera_name"))
        .join(Zone, Zone.id == ranked.c.zone_id)
        .join(Camera, Camera.id == ranked.c.camera_id)
        .where(ranked.c.rank == 1)
    ).all()
    by_visitor = {r.visitor_id: r for r in rows}
    return [
        LastSeen(
            visitor_id=visitor,
            zone_id=by_visitor[visitor].zone_id,
            zone_name=by_visitor[visitor].name,
            camera_id=by_visitor[visitor].camera_id,
            camera_name=by_visitor[visitor].camera_name,
            captured_at=from_ms(by_visitor[visitor].captured_ms),
            best_similarity=similarity,
        )
        for visitor, similarity in best.items()
        if visitor in by_visitor
    ]
