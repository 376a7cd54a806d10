"""Writing the store analytics audit (``store_audit``): staff enrolment and changes, returning-shopper
reports asked for or refused, and turning them on or off. Person search has its own log (``match_audit``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from service.storage.models import StoreAudit

OK = "ok"
REFUSED = "refused"
ADMIN_PREFIX = "admin"


@dataclass(frozen=True)
class Actor:
    """Who acted: a store key (id and public prefix) or the admin key (no id)."""

    key_id: int | None
    key_prefix: str


def audit(
    session: Session,
    store_id: int,
    actor: Actor,
    action: str,
    *,
    outcome: str = OK,
    staff_id: int | None = None,
    visitor_id: int | None = None,
    detail: str | None = None,
) -> None:
    """Add one audit row to the caller's transaction (committed with the change it records)."""
    session.add(
        StoreAudit(
            store_id=store_id,
            action=action,
            outcome=outcome,
            key_id=actor.key_id,
            key_prefix=actor.key_prefix,
            staff_id=staff_id,
            visitor_id=visitor_id,
            detail=detail[:500] if detail else None,
            at=datetime.now(UTC),
        )
    )
