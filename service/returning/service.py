"""The returning-shoppers use case: the store's opt-in, the days asked for, the report, the audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool

from service.access.callers import Caller
from service.common.errors import ForbiddenError, InvalidInputError, LimitExceededError
from service.common.timeparse import parse_timestamp, to_ms
from service.returning.compute import Matching, ReturningDay, returning_day
from service.state import AppState
from service.storage.audit import REFUSED, Actor, audit
from service.storage.counting import for_reports
from service.storage.db import session_scope
from service.storage.models import Store

REPORT = "returning-report"


@dataclass(frozen=True)
class ReturningReport:
    """Returning shoppers per local day over a window."""

    store_id: int
    timezone: str
    start: datetime
    end: datetime
    threshold: float
    kept_from: datetime
    days: list[ReturningDay]


def local_days(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[int, int]]:
    """The local days overlapping ``[start, end)``, clipped to it (epoch ms, half-open)."""
    lo, hi = to_ms(start), to_ms(end)
    day = start.astimezone(tz).date()
    spans = []
    while True:
        begin = to_ms(datetime.combine(day, time(0), tzinfo=tz))
        finish = to_ms(datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz))
        if begin >= hi:
            return spans
        spans.append((max(begin, lo), min(finish, hi)))
        day += timedelta(days=1)


def kept_from(retention_days: int) -> datetime:
    """The oldest capture time retention keeps (UTC midnight ``retention_days`` days ago)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=retention_days)


async def returning_report(state: AppState, *, caller: Caller, start: str, end: str) -> ReturningReport:
    """Per local day, the visitors seen on an earlier day within retention; 403 (and audited) unless the
    admin enabled returning shoppers for the store."""
    assert caller.store is not None
    store_id, actor = caller.store.id, Actor(caller.key_id, caller.key_prefix or "")
    start_at, end_at = parse_timestamp(start, "start"), parse_timestamp(end, "end")
    if start_at >= end_at:
        raise InvalidInputError("start must be before end")
    settings = state.settings
    window = f"{start_at.isoformat()} to {end_at.isoformat()}"

    def run() -> ReturningReport:
        with state.sessions() as session:
            store = session.get(Store, store_id)
            assert store is not None
            enabled, tz_name, own = store.returning_enabled, store.timezone, store.match_threshold
        if not enabled:
            with session_scope(state.sessions) as session:
                audit(session, store_id, actor, REPORT, outcome=REFUSED, detail=window)
            raise ForbiddenError(
                f"returning shoppers are not enabled for store {store_id}; the admin can enable them "
                "(PATCH /stores/{id} with returning_enabled)"
            )
        tz = ZoneInfo(tz_name)
        spans = local_days(start_at, end_at, tz)
        if len(spans) > settings.returning_max_days:
            raise LimitExceededError(
                f"{len(spans)} days requested; the limit is {settings.returning_max_days} "
                "(REID_RETURNING_MAX_DAYS)"
            )
        threshold = settings.match_threshold if own is None else own
        oldest = kept_from(settings.retention_days)
        matching = Matching(state.sync, state.model_version, threshold, to_ms(oldest))
        days = []
        with state.sessions() as session:
            for_reports(session)
            state.sync.catch_up(session, store_id)
            for lo, hi in spans:
                visitors, returning = returning_day(session, store_id, lo, hi, matching)
                day = datetime.fromtimestamp(lo / 1000, UTC).astimezone(tz).date()
                days.append(ReturningDay(day, lo, hi, visitors, returning))
        total = sum(d.visitors for d in days), sum(d.returning for d in days)
        with session_scope(state.sessions) as session:
            audit(
                session,
                store_id,
                actor,
                REPORT,
                detail=f"{window}: {total[0]} visitors, {total[1]} returning",
            )
        return ReturningReport(store_id, tz_name, start_at, end_at, threshold, oldest, days)

    return await run_in_threadpool(run)
