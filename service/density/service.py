"""The density use case: parse the window and bucket, check the zone, compute per zone and bucket
(whole days from the density summary), staff left out unless asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service.common.errors import InvalidInputError
from service.common.timeparse import parse_duration, parse_timestamp, to_ms
from service.density.compute import ZoneDensity, compute_density
from service.density.summary import DAY_S, SummaryQuery, density_in_days
from service.settings import Settings
from service.state import AppState
from service.storage.counting import for_reports
from service.storage.lookups import find_owned
from service.storage.models import Store, Zone


@dataclass(frozen=True)
class DensityReport:
    """Density per zone of one store over a window."""

    store_id: int
    timezone: str
    start: datetime
    end: datetime
    bucket_s: float
    gap_s: float
    zones: list[ZoneDensity]
    include_staff: bool = False


def density_zones(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    store: Store,
    start: datetime,
    end: datetime,
    bucket_s: float,
    zone_id: int | None = None,
    include_staff: bool = False,
) -> list[ZoneDensity]:
    """Density per zone: buckets of one local day from the summary, any other bucket from the sightings."""
    tz = ZoneInfo(store.timezone)
    if bucket_s == DAY_S:
        kept_days = settings.retention_days + 2
        query = SummaryQuery(
            store.id,
            tz,
            start,
            end,
            int(round(settings.density_gap_s * 1000)),
            settings.density_max_buckets,
            zone_id,
            include_staff,
            keep_after_ms=to_ms(datetime.now(UTC) - timedelta(days=kept_days)),
        )
        return density_in_days(sessions, query)
    with sessions() as session:
        return compute_density(
            for_reports(session),
            store.id,
            tz,
            start,
            end,
            bucket_s,
            settings.density_gap_s,
            settings.density_max_buckets,
            zone_id,
            include_staff,
        )


async def density_report(
    state: AppState,
    *,
    store: Store,
    start: str,
    end: str,
    bucket: str,
    zone_id: int | None,
    include_staff: bool = False,
) -> DensityReport:
    """Unique visitors, sightings, entries, dwell and occupancy per zone and bucket, plus window totals."""
    start_at, end_at = parse_timestamp(start, "start"), parse_timestamp(end, "end")
    bucket_s = parse_duration(bucket, "bucket")
    if start_at >= end_at:
        raise InvalidInputError("start must be before end")
    if zone_id is not None:
        await run_in_threadpool(find_owned, state.sessions, Zone, zone_id, store.id)
    settings = state.settings

    def run() -> list[ZoneDensity]:
        return density_zones(
            state.sessions,
            settings,
            store=store,
            start=start_at,
            end=end_at,
            bucket_s=bucket_s,
            zone_id=zone_id,
            include_staff=include_staff,
        )

    zones = await run_in_threadpool(run)
    return DensityReport(
        store.id, store.timezone, start_at, end_at, bucket_s, settings.density_gap_s, zones, include_staff
    )
