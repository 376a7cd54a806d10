"""The person-search audit log: one row per ``/match`` call that reached the store's opt-in check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.models import MatchAudit

OK = "ok"
REFUSED = "refused"


@dataclass(frozen=True)
class SearchPurpose:
    """Why a person search is made: a case id, a free-text reason, or both."""

    case_id: str | None
    reason: str | None


def record_search(
    sessions: sessionmaker[Session],
    store_id: int,
    key_id: int | None,
    key_prefix: str,
    purpose: SearchPurpose,
    outcome: str,
    results: int = 0,
    visitors: int = 0,
) -> None:
    """Commit one audit row (before any result leaves the service)."""
    with session_scope(sessions) as session:
        session.add(
            MatchAudit(
                store_id=store_id,
                key_id=key_id,
                key_prefix=key_prefix,
                case_id=purpose.case_id,
                reason=purpose.reason,
                requested_at=datetime.now(UTC),
                outcome=outcome,
                results=results,
                visitors=visitors,
            )
        )


@dataclass(frozen=True)
class AuditQuery:
    """Filters of an audit listing, newest first, paged by ``before_id``."""

    store_id: int
    case_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 100


def list_searches(session: Session, query: AuditQuery) -> list[MatchAudit]:
    """Audit rows of one store matching the filters, newest first."""
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
