"""Reading the person-search audit log of one store, newest first, paged by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.storage.lookups import get_store
from service.storage.models import MatchAudit


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
