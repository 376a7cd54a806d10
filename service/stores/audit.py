"""Reading a store's audit logs (person searches, crop exports, staff and returning shoppers), newest
first, paged by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.storage.lookups import get_store
from service.storage.models import CropExport, MatchAudit, StoreAudit


@dataclass(frozen=True)
class AuditQuery:
    """Filters of an audit listing, newest first, paged by ``before_id``."""

    store_id: int
    case_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 100


def list_searches(*, session: Session, query: AuditQuery) -> list[MatchAudit]:
    """Audit rows of one store matching the filters, newest first (NotFoundError for an unknown store)."""
    get_store(session, query.store_id)
    statement = select(MatchAudit).where(MatchAudit.store_id == query.store_id)
    if query.case_id is not None:
        statement = statement.where(MatchAudit.case_id == query.case_id)
    if query.since is not None:
        statement = statement.where(MatchAudit.requested_at >= query.since)
    if query.until is not None:
        statement = statement.where(MatchAudit.requested_at < query.until)
    if query.before_id is not None:
        statement = statement.where(MatchAudit.id < query.before_id)
    return list(session.scalars(statement.order_by(MatchAudit.id.desc()).limit(query.limit)))


def list_crop_exports(
    *, session: Session, store_id: int, before_id: int | None = None, limit: int = 100
) -> list[CropExport]:
    """The store's crop exports (``reid-admin export-crops``), newest first (NotFoundError for an unknown
    store)."""
    get_store(session, store_id)
    statement = select(CropExport).where(CropExport.store_id == store_id)
    if before_id is not None:
        statement = statement.where(CropExport.id < before_id)
    return list(session.scalars(statement.order_by(CropExport.id.desc()).limit(limit)))


def list_store_audit(
    *,
    session: Session,
    store_id: int,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[StoreAudit]:
    """The store's analytics audit (staff changes, returning-shopper reports and opt-in), newest first."""
    get_store(session, store_id)
    statement = select(StoreAudit).where(StoreAudit.store_id == store_id)
    if action is not None:
        statement = statement.where(StoreAudit.action == action)
    if before_id is not None:
        statement = statement.where(StoreAudit.id < before_id)
    return list(session.scalars(statement.order_by(StoreAudit.id.desc()).limit(limit)))
