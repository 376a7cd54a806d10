"""Writing the person-search audit log: one row per ``/match`` call that reached the store's opt-in check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from service.storage.db import session_scope
from service.storage.models import MatchAudit

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
