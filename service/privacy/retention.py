"""Retention: deleting expired sightings (and the visitors left without any, and the density summary of
their days) and old audit rows (person search, crop exports, store analytics) from SQL.

Shared by ``reid-admin purge`` and the service's periodic maintenance task. Sightings go in batches,
each in its own transaction under the store's row lock, so ingest keeps running meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from service.common.timeparse import to_ms
from service.storage.db import session_scope
from service.storage.locks import lock_store_row
from service.storage.models import (
    CropExport,
    DeletedSighting,
    LinkEvent,
    MatchAudit,
    Sighting,
    Store,
    StoreAudit,
    Visitor,
)
from service.storage.summaries import forget_before

PURGE_BATCH = 5000
TOMBSTONE_KEEP = timedelta(days=7)


@dataclass(frozen=True)
class PurgeResult:
    """What one purge deleted."""

    cutoff: datetime
    sightings: int
    visitors: int
    audit_rows: int


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    """UTC midnight ``days`` days before today: sightings captured before it are expired."""
    today = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def _purge_store(sessions: sessionmaker[Session], store_id: int, cutoff_ms: int) -> tuple[int, int]:
    sightings = 0
    while True:
        with session_scope(sessions) as session:
            lock_store_row(session, store_id)
            ids = list(
                session.scalars(
                    select(Sighting.id)
                    .where(Sighting.store_id == store_id, Sighting.captured_ms < cutoff_ms)
                    .limit(PURGE_BATCH)
                )
            )
            if ids:
                session.execute(delete(Sighting).where(Sighting.id.in_(ids)))
        sightings += len(ids)
        if len(ids) < PURGE_BATCH:
            break
    with session_scope(sessions) as session:
        lock_store_row(session, store_id)
        forget_before(session, store_id, cutoff_ms)
        seen = exists().where(Sighting.visitor_id == Visitor.id)
        orphans = delete(Visitor).where(Visitor.store_id == store_id, ~seen)
        visitors = session.execute(orphans).rowcount
    return sightings, visitors


def purge_expired(
    sessions: sessionmaker[Session], days: int, audit_days: int, now: datetime | None = None
) -> PurgeResult:
    """Delete sightings captured before the cutoff, visitors left empty, old audit rows, tombstones and
    re-linking log entries."""
    now = now or datetime.now(UTC)
    cutoff = retention_cutoff(days, now)
    cutoff_ms = to_ms(cutoff)
    with sessions() as session:
        store_ids = list(session.scalars(select(Store.id).order_by(Store.id)))
    sightings = visitors = 0
    for store_id in store_ids:
        gone, emptied = _purge_store(sessions, store_id, cutoff_ms)
        sightings, visitors = sightings + gone, visitors + emptied
    with session_scope(sessions) as session:
        audit_rows = session.execute(
            delete(MatchAudit).where(MatchAudit.requested_at < retention_cutoff(audit_days, now))
        ).rowcount
        audit_rows += session.execute(
            delete(CropExport).where(CropExport.requested_at < retention_cutoff(audit_days, now))
        ).rowcount
        audit_rows += session.execute(
            delete(StoreAudit).where(StoreAudit.at < retention_cutoff(audit_days, now))
        ).rowcount
        session.execute(delete(DeletedSighting).where(DeletedSighting.deleted_at < now - TOMBSTONE_KEEP))
        session.execute(delete(LinkEvent).where(LinkEvent.created_at < cutoff))
    return PurgeResult(cutoff, sightings, visitors, audit_rows)
