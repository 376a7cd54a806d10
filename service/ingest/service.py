"""The ingest use case: check the request, embed its crops, link and commit them, then index them.

201 means every sighting is committed to SQL; the index is caught up from SQL right after the commit
(and by every later search), so a crash in between loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from service.common.errors import InvalidInputError
from service.common.timeparse import parse_timestamp
from service.embedding.uploads import Upload, read_uploads
from service.ingest.crops import keep_crops
from service.ingest.linking import Linked, link_sightings
from service.metrics import SIGHTINGS
from service.state import AppState
from service.storage.db import session_scope
from service.storage.lookups import find_owned
from service.storage.models import Camera, Store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class IngestResult:
    """What was stored, in upload order, and by which model."""

    model: str
    sightings: list[Linked]


def check_plausible(when: datetime, skew_s: float) -> None:
    """Refuse a capture time before the Unix epoch or ahead of the server clock by more than the skew."""
    latest = datetime.now(UTC) + timedelta(seconds=skew_s)
    if when < EPOCH:
        raise InvalidInputError(f"captured_at {when.isoformat()} is before 1970-01-01T00:00:00Z")
    if when > latest:
        raise InvalidInputError(
            f"captured_at {when.isoformat()} is in the future (server time {datetime.now(UTC).isoformat()}, "
            f"allowed clock skew {skew_s:.0f} s)"
        )


def capture_times(values: list[str], count: int, skew_s: float) -> list[datetime]:
    """One capture time per image from one value for all or one value each."""
    if len(values) not in (1, count):
        raise InvalidInputError(
            f"give one captured_at for all images or one per image ({count}), not {len(values)}"
        )
    parsed = [parse_timestamp(v, "captured_at") for v in values]
    for when in parsed:
        check_plausible(when, skew_s)
    return parsed * count if len(parsed) == 1 else parsed


def _commit_and_index(
    state: AppState, camera: Camera, vectors: np.ndarray, when: list[datetime], uploads: list[Upload]
) -> list[Linked]:
    settings = state.settings
    with state.writers.turn(camera.store_id), session_scope(state.sessions) as session:
        linked = link_sightings(
            session, state.sync, camera, vectors, when, settings.match_threshold, settings.visitor_window_s
        )
        if settings.store_crops:
            keep_crops(session, [item.sighting_id for item in linked], uploads)
    with state.sessions() as session:
        state.sync.catch_up(session, camera.store_id)
    return linked


async def ingest_sightings(
    state: AppState, *, store: Store, camera_id: int, captured_at: list[str], images: list[UploadFile]
) -> IngestResult:
    """Store one sighting per image from one of the store's cameras, each linked to a visitor."""
    camera = await run_in_threadpool(find_owned, state.sessions, Camera, camera_id, store.id)
    when = capture_times(captured_at, len(images), state.settings.max_clock_skew_s)
    uploads = await read_uploads(images, state.upload_rules)
    vectors = await state.batcher.embed([upload.pixels for upload in uploads])
    linked = await run_in_threadpool(_commit_and_index, state, camera, vectors, when, uploads)
    for item in linked:
        SIGHTINGS.labels(new_visitor=str(item.new_visitor).lower()).inc()
    return IngestResult(state.model_version, linked)
