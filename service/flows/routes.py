"""``GET /flows``: paths between zones within visits to the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.common.ids import MAX_ID
from service.flows.schemas import FlowsOut
from service.flows.service import flows_report
from service.http.deps import IncludeStaff, StateDep, StoreDep

router = APIRouter(tags=["analytics"])


@router.get("/flows", response_model=FlowsOut)
async def flows(
    state: StateDep,
    store: StoreDep,
    start: Annotated[str, Query(description="window start, timezone-aware ISO 8601 (inclusive)")],
    end: Annotated[
        str, Query(description="window end, timezone-aware ISO 8601 (exclusive), at most 31 days on")
    ],
    zone_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="the funnel's zone: the share of visits that reach it")
    ] = None,
    include_staff: IncludeStaff = False,
) -> FlowsOut:
    """Zone-to-zone transitions within each visit to the store (counts and median transit time), the
    zones visits began and ended in, and the share of visits reaching ``zone_id``.

    A visit ends when the visitor goes unseen for ``REID_STORE_VISIT_GAP_S``; visits are cut at the
    window's edges. Staff are left out unless ``include_staff=true``.
    """
    report = await flows_report(
        state, store=store, start=start, end=end, zone_id=zone_id, include_staff=include_staff
    )
    return FlowsOut.model_validate(report, from_attributes=True)
