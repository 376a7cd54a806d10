"""The density use case: parse the window and bucket, check the zone, compute per zone and bucket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool

from service.common.errors import InvalidInputError
from service.common.timeparse import parse_duration, parse_timestamp
from service.density.compute import ZoneDensity, compute_density
from service.state import AppState
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


async def density_report(
    state: AppState, *, store: Store, start: str, end: str, bucket: str, zone_id: int | None
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
        with state.sessions() as session:
            return compute_density(
                session,
                store.id,
                ZoneInfo(store.timezone),
                start_at,
                end_at,
                bucket_s,
                settings.density_gap_s,
                settings.density_max_buckets,
                zone_id,
            )

    zones = await run_in_threadpool(run)
    return DensityReport(store.id, store.timezone, start_at, end_at, bucket_s, settings.density_gap_s, zones)
