"""``GET /density``: customer density per zone and time bucket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.common.ids import MAX_ID
from service.density.schemas import DensityOut
from service.density.service import density_report
from service.http.deps import IncludeStaff, StateDep, StoreDep

router = APIRouter(tags=["analytics"])


@router.get("/density", response_model=DensityOut)
async def density(
    state: StateDep,
    store: StoreDep,
    start: Annotated[str, Query(description="window start, timezone-aware ISO 8601 (inclusive)")],
    end: Annotated[str, Query(description="window end, timezone-aware ISO 8601 (exclusive)")],
    bucket: Annotated[str, Query(description="seconds or ISO 8601 duration, e.g. 900 or PT15M")] = "PT15M",
    zone_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    include_staff: IncludeStaff = False,
) -> DensityOut:
    """Unique visitors, sightings, entries, dwell and occupancy per zone and bucket, plus window totals.

    Staff (``/staff``) are left out unless ``include_staff=true``.
    """
    report = await density_report(
        state, store=store, start=start, end=end, bucket=bucket, zone_id=zone_id, include_staff=include_staff
    )
    return DensityOut.model_validate(report, from_attributes=True)
