"""Stores, zones, cameras and keys: creating, listing, changing; shared by the admin API and ``reid-admin``.

Functions that write commit their session; the rows they return stay usable after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.access.keys import generate_key
from service.common.errors import ConflictError, InvalidInputError, NotFoundError
from service.storage.audit import ADMIN_PREFIX, Actor, audit
from service.storage.lookups import get_owned, get_store
from service.storage.models import ApiKey, Camera, CameraOverlap, Store, Zone, ZoneTransit

NULLABLE_STORE_FIELDS = frozenset({"match_threshold"})


@dataclass(frozen=True)
class CameraView:
    """A camera and the cameras whose views overlap its own."""

    id: int
    store_id: int
    zone_id: int
    name: str
    overlaps: list[int]


@dataclass(frozen=True)
class Transit:
    """The least time between two zones."""

    zone_ids: tuple[int, int]
    min_seconds: float


@dataclass(frozen=True)
class NewKey:
    """A created key row and its secret, which is not stored and is shown once."""

    row: ApiKey
    secret: str


def create_store(*, session: Session, name: str, timezone: str, match_enabled: bool = False) -> Store:
    """Add a store; person search stays off unless ``match_enabled``."""
    store = Store(
        name=name,
        timezone=timezone,
        created_at=datetime.now(UTC),
        ingest_seq=0,
        match_enabled=match_enabled,
    )
    session.add(store)
    session.commit()
    return store


def list_stores(*, session: Session) -> list[Store]:
    """Every store, oldest first."""
    return list(session.scalars(select(Store).order_by(Store.id)))


def read_store(*, session: Session, store_id: int) -> Store:
    """One store, or NotFoundError."""
    return get_store(session, store_id)


def update_store(*, session: Session, store_id: int, changes: dict[str, object]) -> Store:
    """Set the given fields; null is refused except for ``match_threshold`` (back to the default)."""
    store = get_store(session, store_id)
    for field, value in changes.items():
        if value is None and field not in NULLABLE_STORE_FIELDS:
            raise InvalidInputError(f"{field} cannot be null")
        if field == "returning_enabled" and value != store.returning_enabled:
            action = "returning-on" if value else "returning-off"
            audit(session, store_id, Actor(None, ADMIN_PREFIX), action)
        setattr(store, field, value)
    session.commit()
    return store


def create_zone(*, session: Session, store_id: int, name: str) -> Zone:
    """Add a zone; names are unique within a store (ConflictError otherwise)."""
    get_store(session, store_id)
    zone = Zone(store_id=store_id, name=name)
    session.add(zone)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(f"store {store_id} already has a zone named {name!r}") from exc
    return zone


def list_zones(*, session: Session, store_id: int) -> list[Zone]:
    """A store's zones."""
    get_store(session, store_id)
    return list(session.scalars(select(Zone).where(Zone.store_id == store_id).order_by(Zone.id)))


def _camera_view(camera: Camera, overlaps: list[int]) -> CameraView:
    return CameraView(camera.id, camera.store_id, camera.zone_id, camera.name, sorted(overlaps))


def create_camera(*, session: Session, store_id: int, zone_id: int, name: str) -> CameraView:
    """Add a camera looking at one of the store's zones."""
    get_store(session, store_id)
    zone = get_owned(session, Zone, zone_id, store_id)
    camera = Camera(store_id=store_id, zone_id=zone.id, name=name)
    session.add(camera)
    session.commit()
    return _camera_view(camera, [])


def list_cameras(*, session: Session, store_id: int) -> list[CameraView]:
    """A store's cameras with their overlapping cameras."""
    get_store(session, store_id)
    overlaps: dict[int, list[int]] = {}
    pairs = session.execute(
        select(CameraOverlap.camera_id, CameraOverlap.other_camera_id).where(
            CameraOverlap.store_id == store_id
        )
    )
    for camera_id, other in pairs:
        overlaps.setdefault(camera_id, []).append(other)
    cameras = session.scalars(select(Camera).where(Camera.store_id == store_id).order_by(Camera.id))
    return [_camera_view(c, overlaps.get(c.id, [])) for c in cameras]


