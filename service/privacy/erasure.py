"""Erasing a visitor: sightings, crops, vectors, link log and the density summary of their days, with
tombstones for every replica's index."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, or_, select

from service.common.errors import NotFoundError
from service.state import AppState
from service.storage.db import session_scope
from service.storage.locks import lock_store_row
from service.storage.models import DeletedSighting, LinkEvent, Sighting, Visitor
from service.storage.summaries import forget_span


def erase_visitor(state: AppState, *, store_id: int, visitor_id: int) -> list[int]:
    """Delete a visitor of the store and everything linked to them; returns the erased sighting ids."""
    with state.writers.turn(store_id), session_scope(state.sessions) as session:
        lock_store_row(session, store_id)
        visitor = session.get(Visitor, visitor_id)
        if visitor is None or visitor.store_id != store_id:
            raise NotFoundError(f"visitor {visitor_id} not found in store {store_id}")
        ids = list(session.scalars(select(Sighting.id).where(Sighting.visitor_id == visitor_id)))
        span = session.execute(
            select(func.min(Sighting.captured_ms), func.max(Sighting.captured_ms)).where(
                Sighting.visitor_id == visitor_id
            )
        ).one()
        if span[0] is not None:
            forget_span(session, store_id, span[0], span[1])
        if ids:
            now = datetime.now(UTC)
            tombstones = [{"store_id": store_id, "sighting_id": i, "deleted_at": now} for i in ids]
            session.execute(insert(DeletedSighting), tombstones)
        session.execute(delete(Sighting).where(Sighting.visitor_id == visitor_id))
        session.execute(delete(Visitor).where(Visitor.id == visitor_id))
        session.execute(
            delete(LinkEvent).where(
                LinkEvent.store_id == store_id,
                or_(LinkEvent.visitor_id == visitor_id, LinkEvent.from_visitor_id == visitor_id),
            )
        )
    state.sync.remove(store_id, ids)
    return ids
