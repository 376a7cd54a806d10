"""``POST /sightings``: store camera crops' embeddings, link each to a visitor; ``GET`` a kept crop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Response, UploadFile
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from service.api.deps import BigIdPath, StateDep, StoreDep, find_in_store
from service.api.uploads import Upload, read_uploads
from service.db import session_scope
from service.linking import Linked, link_sightings
from service.metrics import SIGHTINGS
from service.models import Camera, Sighting, SightingCrop
from service.schemas import MAX_ID, SightingOut, SightingsOut
from service.state import AppState
from service.timeparse import TimeParseError, parse_timestamp

router = APIRouter(tags=["sightings"])
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _check_plausible(when: datetime, skew_s: float) -> None:
    """422 for a capture time before the Unix epoch or ahead of the server clock by more than the skew."""
    latest = datetime.now(UTC) + timedelta(seconds=skew_s)
    if when < EPOCH:
        raise HTTPException(422, f"captured_at {when.isoformat()} is before 1970-01-01T00:00:00Z")
    if when > latest:
        raise HTTPException(
            422,
            f"captured_at {when.isoformat()} is in the future (server time {datetime.now(UTC).isoformat()}, "
            f"allowed clock skew {skew_s:.0f} s)",
        )


def _timestamps(values: list[str], count: int, skew_s: float) -> list[datetime]:
    if len(values) not in (1, count):
        raise HTTPException(
            422, f"give one captured_at for all images or one per image ({count}), not {len(values)}"
        )
    try:
        parsed = [parse_timestamp(v, "captured_at") for v in values]
    except TimeParseError as exc:
        raise HTTPException(422, str(exc)) from exc
    for when in parsed:
        _check_plausible(when, skew_s)
    return parsed * count if len(parsed) == 1 else parsed


def _store_and_index(
    state: AppState, camera: Camera, vectors: np.ndarray, when: list[datetime], uploads: list[Upload]
) -> list[Linked]:
    settings = state.settings
    with state.sync.writer(camera.store_id), session_scope(state.sessions) as session:
        linked = link_sightings(
            session, state.sync, camera, vectors, when, settings.match_threshold, settings.visitor_window_s
        )
        if settings.store_crops:
            session.add_all(
                SightingCrop(sighting_id=item.sighting_id, content_type=upload.media_type, data=upload.data)
                for item, upload in zip(linked, uploads, strict=True)
            )
    with state.sessions() as session:
        state.sync.catch_up(session, camera.store_id)
    return linked


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
    camera = await run_in_threadpool(find_in_store, state, Camera, camera_id, store)
    when = _timestamps(captured_at, len(images), state.settings.max_clock_skew_s)
    uploads = await read_uploads(state, images)
    vectors = await state.batcher.embed([upload.pixels for upload in uploads])
    linked = await run_in_threadpool(_store_and_index, state, camera, vectors, when, uploads)
    for item in linked:
        SIGHTINGS.labels(new_visitor=str(item.new_visitor).lower()).inc()
    return SightingsOut(
        model=state.model_version,
        sightings=[SightingOut(**item.__dict__) for item in linked],
    )


@router.get(
    "/sightings/{sighting_id}/crop",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/bmp": {}}}},
)
def get_crop(sighting_id: BigIdPath, state: StateDep, store: StoreDep) -> Response:
    """The uploaded image of a sighting, when crops are kept (``REID_STORE_CROPS``); 404 otherwise."""
    with state.sessions() as session:
        owner = session.scalar(select(Sighting.store_id).where(Sighting.id == sighting_id))
        if owner != store.id:
            raise HTTPException(404, f"sighting {sighting_id} not found in store {store.id}")
        crop = session.get(SightingCrop, sighting_id)
    if crop is None:
        detail = f"no crop is kept for sighting {sighting_id} (only while REID_STORE_CROPS is on)"
        raise HTTPException(404, detail)
    return Response(crop.data, media_type=crop.content_type, headers={"Cache-Control": "no-store"})
