"""Staff enrolment in SQL: members, their enrolment embeddings (as a sum), photos when crops are kept,
the visitors flagged as theirs, and the audit row of every change.

Each change takes the store's writer turn and row lock, as ingest does, so flags never race a request
that links new crops; the store's change counter moves with it (live occupancy follows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.common.errors import ConflictError, InvalidInputError, NotFoundError
from service.common.timeparse import to_ms
from service.storage.audit import Actor, audit
from service.storage.locks import lock_store_row
from service.storage.models import Sighting, StaffMember, StaffPhoto, Visitor
from service.storage.staff import StaffPrototypes, staff_prototypes, vector
from service.vectors.base import VectorFilter
from service.vectors.sync import IndexSync

DAY_MS = 86_400_000
HITS_PER_DAY = 128
VISITOR_CROPS = 256
ENROL = "staff-enrol"
MARK = "staff-mark"
RENAME = "staff-rename"
REMOVE = "staff-delete"


@dataclass(frozen=True)
class StaffView:
    """A staff member as the API shows it."""

    id: int
    name: str
    source: str
    created_at: datetime
    enrolled: int
    model_version: str
    visitor_ids: list[int]


@dataclass(frozen=True)
class Enrolment:
    """What an enrolment needs besides the session: who asks, the model, the threshold, the index."""

    store_id: int
    actor: Actor
    model_version: str
    threshold: float
    sync: IndexSync
    retention_days: int


def view(session: Session, member: StaffMember) -> StaffView:
    """The member with the ids of the visitors flagged as theirs."""
    visitors = session.scalars(
        select(Visitor.id)
        .where(Visitor.store_id == member.store_id, Visitor.staff_id == member.id)
        .order_by(Visitor.id)
    ).all()
    return StaffView(
        member.id,
        member.name,
        member.source,
        member.created_at,
        member.enrolled,
        member.model_version,
        list(visitors),
    )


def list_members(session: Session, store_id: int) -> list[StaffView]:
    """The store's staff, oldest first."""
    members = session.scalars(
        select(StaffMember).where(StaffMember.store_id == store_id).order_by(StaffMember.id)
    )
    return [view(session, m) for m in members]


def owned_member(session: Session, store_id: int, staff_id: int) -> StaffMember:
    """A staff member of the store; another store's reads as missing."""
    member = session.get(StaffMember, staff_id)
    if member is None or member.store_id != store_id:
        raise NotFoundError(f"staff member {staff_id} not found in store {store_id}")
    return member


def _visitor_mean(session: Session, visitor_id: int, model_version: str) -> np.ndarray | None:
    blobs = session.scalars(
        select(Sighting.embedding)
        .where(Sighting.visitor_id == visitor_id, Sighting.model_version == model_version)
        .order_by(Sighting.captured_ms.desc())
        .limit(VISITOR_CROPS)
    ).all()
    return np.mean([vector(b) for b in blobs], axis=0) if blobs else None


def flag_lookalikes(session: Session, enrolment: Enrolment, member: StaffMember) -> int:
    """Flag the store's visitors (within retention) who resemble the member: a search of each day's
    index shard with the enrolment mean, then each candidate visitor's mean crop; returns how many."""
    store_id = enrolment.store_id
    prototypes = staff_prototypes(session, store_id, enrolment.model_version)
    if member.id not in prototypes.ids:
        return 0
    mean = prototypes.means[prototypes.ids.index(member.id)]
    enrolment.sync.catch_up(session, store_id)
    kept = to_ms(datetime.now(UTC) - timedelta(days=enrolment.retention_days + 1))
    span = session.execute(
        select(func.min(Sighting.captured_ms), func.max(Sighting.captured_ms)).where(
            Sighting.store_id == store_id
        )
    ).one()
    if span[0] is None:
        return 0
    first, last = max(kept, span[0]), span[1]
    hit_ids: set[int] = set()
    for day_start in range(first - first % DAY_MS, last + 1, DAY_MS):
        where = VectorFilter(store_id, min_ms=day_start, max_ms=day_start + DAY_MS)
        hits = enrolment.sync.search(store_id, mean[None].astype(np.float32), HITS_PER_DAY, where)[0]
        hit_ids.update(h.sighting_id for h in hits if h.similarity >= enrolment.threshold)
    if not hit_ids:
        return 0
    candidates = session.scalars(
        select(Visitor.id)
        .join(Sighting, Sighting.visitor_id == Visitor.id)
        .where(Sighting.id.in_(sorted(hit_ids)), Visitor.staff_id.is_(None), Visitor.store_id == store_id)
        .distinct()
    ).all()
    return _flag(session, store_id, candidates, prototypes, member.id, enrolment)


def _flag(
    session: Session,
    store_id: int,
    candidates: list[int],
    prototypes: StaffPrototypes,
    member_id: int,
    enrolment: Enrolment,
) -> int:
    flagged = 0
    for visitor in candidates:
        mean = _visitor_mean(session, visitor, enrolment.model_version)
        if mean is not None and prototypes.best(mean, enrolment.threshold) == member_id:
            session.execute(update(Visitor).where(Visitor.id == visitor).values(staff_id=member_id))
            flagged += 1
    return flagged


