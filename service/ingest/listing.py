"""Listing a store's sightings with their visitor and why they were linked (newest first, paged by id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.common.errors import NotFoundError
from service.common.timeparse import from_ms
from service.storage.lookups import get_owned
from service.storage.models import Camera, Sighting, Visitor, Zone


@dataclass(frozen=True)
class SightingQuery:
    """Filters of a sighting listing: a capture-time window (ms, half-open), place, visitor, track, page."""

    store_id: int
    start_ms: int | None = None
    end_ms: int | None = None
    camera_id: int | None = None
    zone_id: int | None = None
    visitor_id: int | None = None
    track_id: str | None = None
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class SightingRecord:
    """One stored sighting as an integrator or the dashboard sees it."""

    sighting_id: int
    visitor_id: int
    camera_id: int
    zone_id: int
    captured_at: datetime
    track_id: str | None
    similarity: float | None
    runner_up: float | None
    link_rule: str | None
    model_version: str


def _check_filters(session: Session, query: SightingQuery) -> None:
    """A camera, zone or visitor filter must name one of the store's own (NotFoundError otherwise)."""
    if query.camera_id is not None:
        get_owned(session, Camera, query.camera_id, query.store_id)
    if query.zone_id is not None:
        get_owned(session, Zone, query.zone_id, query.store_id)
    if query.visitor_id is not None:
        visitor = session.get(Visitor, query.visitor_id)
        if visitor is None or visitor.store_id != query.store_id:
            raise NotFoundError(f"visitor {query.visitor_id} not found in store {query.store_id}")


def list_sightings(*, session: Session, query: SightingQuery) -> list[SightingRecord]:
    """The store's sightings that pass the filters, newest id first."""
    _check_filters(session, query)
    statement = select(
        Sighting.id,
        Sighting.visitor_id,
        Sighting.camera_id,
        Sighting.zone_id,
        Sighting.captured_ms,
        Sighting.track_id,
        Sighting.similarity,
        Sighting.link_runner_up,
        Sighting.link_rule,
        Sighting.model_version,
    ).where(Sighting.store_id == query.store_id)
    columns = (
        (query.start_ms, Sighting.captured_ms.__ge__),
        (query.end_ms, Sighting.captured_ms.__lt__),
        (query.camera_id, Sighting.camera_id.__eq__),
        (query.zone_id, Sighting.zone_id.__eq__),
        (query.visitor_id, Sighting.visitor_id.__eq__),
        (query.track_id, Sighting.track_id.__eq__),
        (query.before_id, Sighting.id.__lt__),
    )
    for value, compare in columns:
        if value is not None:
            statement = statement.where(compare(value))
    rows = session.execute(statement.order_by(Sighting.id.desc()).limit(query.limit))
    return [
        SightingRecord(
            sighting_id=row.id,
            visitor_id=row.visitor_id,
            camera_id=row.camera_id,
            zone_id=row.zone_id,
            captured_at=from_ms(row.captured_ms),
            track_id=row.track_id,
            similarity=row.similarity,
            runner_up=row.link_runner_up,
            link_rule=row.link_rule,
            model_version=row.model_version,
        )
        for row in rows
    ]
