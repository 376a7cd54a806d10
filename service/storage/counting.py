"""Who counts in a store's figures (density, flows, occupancy, returning shoppers): every visitor but
the staff's, unless staff are asked for.

A visitor is staff while ``visitors.staff_id`` names a staff member; the filter reads that flag at
query time, so a re-linking pass that moves sightings to another visitor moves them in or out of the
counts with it.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select, text
from sqlalchemy.orm import Session

from service.storage.models import Sighting, Visitor

REPORT_WORK_MEM = "64MB"


def staff_visitor_ids(store_id: int) -> Select:
    """The ids of the store's visitors who are staff (a subquery)."""
    return select(Visitor.id).where(Visitor.store_id == store_id, Visitor.staff_id.is_not(None))


def counted_sightings(store_id: int, include_staff: bool = False) -> list[ColumnElement[bool]]:
    """WHERE clauses on ``Sighting``: the store's sightings that count (staff left out unless included)."""
    clauses: list[ColumnElement[bool]] = [Sighting.store_id == store_id]
    if not include_staff:
        clauses.append(Sighting.visitor_id.not_in(staff_visitor_ids(store_id)))
    return clauses


def for_reports(session: Session) -> Session:
    """Tune a session's transaction for report queries: on PostgreSQL, no JIT compilation (it costs
    more than the sub-second queries it would speed up) and room to sort a day of sightings in memory."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
    return session