def _new_member(
    session: Session, store_id: int, name: str, source: str, total: np.ndarray, count: int, model: str
):
    member = StaffMember(
        store_id=store_id,
        name=name,
        source=source,
        created_at=datetime.now(UTC),
        model_version=model,
        prototype=np.ascontiguousarray(total, dtype=np.float32).tobytes(),
        enrolled=count,
    )
    session.add(member)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"store {store_id} already has a staff member named {name!r}") from exc
    return member


def enrol_photos(
    session: Session,
    enrolment: Enrolment,
    name: str,
    vectors: np.ndarray,
    photos: list[tuple[str, bytes]] | None,
) -> StaffView:
    """A new staff member from photos (their embeddings; the photos themselves only if given)."""
    lock_store_row(session, enrolment.store_id)
    member = _new_member(
        session,
        enrolment.store_id,
        name,
        "photos",
        vectors.sum(axis=0),
        len(vectors),
        enrolment.model_version,
    )
    for media_type, data in photos or []:
        session.add(StaffPhoto(staff_id=member.id, content_type=media_type, data=data))
    flagged = flag_lookalikes(session, enrolment, member)
    detail = f"{len(vectors)} photos{' (kept)' if photos else ''}; {flagged} visitors flagged"
    audit(session, enrolment.store_id, enrolment.actor, ENROL, staff_id=member.id, detail=detail)
    session.flush()
    return view(session, member)


def mark_visitor(
    session: Session, enrolment: Enrolment, visitor_id: int, name: str | None, staff_id: int | None
) -> StaffView:
    """Flag a visitor as staff: a new member (``name``) or one more enrolment of ``staff_id``, from the
    visitor's crops."""
    store_id = enrolment.store_id
    if (name is None) == (staff_id is None):
        raise InvalidInputError(
            "give either the name of a new staff member or the staff_id of an existing one"
        )
    lock_store_row(session, store_id)
    visitor = session.get(Visitor, visitor_id)
    if visitor is None or visitor.store_id != store_id:
        raise NotFoundError(f"visitor {visitor_id} not found in store {store_id}")
    blobs = session.scalars(
        select(Sighting.embedding)
        .where(Sighting.visitor_id == visitor_id, Sighting.model_version == enrolment.model_version)
        .order_by(Sighting.captured_ms.desc())
        .limit(VISITOR_CROPS)
    ).all()
    if not blobs:
        raise InvalidInputError(f"visitor {visitor_id} has no sightings embedded by the current model")
    total = np.sum([vector(b) for b in blobs], axis=0)
    if staff_id is not None:
        member = owned_member(session, store_id, staff_id)
        if member.model_version != enrolment.model_version:
            raise ConflictError(
                f"staff member {staff_id} was enrolled with another model ({member.model_version}): "
                "enrol them again"
            )
        member.prototype = (vector(member.prototype) + total).astype(np.float32).tobytes()
        member.enrolled += len(blobs)
    else:
        assert name is not None
        member = _new_member(session, store_id, name, "visitor", total, len(blobs), enrolment.model_version)
    visitor.staff_id = member.id
    session.flush()
    flagged = flag_lookalikes(session, enrolment, member)
    detail = f"visitor {visitor_id}: {len(blobs)} crops enrolled; {flagged} other visitors flagged"
    audit(session, store_id, enrolment.actor, MARK, staff_id=member.id, visitor_id=visitor_id, detail=detail)
    session.flush()
    return view(session, member)


def rename(session: Session, store_id: int, actor: Actor, staff_id: int, name: str) -> StaffView:
    """Rename a staff member (names are unique within a store)."""
    member = owned_member(session, store_id, staff_id)
    before = member.name
    member.name = name
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"store {store_id} already has a staff member named {name!r}") from exc
    audit(session, store_id, actor, RENAME, staff_id=staff_id, detail=f"{before!r} -> {name!r}")
    return view(session, member)


def remove(session: Session, store_id: int, actor: Actor, staff_id: int) -> int:
    """Delete a staff member's enrolment and photos; their visitors count again. Returns how many."""
    lock_store_row(session, store_id)
    member = owned_member(session, store_id, staff_id)
    released = session.execute(
        update(Visitor)
        .where(Visitor.store_id == store_id, Visitor.staff_id == staff_id)
        .values(staff_id=None)
    ).rowcount
    session.execute(delete(StaffPhoto).where(StaffPhoto.staff_id == staff_id))
    session.delete(member)
    detail = f"{member.name!r}: enrolment deleted; {released} visitors counted again"
    audit(session, store_id, actor, REMOVE, staff_id=staff_id, detail=detail)
    return int(released)


def photo_count(session: Session, staff_id: int) -> int:
    """How many enrolment photos are kept for a member."""
    return int(
        session.scalar(select(func.count()).select_from(StaffPhoto).where(StaffPhoto.staff_id == staff_id))
    )
