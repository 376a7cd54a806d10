"""``GET /occupancy``: visitors present per zone now; ``GET /occupancy/live``: the same as server-sent
events, updated as sightings arrive."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from service.http.deps import IncludeStaff, StateDep, StoreDep
from service.occupancy.hub import FeedKey, hub_for
from service.occupancy.schemas import EVENT_NAME, OccupancyOut, stream_responses
from service.occupancy.service import check_capacity, live_updates, occupancy_now

router = APIRouter(tags=["analytics"])
RETRY_MS = 3000


@router.get("/occupancy", response_model=OccupancyOut)
async def occupancy(state: StateDep, store: StoreDep, include_staff: IncludeStaff = False) -> OccupancyOut:
    """Visitors present per zone now (staff left out unless ``include_staff=true``)."""
    result = await occupancy_now(state, store=store, include_staff=include_staff)
    return OccupancyOut.model_validate(result, from_attributes=True)


@router.get("/occupancy/live", response_class=StreamingResponse, responses=stream_responses())
async def occupancy_live(
    request: Request,
    state: StateDep,
    store: StoreDep,
    include_staff: IncludeStaff = False,
    max_s: Annotated[
        float | None,
        Query(
            ge=0,
            le=86400,
            description="end the stream after this many seconds (at most REID_OCCUPANCY_STREAM_MAX_S)",
        ),
    ] = None,
) -> StreamingResponse:
    """Server-sent events: the occupancy per zone now, then again whenever it changes (sightings
    arriving, visitors leaving, erasures, re-linking), with a heartbeat comment every
    ``REID_OCCUPANCY_HEARTBEAT_S`` while nothing changes.

    The stream ends after ``REID_OCCUPANCY_STREAM_MAX_S`` or when the server stops; reconnect (after the
    `retry` delay) to get the current figures again. 429 when the server already holds
    ``REID_OCCUPANCY_MAX_STREAMS`` streams.
    """
    hub = hub_for(request.app, state.sessions, state.settings)
    check_capacity(hub, state.settings)
    key = FeedKey(store.id, include_staff)

    async def events():
        yield f"retry: {RETRY_MS}\n\n"
        async for snapshot in live_updates(hub, state.settings, key, max_s):
            if snapshot is None:
                yield ": heartbeat\n\n"
                continue
            data = OccupancyOut.model_validate(snapshot, from_attributes=True).model_dump_json()
            yield f"id: {snapshot.seq}\nevent: {EVENT_NAME}\ndata: {data}\n\n"

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
