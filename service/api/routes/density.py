"""``GET /density``: customer density per zone and time bucket."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from service.api.deps import StateDep, StoreDep, find_in_store
from service.density import TooManyBucketsError, compute_density
from service.models import Zone
from service.schemas import MAX_ID, DensityOut
from service.timeparse import TimeParseError, parse_duration, parse_timestamp

router = APIRouter(tags=["analytics"])


@router.get("/density", response_model=DensityOut)
async def density(
    state: StateDep,
    store: StoreDep,
    start: Annotated[str, Query(description="window start, timezone-aware ISO 8601 (inclusive)")],
    end: Annotated[str, Query(description="window end, timezone-aware ISO 8601 (exclusive)")],
    bucket: Annotated[str, Query(description="seconds or ISO 8601 duration, e.g. 900 or PT15M")] = "PT15M",
    zone_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> DensityOut:
    """Unique visitors, sightings, entries, dwell and occupancy per zone and bucket, plus window totals."""
    try:
        start_at, end_at = parse_timestamp(start, "start"), parse_timestamp(end, "end")
        bucket_s = parse_duration(bucket, "bucket")
    except TimeParseError as exc:
        raise HTTPException(422, str(exc)) from exc
    if start_at >= end_at:
        raise HTTPException(422, "start must be before end")
    if zone_id is not None:
        await run_in_threadpool(find_in_store, state, Zone, zone_id, store)
    settings = state.settings

    def run():
        with state.sessions() as query_session:
            return compute_density(
                query_session,
                store.id,
                ZoneInfo(store.timezone),
                start_at,
                end_at,
                bucket_s,
                settings.density_gap_s,
                settings.density_max_buckets,
                zone_id,
            )

    try:
        zones = await run_in_threadpool(run)
    except TooManyBucketsError as exc:
        raise HTTPException(400, str(exc)) from exc
    return DensityOut.model_validate(
        {
            "store_id": store.id,
            "timezone": store.timezone,
            "start": start_at,
            "end": end_at,
            "bucket_s": bucket_s,
            "gap_s": settings.density_gap_s,
            "zones": [
                {
                    "zone_id": z.zone_id,
                    "name": z.name,
                    "buckets": [b.__dict__ for b in z.buckets],
                    "totals": z.totals,
                }
                for z in zones
            ],
        }
    )
