"""The ingest use case: check the request, embed its crops, link and commit them, then index them.

201 means every sighting is committed to SQL; the index is caught up from SQL right after the commit
(and by every later search), so a crash in between loses nothing. Linking is decided on reads and
written in a short transaction (``_link_and_store``), so the database's write lock is never held while
linking decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi import UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from service.common.errors import InvalidInputError
from service.common.phases import in_thread
from service.common.timeparse import parse_timestamp, to_ms
from service.embedding.uploads import Upload, read_uploads
from service.ingest.crops import crops_kept, keep_crops
from service.ingest.linking import Linked, LinkPlan, LinkSettings, plan_links, store_links
from service.ingest.places import load_place_rules
from service.ingest.relinking import RelinkResult, relink_store
from service.metrics import LINK_RETRIES, SIGHTINGS
from service.settings import Settings
from service.state import AppState
from service.storage.db import session_scope
from service.storage.locks import StoreWriteQueue, claim_store_row, lock_store_row, store_sequence
from service.storage.lookups import find_owned, get_store
from service.storage.models import Camera, Store
from service.storage.staff import flag_staff

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TRACK_ID = 64


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


def track_ids_of(values: list[str] | None, count: int) -> list[str | None]:
    """One camera track id per image from none, one for all or one each; empty means no track."""
    if not values:
        return [None] * count
    if len(values) not in (1, count):
        raise InvalidInputError(
            f"give one track_id for all images or one per image ({count}), not {len(values)}"
        )
    cleaned: list[str | None] = []
    for value in values:
        value = value.strip()
        if len(value) > MAX_TRACK_ID or not value.isprintable():
            raise InvalidInputError(f"track_id must be at most {MAX_TRACK_ID} printable characters")
        cleaned.append(value or None)
    return cleaned * count if len(cleaned) == 1 else cleaned


def link_settings(settings: Settings, session: Session, store_id: int) -> LinkSettings:
    """How a store links: the service's rule, the store's calibrated threshold if any, its place rules."""
    threshold = session.scalar(select(Store.match_threshold).where(Store.id == store_id))
    return LinkSettings(
        mode=settings.linking,
        threshold=settings.match_threshold if threshold is None else threshold,
        window_ms=int(settings.visitor_window_s * 1000),
        track_gap_ms=int(settings.track_gap_s * 1000),
        places=load_place_rules(session, store_id, settings.min_transit_s),
        time_penalty=settings.link_time_penalty,
        time_grace_h=settings.link_time_grace_s / 3600.0,
    )


def request_means(linked: list[Linked], vectors: np.ndarray) -> dict[int, np.ndarray]:
    """The mean of this request's crops per visitor they were linked to."""
    positions: dict[int, list[int]] = {}
    for position, item in enumerate(linked):
        positions.setdefault(item.visitor_id, []).append(position)
    return {visitor: vectors[rows].mean(axis=0) for visitor, rows in positions.items()}


def _store(
    state: AppState, session: Session, plan: LinkPlan, rules: LinkSettings, uploads: list[Upload]
) -> list[Linked]:
    """Write a linking plan, flag staff, keep crops: the short write transaction of an ingest."""
    store_id = plan.camera.store_id
    linked = store_links(session, plan, state.sync.model_version)
    means = request_means(linked, plan.embeddings)
    flag_staff(session, store_id, means, rules.threshold, state.model_version)
    if crops_kept(session, store_id, state.settings.store_crops):
        keep_crops(session, [item.sighting_id for item in linked], uploads)
    return linked


def _link_and_store(
    state: AppState,
    camera: Camera,
    vectors: np.ndarray,
    when: list[datetime],
    tracks: list[str | None],
    uploads: list[Upload],
) -> list[Linked]:
    """Decide on reads, then write in a short transaction that claims the store's row if nobody wrote since.

    The decision (index catch-up, candidate visitors, their crops) takes no database lock, so on SQLite
    other writers (a search's audit row) wait at most for the writes. Another replica's (or another
    writer's) commit in between makes the claim fail and the request decide again; after
    ``REID_LINK_OPTIMISTIC_ATTEMPTS`` tries it decides under the row lock, in one transaction.
    """
    store_id = camera.store_id
    for _ in range(state.settings.link_optimistic_attempts):
        with state.sessions() as session:
            seen = store_sequence(session, store_id)
            rules = link_settings(state.settings, session, store_id)
            state.sync.catch_up(session, store_id)
            plan = plan_links(session, state.sync, camera, vectors, when, tracks, rules)
        with session_scope(state.sessions) as session:
            if claim_store_row(session, store_id, seen):
                return _store(state, session, plan, rules, uploads)
        LINK_RETRIES.inc()
    with session_scope(state.sessions) as session:
        lock_store_row(session, store_id)
        rules = link_settings(state.settings, session, store_id)
        state.sync.catch_up(session, store_id)
        plan = plan_links(session, state.sync, camera, vectors, when, tracks, rules)
        return _store(state, session, plan, rules, uploads)


def _commit_and_index(
    state: AppState,
    camera: Camera,
    vectors: np.ndarray,
    when: list[datetime],
    tracks: list[str | None],
    uploads: list[Upload],
) -> list[Linked]:
    with state.writers.turn(camera.store_id):
        linked = _link_and_store(state, camera, vectors, when, tracks, uploads)
    with state.sessions() as session:
        state.sync.catch_up(session, camera.store_id)
    return linked


async def ingest_sightings(
    state: AppState,
    *,
    store: Store,
    camera_id: int,
    captured_at: list[str],
    images: list[UploadFile],
    track_id: list[str] | None = None,
) -> IngestResult:
    """Store one sighting per image from one of the store's cameras, each linked to a visitor.

    Crops that share a ``track_id`` (the camera tracker's id) are one person and link as a whole.
    """
    camera = await run_in_threadpool(find_owned, state.sessions, Camera, camera_id, store.id)
    when = capture_times(captured_at, len(images), state.settings.max_clock_skew_s)
    tracks = track_ids_of(track_id, len(images))
    uploads = await read_uploads(images, state.upload_rules)
    vectors = await state.batcher.embed([upload.pixels for upload in uploads])
    linked = await in_thread(
        "link", _commit_and_index, state, camera, vectors, when, tracks, uploads, pool=state.bulk
    )
    for item in linked:
        SIGHTINGS.labels(new_visitor=str(item.new_visitor).lower()).inc()
    return IngestResult(state.model_version, linked)


@dataclass(frozen=True)
class RelinkContext:
    """What a re-linking pass needs: the database, the store writers' queue, settings, the model's version."""

    sessions: sessionmaker[Session]
    writers: StoreWriteQueue
    settings: Settings
    model_version: str


def relink(
    context: RelinkContext, *, store_id: int, start_ms: int | None = None, end_ms: int | None = None
) -> RelinkResult:
    """One re-linking pass over a store's window (default: the visitor window up to now)."""
    settings = context.settings
    end = end_ms if end_ms is not None else to_ms(datetime.now(UTC)) + int(settings.max_clock_skew_s * 1000)
    start = start_ms if start_ms is not None else end - int(settings.visitor_window_s * 1000)
    if start >= end:
        raise InvalidInputError("start must be before end")
    with context.sessions() as session:
        get_store(session, store_id)
        rules = link_settings(settings, session, store_id)
    return relink_store(
        context.sessions,
        context.writers,
        store_id,
        rules,
        context.model_version,
        (start, end),
        settings.relink_max_sightings,
    )


def relink_context(state: AppState) -> RelinkContext:
    """The running app's re-linking context."""
    return RelinkContext(state.sessions, state.writers, state.settings, state.model_version)
