"""``POST /sightings``: store camera crops, each linked to a visitor; ``GET`` a kept crop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from service.common.ids import MAX_ID
from service.http.deps import BigIdPath, StateDep, StoreDep
from service.ingest.crops import read_crop
from service.ingest.schemas import SightingsOut
from service.ingest.service import ingest_sightings

router = APIRouter(tags=["sightings"])


@router.post("/sightings", status_code=201, response_model=SightingsOut)
async def post_sightings(
    state: StateDep,
    store: StoreDep,
    images: Annotated[list[UploadFile], File()],
    camera_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    captured_at: Annotated[list[str], Form(description="ISO 8601 with offset; one for all or one per image")],
) -> SightingsOut:
    """Store one sighting per image; 201 means every one is committed to SQL.

    The embedding is kept; the image itself only when ``REID_STORE_CROPS`` is on.
    """
    result = await ingest_sightings(
        state, store=store, camera_id=camera_id, captured_at=captured_at, images=images
    )
    return SightingsOut.model_validate(result, from_attributes=True)


@router.get(
    "/sightings/{sighting_id}/crop",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/bmp": {}}}},
)
async def get_crop(sighting_id: BigIdPath, state: StateDep, store: StoreDep) -> Response:
    """The uploaded image of a sighting, when crops are kept (``REID_STORE_CROPS``); 404 otherwise."""
    crop = await run_in_threadpool(read_crop, state.sessions, store_id=store.id, sighting_id=sighting_id)
    return Response(crop.data, media_type=crop.media_type, headers={"Cache-Control": "no-store"})
