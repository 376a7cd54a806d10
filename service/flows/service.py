"""The flows use case: parse the window, check the funnel zone, compute the store's paths between zones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from starlette.concurrency import run_in_threadpool

from service.common.errors import InvalidInputError
from service.common.timeparse import parse_timestamp, to_ms
from service.flows.compute import Flows, Funnel, Transition, ZoneFlow, compute_flows
from service.state import AppState
from service.storage.counting import for_reports
from service.storage.lookups import find_owned
from service.storage.models import Store, Zone

MAX_WINDOW_DAYS = 31


@dataclass(frozen=True)
class FlowsReport:
    """Paths between zones of one store over a window."""

    store_id: int
    start: datetime
    end: datetime
    visit_gap_s: float
    include_staff: bool
    visits: int
    visitors: int
    zones: list[ZoneFlow]
    transitions: list[Transition]
    funnel: Funnel | None


async def flows_report(
    state: AppState, *, store: Store, start: str, end: str, zone_id: int | None, include_staff: bool = False
) -> FlowsReport:
    """Transitions between zones within visits, first and last zones, and the funnel to ``zone_id``."""
    start_at, end_at = parse_timestamp(start, "start"), parse_timestamp(end, "end")
    if start_at >= end_at:
        raise InvalidInputError("start must be before end")
    if (end_at - start_at).total_seconds() > MAX_WINDOW_DAYS * 86400:
        raise InvalidInputError(f"a flows window spans at most {MAX_WINDOW_DAYS} days")
    if zone_id is not None:
        await run_in_threadpool(find_owned, state.sessions, Zone, zone_id, store.id)
    gap_s = state.settings.store_visit_gap_s

    def run() -> Flows:
        with state.sessions() as session:
            return compute_flows(
                for_reports(session),
                store.id,
                to_ms(start_at),
                to_ms(end_at),
                int(round(gap_s * 1000)),
                zone_id,
                include_staff,
            )

    flows = await run_in_threadpool(run)
    return FlowsReport(
        store.id,
        start_at,
        end_at,
        gap_s,
        include_staff,
        flows.visits,
        flows.visitors,
        flows.zones,
        flows.transitions,
        flows.funnel,
    )
