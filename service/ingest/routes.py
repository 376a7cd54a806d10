"""``POST /sightings``: store camera crops, each linked to a visitor; list them; ``GET`` a kept crop;
``POST /stores/{id}/relink``: a re-linking pass on demand (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Query, Response
from starlette.concurrency import run_in_threadpool

from service.common.ids import MAX_BIG_ID, MAX_ID
from service.common.text import PlainText
from service.common.timeparse import parse_timestamp, to_ms
from service.http.deps import AdminDep, BigIdPath, IdPath, SessionDep, StateDep, StoreDep
from service.http.errors import MULTIPART_RESPONSES
from service.http.forms import UploadedFile
from service.ingest.crops import read_crop
from service.ingest.listing import SightingQuery, list_sightings
from service.ingest.schemas import RelinkIn, RelinkOut, SightingRecordOut, SightingsOut
from service.ingest.service import ingest_sightings, relink, relink_context

MAX_PAGE = 1000
DEFAULT_WINDOW = RelinkIn()

router = APIRouter(tags=["sightings"])
BINARY = {"type": "string", "format": "binary"}


@router.post("/sightings", status_code=201, response_model=SightingsOut, responses=MULTIPART_RESPONSES)
async def post_sightings(
    state: StateDep,
    store: StoreDep,
    images: Annotated[list[UploadedFile], File(description="person crops: JPEG, PNG or BMP")],
    camera_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    captured_at: Annotated[list[str], Form(description="ISO 8601 with offset; one for all or one per image")],
    track_id: Annotated[
        list[str] | None,
        Form(
            description="the camera tracker's id for these crops (one for all or one per image): crops "
            "of one track are one person and link as a whole; an id unused for REID_TRACK_GAP_S starts "
            "a new track"
        ),
    ] = None,
) -> SightingsOut:
    """Store one sighting per image; 201 means every one is committed to SQL.

    The embedding is kept; the image itself only when ``REID_STORE_CROPS`` is on.
    """
    result = await ingest_sightings(
        state, store=store, camera_id=camera_id, captured_at=captured_at, images=images, track_id=track_id
    )
    return SightingsOut.model_validate(result, from_attributes=True)


@router.get("/sightings", response_model=list[SightingRecordOut])
def get_sightings(
    session: SessionDep,
    store: StoreDep,
    start: Annotated[str | None, Query(description="captured at or after (ISO 8601 with offset)")] = None,
    end: Annotated[str | None, Query(description="captured before (ISO 8601 with offset)")] = None,
    camera_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    zone_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    visitor_id: Annotated[int | None, Query(ge=1, le=MAX_BIG_ID)] = None,
    track_id: Annotated[PlainText | None, Query(max_length=64)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_BIG_ID, description="older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[SightingRecordOut]:
    """The store's sightings, newest first: visitor, camera, zone, time, track and why each was linked."""
    query = SightingQuery(
        store.id,
        to_ms(parse_timestamp(start, "start")) if start else None,
        to_ms(parse_timestamp(end, "end")) if end else None,
        camera_id,
        zone_id,
        visitor_id,
        track_id,
        before_id,
        limit,
    )
    records = list_sightings(session=session, query=query)
    return [SightingRecordOut.model_validate(r, from_attributes=True) for r in records]


@router.get(
    "/sightings/{sighting_id}/crop",
    response_class=Response,
    responses={
        200: {
            "description": "The uploaded image, as it was sent",
            "content": {kind: {"schema": BINARY} for kind in ("image/jpeg", "image/png", "image/bmp")},
        }
    },
)
async def get_crop(sighting_id: BigIdPath, state: StateDep, store: StoreDep) -> Response:
    """The uploaded image of a sighting, when crops are kept (``REID_STORE_CROPS``); 404 otherwise."""
    crop = await run_in_threadpool(read_crop, state.sessions, store_id=store.id, sighting_id=sighting_id)
    return Response(crop.data, media_type=crop.media_type, headers={"Cache-Control": "no-store"})


@router.post("/stores/{store_id}/relink", response_model=RelinkOut, tags=["admin"])
async def relink_store(
    store_id: IdPath, state: StateDep, _: AdminDep, body: Annotated[RelinkIn, Body()] = DEFAULT_WINDOW
) -> RelinkOut:
    """Re-link the store's sightings in a window with all of it in view; density follows at once.

    The body is optional (never null): without one the window is the default one.
    """
    bounds = {
        name: None if value is None else to_ms(parse_timestamp(value.isoformat(), name))
        for name, value in (("start", body.start), ("end", body.end))
    }
    result = await run_in_threadpool(
        relink, relink_context(state), store_id=store_id, start_ms=bounds["start"], end_ms=bounds["end"]
    )
    return RelinkOut.model_validate(result, from_attributes=True)