def set_overlaps(*, session: Session, store_id: int, camera_id: int, others: list[int]) -> CameraView:
    """Replace the cameras whose views overlap ``camera_id``'s (kept symmetric); all must be the store's."""
    get_store(session, store_id)
    camera = get_owned(session, Camera, camera_id, store_id)
    wanted = sorted(set(others) - {camera_id})
    for other in wanted:
        get_owned(session, Camera, other, store_id)
    session.execute(
        delete(CameraOverlap).where(
            or_(CameraOverlap.camera_id == camera_id, CameraOverlap.other_camera_id == camera_id)
        )
    )
    for other in wanted:
        session.add(CameraOverlap(store_id=store_id, camera_id=camera_id, other_camera_id=other))
        session.add(CameraOverlap(store_id=store_id, camera_id=other, other_camera_id=camera_id))
    session.commit()
    return _camera_view(camera, wanted)


def set_transits(*, session: Session, store_id: int, transits: list[Transit]) -> list[Transit]:
    """Replace the store's zone-pair transit times; every zone must be the store's, pairs given once."""
    get_store(session, store_id)
    seen: dict[frozenset[int], Transit] = {}
    for transit in transits:
        for zone_id in transit.zone_ids:
            get_owned(session, Zone, zone_id, store_id)
        pair = frozenset(transit.zone_ids)
        if pair in seen:
            raise InvalidInputError(f"zones {sorted(pair)} are given more than once")
        seen[pair] = transit
    session.execute(delete(ZoneTransit).where(ZoneTransit.store_id == store_id))
    for transit in seen.values():
        first, second = transit.zone_ids
        for a, b in {(first, second), (second, first)}:
            session.add(
                ZoneTransit(store_id=store_id, zone_id=a, other_zone_id=b, min_seconds=transit.min_seconds)
            )
    session.commit()
    return list_transits(session=session, store_id=store_id)


def list_transits(*, session: Session, store_id: int) -> list[Transit]:
    """The store's zone-pair transit times, each pair once."""
    get_store(session, store_id)
    rows = session.execute(
        select(ZoneTransit.zone_id, ZoneTransit.other_zone_id, ZoneTransit.min_seconds)
        .where(ZoneTransit.store_id == store_id, ZoneTransit.zone_id <= ZoneTransit.other_zone_id)
        .order_by(ZoneTransit.zone_id, ZoneTransit.other_zone_id)
    )
    return [Transit((a, b), seconds) for a, b, seconds in rows]


def create_key(*, session: Session, store_id: int, name: str) -> NewKey:
    """Add a store key; only its hash and lookup prefix are stored."""
    get_store(session, store_id)
    new = generate_key()
    row = ApiKey(
        store_id=store_id, name=name, prefix=new.prefix, key_hash=new.key_hash, created_at=datetime.now(UTC)
    )
    session.add(row)
    session.commit()
    return NewKey(row, new.secret)


def list_keys(*, session: Session, store_id: int) -> list[ApiKey]:
    """A store's keys (the rows hold hashes, never secrets)."""
    get_store(session, store_id)
    return list(session.scalars(select(ApiKey).where(ApiKey.store_id == store_id).order_by(ApiKey.id)))


def revoke_key(*, session: Session, store_id: int, key_id: int) -> None:
    """Revoke a store key (NotFoundError when it is not one of this store's keys); again is a no-op."""
    get_store(session, store_id)
    key = session.get(ApiKey, key_id)
    if key is None or key.store_id != store_id:
        raise NotFoundError(f"key {key_id} not found in store {store_id}")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        session.commit()


def set_person_search(*, session: Session, store_id: int, enabled: bool) -> Store:
    """Turn person search (/match) on or off for a store."""
    return update_store(session=session, store_id=store_id, changes={"match_enabled": enabled})
