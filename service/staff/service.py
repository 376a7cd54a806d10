"""The staff use case: list, enrol from photos, mark a visitor, rename, remove; each change audited."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import UploadFile
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from service.access.callers import Caller
from service.embedding.uploads import read_uploads
from service.staff import enrolment
from service.staff.enrolment import Enrolment, StaffView
from service.state import AppState
from service.storage.audit import Actor
from service.storage.db import session_scope
from service.storage.models import Store


@dataclass(frozen=True)
class StaffRemoved:
    """A removed staff member and how many of their visitors count again."""

    staff_id: int
    visitors_counted_again: int


def actor_of(caller: Caller) -> Actor:
    """The audited identity of a store key."""
    return Actor(caller.key_id, caller.key_prefix or "")


def _store(caller: Caller) -> Store:
    assert caller.store is not None
    return caller.store


def _enrolment(state: AppState, caller: Caller) -> Enrolment:
    store = _store(caller)
    with state.sessions() as session:
        own = session.scalar(select(Store.match_threshold).where(Store.id == store.id))
    threshold = state.settings.match_threshold if own is None else own
    return Enrolment(
        store.id, actor_of(caller), state.model_version, threshold, state.sync, state.settings.retention_days
    )


async def list_staff(state: AppState, *, caller: Caller) -> list[StaffView]:
    """The store's staff and the visitors flagged as theirs."""

    def run() -> list[StaffView]:
        with state.sessions() as session:
            return enrolment.list_members(session, _store(caller).id)

    return await run_in_threadpool(run)


async def enrol_from_photos(
    state: AppState, *, caller: Caller, name: str, images: list[UploadFile]
) -> StaffView:
    """A new staff member from photos: embedded, summed and kept as embeddings (the photos too only when
    crops are kept: ``REID_STORE_CROPS`` or the store's ``keep_crops``); the store's visitors who resemble
    them are flagged at once."""
    uploads = await read_uploads(images, state.upload_rules)
    vectors = await state.batcher.embed([upload.pixels for upload in uploads])
    store_id = _store(caller).id

    def run() -> StaffView:
        context = _enrolment(state, caller)
        with state.writers.turn(store_id), session_scope(state.sessions) as session:
            kept = state.settings.store_crops or bool(
                session.scalar(select(Store.keep_crops).where(Store.id == store_id))
            )
            photos = [(u.media_type, u.data) for u in uploads] if kept else None
            return enrolment.enrol_photos(session, context, name, vectors, photos)

    return await run_in_threadpool(run)


async def mark_visitor_as_staff(
    state: AppState, *, caller: Caller, visitor_id: int, name: str | None, staff_id: int | None
) -> StaffView:
    """Flag a visitor as staff: a new member or one more enrolment of an existing one."""
    store_id = _store(caller).id

    def run() -> StaffView:
        context = _enrolment(state, caller)
        with state.writers.turn(store_id), session_scope(state.sessions) as session:
            return enrolment.mark_visitor(session, context, visitor_id, name, staff_id)

    return await run_in_threadpool(run)


async def rename_staff(state: AppState, *, caller: Caller, staff_id: int, name: str) -> StaffView:
    """Rename a staff member."""

    def run() -> StaffView:
        with session_scope(state.sessions) as session:
            return enrolment.rename(session, _store(caller).id, actor_of(caller), staff_id, name)

    return await run_in_threadpool(run)


async def remove_staff(state: AppState, *, caller: Caller, staff_id: int) -> StaffRemoved:
    """Delete a staff member's enrolment (and photos); their visitors count again."""
    store_id = _store(caller).id

    def run() -> StaffRemoved:
        with state.writers.turn(store_id), session_scope(state.sessions) as session:
            released = enrolment.remove(session, store_id, actor_of(caller), staff_id)
        return StaffRemoved(staff_id, released)

    return await run_in_threadpool(run)
