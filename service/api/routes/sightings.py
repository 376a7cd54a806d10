"""``POST /sightings``: store camera crops, link each to a visitor."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from service.api.deps import StateDep, StoreDep, find_in_store
from service.api.uploads import read_images
from service.db import session_scope
from service.linking import Linked, link_sightings
from service.metrics import SIGHTINGS
from service.models import Camera
from service.schemas import MAX_ID, SightingOut, SightingsOut
from service.state import AppState
from service.timeparse import TimeParseError, parse_timestamp

router = APIRouter(tags=["sightings"])


def _timestamps(values: list[str], count: int) -> list[datetime]:
    if len(values) not in (1, count):
        raise HTTPException(
            422, f"give one captured_at for all images or one per image ({count}), not {len(values)}"
        )
    try:
        parsed = [parse_timestamp(v, "captured_at") for v in values]
    except TimeParseError as exc:
        raise HTTPException(422, str(exc)) from exc
    return parsed * count if len(parsed) == 1 else parsed


def _store_and_index(
    state: AppState, camera: Camera, vectors: np.ndarray, when: list[datetime]
) -> list[Linked]:
    settings = state.settings
    with state.sync.writer(camera.store_id), session_scope(state.sessions) as session:
        linked = link_sightings(
            session, state.sync, camera, vectors, when, settings.match_threshold, settings.visitor_window_s
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
    """Store one sighting per image; 201 means every one is committed to SQL."""
    camera = await run_in_threadpool(find_in_store, state, Camera, camera_id, store)
    when = _timestamps(captured_at, len(images))
    arrays = await read_images(state, images)
    vectors = await state.batcher.embed(arrays)
    linked = await run_in_threadpool(_store_and_index, state, camera, vectors, when)
    for item in linked:
        SIGHTINGS.labels(new_visitor=str(item.new_visitor).lower()).inc()
    return SightingsOut(
        model=state.model_version,
        sightings=[SightingOut(**item.__dict__) for item in linked],
    )
